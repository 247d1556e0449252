"""Conversations: talking to the model about an image, turn after turn (issue 22).

A conversation starts from an image (a result, or any image its owner may remix) and is an
ordered list of turns. Every turn is a paid image job ordered through `orders` like an Edit
(same price, charged once, refunded once on failure: the job engine's), whose request carries
the conversation so far as Google's multi-turn image editing expects it: each earlier turn's
prompt (role `user`) and the model's answer with its `thoughtSignature`s (role `model`),
then the new prompt with the images attached to it (see docs/models.md, "Conversations").

- the history is trimmed, oldest turns first, to what the model takes in one request (its
  reference-image limit, inputs included, and its input-token limit);
- on a model that answers without signatures (the legacy Nano Banana) or from an image no
  model made (an upload), the latest image goes as an input instead, as an Edit does;
- Undo drops the last turn (free: its image stays in the gallery, its coins are not refunded:
  it was made); Branch starts a new conversation from any turn (free: the turns are shared);
  Reroll asks a turn again, with the same history and references, in its place.

Who may do what: adding a turn, a Reroll and a Branch are remixes (the image's owner, in its
own server: PermissionService.check_remix_image); Undo is the conversation's owner's, or a
moderator's of its server (as deleting an image is). Conversations survive restarts: they are
rows (storage.conversations), their images objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.nanobanana import InputImage, ModelProfile, Turn
from bot.services import turns as stored_turns
from bot.services.accounts import AccountService
from bot.services.errors import ConversationNotFound, ImageNotFound, InvalidInput, NotAllowed
from bot.services.generation import GenerationRequest, GenerationService
from bot.services.generation.requests import model_of, ratio_for, size_for, source_prompts
from bot.services.jobs import Job, JobListener
from bot.services.media import Declared
from bot.services.members import Member, Payer
from bot.services.orders import OrderService, Ticket
from bot.services.orders import Turn as RateTurn
from bot.services.permissions import Actor, Identity, PermissionService, reaches_own
from storage.conversations import ConversationRepository, ConversationRow, TurnRow, chain_of
from storage.images import ImageRepository
from storage.models import Image
from storage.objects import ObjectStore

#: What one image of an earlier turn is counted as against a model's input-token limit when
#: trimming (Google counts an input image as 258 tokens per 768x768 tile; the bot's inputs are
#: at most 1536 px a side, so at most 4 tiles (1,032): 1,290 leaves room for the text).
TOKENS_PER_IMAGE = 1290
#: Characters of prompt counted as one token when trimming (Google's rule of thumb: ~4).
CHARS_PER_TOKEN = 4
#: Part of the input-token limit a request may fill (the rest for the new prompt's images).
TOKEN_SHARE = 0.8


@dataclass(frozen=True)
class Target:
    """Where a new turn goes: an existing conversation (None: a new one starts from `root`,
    or, with `branch_of`, a branch of that conversation up to `chain`), the turns it follows
    (`chain`, oldest first), the image it edits (`tip`: the last turn's, or the root), and for
    a Reroll the position it takes again (`position`) with its stored inputs (`inputs_of`)."""

    conversation: ConversationRow | None
    root: Image
    tip: Image
    chain: tuple[TurnRow, ...] = ()
    branch_of: ConversationRow | None = None
    position: int | None = None
    inputs_of: Image | None = None

    @property
    def key(self) -> str:
        """What one turn at a time is counted by (the conversation, or the image it starts
        from)."""
        return self.conversation.id if self.conversation is not None else f"image:{self.tip.id}"


@dataclass(frozen=True)
class TurnView:
    """A turn as its member sees it: where it stands, what was asked, its job, its image."""

    id: str
    position: int
    prompt: str
    job_id: str
    status: str
    image_id: str | None


@dataclass(frozen=True)
class ConversationView:
    """A conversation and the turns that count, oldest first."""

    conversation: ConversationRow
    turns: tuple[TurnView, ...]
    undone: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.conversation.id


class ConversationService:
    """Conversations on the paid-job path (orders -> the image kind on the job engine)."""

    def __init__(
        self,
        repo: ConversationRepository,
        *,
        orders: OrderService,
        generation: GenerationService,
        images: ImageRepository,
        store: ObjectStore,
        permissions: PermissionService,
        accounts: AccountService,
    ) -> None:
        self.repo = repo
        self.accounts = accounts
        self.orders = orders
        self.generation = generation
        self.images = images
        self.store = store
        self.permissions = permissions
        # Conversations (or images) with a turn being ordered in this process: one at a time.
        self._ordering: set[str] = set()
        self._lock = asyncio.Lock()

    # Finding where a turn goes -----------------------------------------------------------

    async def get(self, conversation_id: str) -> ConversationRow | None:
        return await self.repo.get(conversation_id)

    async def in_thread(self, thread_id: int) -> ConversationRow | None:
        """The conversation a Discord thread shows, if any."""
        return await self.repo.by_thread(thread_id)

    async def image_of(self, image_id: str) -> Image:
        """A stored image to talk about (a further image of an answer stands for its job's
        first image: the turn is the job); ImageNotFound when it is gone."""
        image = self.generation.shown(image_id) or await self.images.get(image_id)
        if image is None:
            raise ImageNotFound()
        image = await self.generation.settled(image)
        extra_of = image.metadata.get("extra_of")
        if extra_of:
            primary = await self.images.get(str(extra_of))
            if primary is None:
                raise ImageNotFound()
            image = primary
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        return image

    async def target_for_image(self, image_id: str) -> Target:
        """A turn that continues from an image shown outside a thread (a reply to a result):
        its conversation when it is that conversation's last turn, a branch when it is an
        earlier one, else a new conversation from it."""
        image = await self.image_of(image_id)
        for conversation in await self.repo.with_job(image.id, threaded=False):
            chain = await self.repo.chain(conversation.id)
            ids = [turn.job_id for turn in chain]
            if image.id not in ids:
                continue
            upto = tuple(chain[: ids.index(image.id) + 1])
            root = await self._root(conversation)
            if len(upto) == len(chain):
                return Target(conversation, root, image, upto)
            return Target(None, root, image, upto, branch_of=conversation)
        return Target(None, image, image)

    async def target_for(self, conversation: ConversationRow) -> Target:
        """The next turn of `conversation`: after its last turn."""
        chain = tuple(await self.repo.chain(conversation.id))
        root = await self._root(conversation)
        tip = await self._tip(root, chain)
        return Target(conversation, root, tip, chain)

    async def reroll_target(self, conversation: ConversationRow, turn_id: str) -> Target:
        """Asking the turn `turn_id` again: its place, its prompt's references, the turns
        before it. Only the last turn can be asked again in place (an earlier one: Branch)."""
        chain = tuple(await self.repo.chain(conversation.id))
        index = next((n for n, turn in enumerate(chain) if turn.id == turn_id), None)
        if index is None:
            raise InvalidInput("conv.turn_gone")
        if index != len(chain) - 1:
            raise InvalidInput("conv.reroll_last_only")
        turn = chain[index]
        root = await self._root(conversation)
        before = chain[:index]
        tip = await self._tip(root, before)
        made = await self.images.get(turn.job_id)
        return Target(conversation, root, tip, before, position=turn.position, inputs_of=made)

    async def turn_prompt(self, conversation: ConversationRow, turn_id: str) -> str:
        for turn in await self.repo.chain(conversation.id):
            if turn.id == turn_id:
                return turn.prompt
        raise InvalidInput("conv.turn_gone")

    async def owner_mention(self, target: Target) -> str:
        """How the refusal names the image's owner (a Discord mention)."""
        owner = await self.accounts.get(target.tip.user_id)
        return f"<@{owner.discord_id}>" if owner is not None and owner.discord_id else "?"

    async def _root(self, conversation: ConversationRow) -> Image:
        root = await self.images.get(conversation.root_image_id)
        if root is None or not root.is_ready:
            raise ImageNotFound()
        return root

    async def _tip(self, root: Image, chain: Sequence[TurnRow]) -> Image:
        """The image the next turn edits: the last finished turn's, else the root."""
        for turn in reversed(chain):
            if turn.finished:
                image = await self.images.get(turn.job_id)
                if image is not None and image.is_ready:
                    return image
        return root

    # Ordering a turn ---------------------------------------------------------------------

    async def prepare(
        self,
        identity: Identity,
        target: Target,
        prompt: str,
        *,
        declared: Sequence[Declared] = (),
        turn: RateTurn | None = None,
    ) -> Ticket[GenerationRequest]:
        """Every check memory can make (orders.prepare: the member's turn at the server's
        rate, the prompt, the references as declared, the server's rules, the price, a job
        slot), and that no other turn of this conversation is being made. Raises a
        UserFacingError (private, free) and holds nothing on refusal."""
        if any(t.running for t in target.chain):
            raise InvalidInput("conv.busy")
        if target.key in self._ordering:
            raise InvalidInput("conv.busy")
        # Whose image it is, before anything is written (a refusal leaves no row behind).
        actor = await self.accounts.actor(identity)
        self.permissions.check_remix_image(actor, target.tip, await self.owner_mention(target))
        if target.conversation is not None:
            self._check_owner(actor, target.conversation)
        model = model_of(target.tip, self.generation.catalog)
        return await self.orders.prepare(
            identity, turn=turn, prompt=prompt, model=model, declared=declared
        )

    async def place(
        self,
        ticket: Ticket[GenerationRequest],
        target: Target,
        files: Sequence[tuple[str, bytes]] = (),
        listener: JobListener | None = None,
        *,
        context: dict[str, Any] | None = None,
        channel_id: int | None = None,
    ) -> tuple[Job[GenerationRequest], ConversationRow, TurnRow]:
        """Place the turn (orders.place: the member, the wallet, the request with the
        conversation so far, the reservation, the queue), then record it in its conversation
        (made now for a new one or a branch). Raises a UserFacingError and charges nothing
        on refusal."""
        if target.key in self._ordering:
            ticket.cancel()
            raise InvalidInput("conv.busy")
        self._ordering.add(target.key)
        try:

            async def build(member: Member, payer: Payer) -> GenerationRequest:
                self.permissions.check_remix_image(member.actor, target.tip, "")
                if target.conversation is not None:
                    self._check_owner(member.actor, target.conversation)
                    latest = await self.repo.chain(target.conversation.id)
                    if any(t.running for t in latest):
                        raise InvalidInput("conv.busy")
                inputs = await self.orders.images(files)
                if target.inputs_of is not None and not files:
                    inputs = await self.generation.requests.inputs_of(target.inputs_of)
                return await self.request(target, ticket.prompt, inputs, context or {})

            job = await self.orders.place(ticket, build, listener)
            conversation = target.conversation
            if conversation is None and target.branch_of is not None:
                conversation = await self.repo.branch(
                    target.branch_of, list(target.chain), user_id=job.user_id,
                    channel_id=channel_id,
                )  # fmt: skip
            elif conversation is None:
                conversation = await self.repo.create(
                    user_id=job.user_id, guild_id=job.guild_id, root_image_id=target.root.id,
                    channel_id=channel_id,
                )  # fmt: skip
            turn = await self.repo.add_turn(
                conversation.id, job.id, ticket.prompt, position=target.position
            )
            return job, conversation, turn
        finally:
            self._ordering.discard(target.key)

    async def request(
        self,
        target: Target,
        prompt: str,
        inputs: Sequence[InputImage],
        context: dict[str, Any],
    ) -> GenerationRequest:
        """The image job of a turn: the conversation so far (trimmed to the model's limits)
        and the new prompt with its references; on a model without signatures, or when no
        earlier turn can be sent, the latest image goes as an input (as an Edit)."""
        catalog = self.generation.catalog
        tip = target.tip
        profile = catalog.profile(model_of(tip, catalog))
        earlier = await self._history(target) if profile.thinking else []
        kept = trim([t for _, t in earlier], profile, len(inputs), prompt)
        earlier = earlier[len(earlier) - len(kept) :]
        own = tuple(inputs)
        history: tuple[Turn, ...] = tuple(t for _, t in earlier)
        if not earlier or earlier[-1][0] != tip.id:
            # The model must see the image the member talks about: with no earlier turn that
            # ends with it, it goes as an input (and the history, which ends elsewhere, not).
            own = (await self.generation.requests.image_as_input(tip), *own)
            history = ()
        catalog.check_images(profile, len(own) + images_in(history))
        return GenerationRequest(
            prompt=prompt,
            aspect_ratio=ratio_for(tip, profile.aspect_ratios),
            inputs=own,
            source_image_ids=(tip.id,),
            context={**context, "conversation": target.key},
            model=profile.model,
            image_size=size_for(tip, profile.image_sizes),
            history=history,
            source_prompts=source_prompts(tip, own=True),
        )

    async def _history(self, target: Target) -> list[tuple[str, Turn]]:
        """The earlier turns as the model expects them, each with the image it made: the
        root's own (when a model made it), then each finished turn of the chain, oldest
        first (a turn whose answer carried no signature is left out)."""
        history: list[tuple[str, Turn]] = []
        root = await stored_turns.turn_of(self.store, target.root)
        if root is not None:
            history.append((target.root.id, root))
        for row in target.chain:
            if not row.finished:
                continue
            image = await self.images.get(row.job_id)
            if image is None:
                continue
            made = await stored_turns.turn_of(self.store, image)
            if made is not None:
                history.append((image.id, made))
        return history

    # Undo, Branch, reading ---------------------------------------------------------------

    async def undo(self, actor: Actor, conversation_id: str, *, personal: bool = False) -> int:
        """Drop the last turn (free); the position undone. Refused while a turn is being
        made, or with nothing to undo. `personal`: the API's rule (the actor's own only)."""
        conversation = await self._visible(actor, conversation_id, personal=personal)
        if not self._may_undo(actor, conversation):
            raise NotAllowed("conv.not_yours")
        undone = await self.repo.undo(conversation.id)
        if undone is None:
            chain = await self.repo.chain(conversation.id)
            raise InvalidInput("conv.busy" if any(t.running for t in chain) else "conv.nothing")
        return undone

    async def branch(
        self, actor: Actor, conversation_id: str, position: int | None = None,
        channel_id: int | None = None, *, personal: bool = False,
    ) -> ConversationRow:  # fmt: skip
        """A new conversation of `actor` from `conversation_id` up to `position` (its last
        turn when None; 0: its root alone). Free; a remix of that turn's image."""
        conversation = await self._visible(actor, conversation_id, personal=personal)
        chain = [t for t in await self.repo.chain(conversation.id) if t.finished]
        if position is not None:
            if position < 0 or (position and all(t.position != position for t in chain)):
                raise InvalidInput("conv.turn_gone")
            chain = [t for t in chain if t.position <= position]
        root = await self._root(conversation)
        tip = await self._tip(root, chain)
        self.permissions.check_remix_image(actor, tip, "")
        if actor.user is None:
            raise NotAllowed("conv.not_yours")
        return await self.repo.branch(
            conversation, chain, user_id=actor.user.id, channel_id=channel_id
        )

    async def start(self, actor: Actor, image_id: str) -> ConversationRow:
        """A new conversation (no turn yet) from an image `actor` may remix (the API's create,
        and a thread opened on a result)."""
        image = await self.image_of(image_id)
        self.permissions.check_remix_image(actor, image, "")
        assert actor.user is not None  # check_remix_image: the owner
        return await self.repo.create(
            user_id=actor.user.id, guild_id=image.guild_id, root_image_id=image.id
        )

    async def check_may_open(self, actor: Actor, target: Target) -> None:
        """Raise unless `actor` may open a thread on `target`'s image (a remix: its owner)."""
        self.permissions.check_remix_image(actor, target.tip, await self.owner_mention(target))
        if target.conversation is not None:
            self._check_owner(actor, target.conversation)

    async def in_new_thread(
        self, actor: Actor, target: Target, channel_id: int, thread_id: int
    ) -> ConversationRow:
        """The conversation a thread just opened on `target`'s image shows: the image's own
        conversation when it is its last turn and has no thread yet, else a branch up to it
        (or a new conversation from it). Free."""
        await self.check_may_open(actor, target)
        assert actor.user is not None  # the owner (check_may_open)
        conversation = target.conversation
        if conversation is not None and conversation.thread_id is None:
            chosen = conversation
        elif conversation is not None or target.branch_of is not None:
            source = conversation or target.branch_of
            assert source is not None
            chosen = await self.repo.branch(
                source, list(target.chain), user_id=actor.user.id, channel_id=channel_id
            )
        else:
            chosen = await self.repo.create(
                user_id=actor.user.id, guild_id=target.tip.guild_id,
                root_image_id=target.root.id, channel_id=channel_id,
            )  # fmt: skip
        await self.repo.set_thread(chosen.id, channel_id, thread_id)
        found = await self.repo.get(chosen.id)
        assert found is not None
        return found

    async def show_in_thread(self, conversation_id: str, channel_id: int, thread_id: int) -> bool:
        return await self.repo.set_thread(conversation_id, channel_id, thread_id)

    async def view(
        self, actor: Actor, conversation_id: str, *, personal: bool = False
    ) -> ConversationView:
        """A conversation its member (or whoever may see its images) reads; `personal`: the
        API's rule, the actor's own of the server they act in only (anyone else's: not
        found)."""
        conversation = await self._visible(actor, conversation_id, personal=personal)
        return await self.view_of(conversation)

    async def view_of(self, conversation: ConversationRow) -> ConversationView:
        rows = await self.repo.turns(conversation.id)
        chain = chain_of(rows)
        views = []
        for turn in chain:
            image = await self.images.get(turn.job_id) if turn.finished else None
            views.append(
                TurnView(
                    turn.id,
                    turn.position,
                    turn.prompt,
                    turn.job_id,
                    turn.status.value,
                    image.id if image is not None else None,
                )
            )
        return ConversationView(conversation, tuple(views), sum(1 for t in rows if t.undone))

    async def check_owner(self, actor: Actor, conversation: ConversationRow) -> None:
        """Raise unless `actor` may add turns to `conversation` (its owner, in its server)."""
        self._check_owner(actor, conversation)

    def _check_owner(self, actor: Actor, conversation: ConversationRow) -> None:
        if actor.user is None or actor.user.id != conversation.user_id:
            raise NotAllowed("conv.not_yours")

    def _may_undo(self, actor: Actor, conversation: ConversationRow) -> bool:
        if actor.user is not None and actor.user.id == conversation.user_id:
            return True
        return self.permissions.moderates(actor, conversation.guild_id)

    async def _visible(
        self, actor: Actor, conversation_id: str, *, personal: bool = False
    ) -> ConversationRow:
        conversation = await self.repo.get(conversation_id.strip().lower())
        if conversation is None:
            raise ConversationNotFound()
        if personal:
            if not reaches_own(actor, conversation.user_id, conversation.guild_id):
                raise ConversationNotFound()
            return conversation
        if actor.user is not None and actor.user.id == conversation.user_id:
            return conversation
        root = await self.images.get(conversation.root_image_id)
        if root is None or not self.permissions.can_see_image(actor, root):
            raise ConversationNotFound()
        return conversation


def images_in(history: Sequence[Turn]) -> int:
    return sum(1 for turn in history for part in turn.parts if part.image is not None)


def trim(history: Sequence[Turn], profile: ModelProfile, inputs: int, prompt: str) -> list[Turn]:
    """The latest turns of `history` that fit in one request to `profile`'s model: its
    reference-image limit (with `inputs` new images and one slot kept for the latest image
    if it must go as an input) and its input-token limit (images and text estimated)."""
    kept = list(history)
    limit_images = max(0, profile.max_reference_images - inputs)
    token_limit = profile.input_token_limit
    budget = int(token_limit * TOKEN_SHARE) if token_limit else None

    def tokens() -> int:
        text = len(prompt) + sum(
            len(t.prompt) + sum(len(p.text or "") for p in t.parts) for t in kept
        )
        return text // CHARS_PER_TOKEN + TOKENS_PER_IMAGE * (images_in(kept) + inputs)

    while kept and (images_in(kept) > limit_images or (budget is not None and tokens() > budget)):
        kept.pop(0)
    return kept


__all__ = [
    "ConversationService",
    "ConversationView",
    "Target",
    "TurnView",
    "images_in",
    "trim",
]
