"""Orders: the one entry for every paid job, whoever asks and from where.

A slash command, a button, a modal and an API route each translate their request into an
order and call the same two steps, in the same order, so Discord and the API behave alike by
construction (DESIGN section 10):

1. `prepare`, before the adapter's first answer, from memory (a server's first use reads its
   settings and blocklist once): the member's rate-limit turn at the server's rate, the
   prompt as it will be sent, the model's ratio and size, images as declared (size, type,
   pixels, before any download), the server's rules (channels, role), its blocklist, the
   price, and one of the member's job slots and room in the queue. A refusal is private and
   free. The result is a `Ticket`.
2. `place`, after the answer: the member and the wallet that pays (their rules checked again
   with what only the database knows), the request built with its images through the one
   input pipeline (`media.InputImages`), the reservation (one transaction with the debit, its
   ledger row and the budgets' claim) and the queue. A refusal here charges nothing and gives
   the job slot back.

What happens to a job after that is the job engine's (bot.services.jobs), whatever its kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from bot.services.captions import CaptionRequest, CaptionService
from bot.services.community import CommunityService
from bot.services.errors import InvalidInput
from bot.services.generation import GenerationRequest, GenerationService, SourceImage
from bot.services.jobs import Admission, Job, JobListener
from bot.services.media import Declared, InputImages
from bot.services.members import Member, MemberService, Payer, Purpose
from bot.services.moderation import ModerationService
from bot.services.permissions import Identity
from bot.services.settings import MAX_BATCH, EffectiveSettings, GuildSettingsService
from bot.services.styles import StylePreset, StyleService

R = TypeVar("R")

#: What builds a job's request once the member and their wallet are known (a Reroll reads the
#: stored image; /generate and /describe download their attachments through the input
#: pipeline).
RequestBuild = Callable[[Member, Payer], Awaitable[R]]


class Desk(Protocol[R]):
    """A kind's service as orders use it: reserve (price, debit, PENDING job), then queue."""

    async def reserve(
        self, payer: Payer, request: R, listener: JobListener | None = None, *,
        admission: Admission,
    ) -> Job[R]: ...  # fmt: skip

    async def enqueue(self, job: Job[Any]) -> int: ...


@dataclass(frozen=True)
class Turn:
    """A member's "generate" turn, taken already: a button takes it before it reads the image
    it is bound to, so that a refused press costs no database read (`OrderService.take_turn`)."""

    discord_id: int
    guild_id: int | None


@dataclass(frozen=True)
class Ticket(Generic[R]):
    """An order that passed every check memory can make: the job slot it holds (`position`:
    where it will wait), the settings it was checked with, its price, and the kind's desk
    that will take it. `prompt` is what the member asked, as it will be sent ("" for a
    caption)."""

    identity: Identity
    settings: EffectiveSettings
    admission: Admission
    prompt: str
    cost: int
    desk: Desk[R]
    #: The member keeps their results private (their private mode, allowed by the server).
    private: bool = False
    #: The server's style the member picked (its suffix is in `prompt` already).
    style: StylePreset | None = None
    #: The slots of a batch's further images (each image is a job of its own).
    extra: tuple[Admission, ...] = ()

    @property
    def public(self) -> bool:
        """Whether the job's messages are for everyone: the server shows results, and the
        member did not ask to keep theirs private."""
        return self.settings.public_results and not self.private

    @property
    def position(self) -> int:
        return self.admission.position

    @property
    def count(self) -> int:
        """How many images (jobs) the order makes."""
        return 1 + len(self.extra)

    @property
    def total(self) -> int:
        """What the whole order costs as quoted (each image at `cost`)."""
        return self.cost * self.count

    @property
    def admissions(self) -> tuple[Admission, ...]:
        return (self.admission, *self.extra)

    def cancel(self) -> None:
        """Give the job slots back (the adapter could not answer; nothing was charged)."""
        for admission in self.admissions:
            admission.release()


class OrderService:
    """prepare -> place, for every paid job (the only entry the adapters use)."""

    def __init__(
        self,
        *,
        generation: GenerationService,
        members: MemberService,
        moderation: ModerationService,
        settings: GuildSettingsService,
        inputs: InputImages,
        captions: CaptionService | None = None,
        community: CommunityService | None = None,
        styles: StyleService | None = None,
    ) -> None:
        self.generation = generation
        self.captions = captions
        self.members = members
        self.moderation = moderation
        self.settings = settings
        self.inputs = inputs
        self.community = community
        self.styles = styles

    async def settings_of(self, guild_id: int | None) -> EffectiveSettings:
        """A server's settings, from memory when read lately (one read otherwise)."""
        return self.settings.cached(guild_id) or await self.settings.effective(guild_id)

    def take_turn(self, identity: Identity, uses: int = 1) -> Turn:
        """The member's "generate" turn at the server's rate (the same bucket on every
        surface; a batch takes one use per image); raises TooSoon past the limit. `prepare`
        takes it unless given one."""
        self.members.take_turn(identity.discord_id, identity.guild_id, "generate", uses)
        return Turn(identity.discord_id, identity.guild_id)

    async def prepare(
        self,
        identity: Identity,
        *,
        turn: Turn | None = None,
        prompt: str,
        model: str | None = None,
        size: str | None = None,
        ratio: str | None = None,
        declared: Sequence[Declared] = (),
        style: str | None = None,
        count: int = 1,
        grounded: bool = False,
        references: int = 0,
    ) -> Ticket[GenerationRequest]:
        """Every check memory can make, in this order; raises a UserFacingError (answered
        privately, for free) and holds nothing on refusal. `prompt` is what the member typed,
        or a stored image's prompt for a Reroll (checked and blocklisted again: the server's
        blocklist may have grown since); `model`, `size` and `ratio` are checked against the
        chosen model when given; `declared` images against the input limits, before any
        download. `turn`: the member's turn, when taken already (`take_turn`). `style`: one
        of the server's style presets by name, whose suffix joins the prompt before it is
        checked (its reference images join the request in `style_images`). `count`: a batch
        of that many images, each its own job at the same price (see `batch_size`).
        `grounded` is checked against the model (and priced GROUNDING_COST more);
        `references`: stored images sent too (a character's), counted with them."""
        # Not a number of images at all (0, 5, a billion): refused before it counts as uses.
        if not 1 <= count <= MAX_BATCH:
            raise InvalidInput("batch.count", high=MAX_BATCH)
        # More images than the server's settings as last read allow (its rate among them; the
        # host's before the first read, which a server may only lower): refused before the
        # turn, which such a batch could never pass.
        known = self.settings.cached(identity.guild_id) or self.settings.defaults
        if count > self.batch_size(known):
            raise InvalidInput("batch.count", high=self.batch_size(known))
        # The member's turn at the server's rate: the same bucket on every surface.
        if turn is None or turn != Turn(identity.discord_id, identity.guild_id):
            self.take_turn(identity, count)
        generation = self.generation
        preset = None
        if style is not None:
            if self.styles is None:
                raise InvalidInput("style.unknown", name=style[:32])
            preset = await self.styles.find(identity.guild_id, style)
            prompt = self.styles.apply(generation.validate_prompt(prompt), preset)
        text = generation.validate_prompt(prompt)
        if ratio is not None:
            generation.validate_ratio(ratio, model)
        for image in declared:
            self.inputs.check_declared(image)
        settings = await self.settings_of(identity.guild_id)
        # Refuses an unknown or retired model, or a size the model lacks, before anything else.
        cost = generation.cost_of(model, size, default=settings.generation_cost, grounded=grounded)
        most = self.batch_size(settings)
        if count > most:
            raise InvalidInput("batch.count", high=most)
        references += len(preset.reference_keys) if preset is not None else 0
        if declared or references:
            # Every reference counts against the chosen model's limit (Pro and Nano Banana 2
            # take 14; the old Nano Banana 3): attachments, a character's saved images and
            # the style's.
            generation.check_references(len(declared) + references, model)
        self.members.check_here(identity, settings, Purpose.GENERATE)
        # The server's blocklist from memory: a blocked prompt is never shown to anyone.
        await self.moderation.check_prompt(identity.guild_id, text)
        await self._check_known_balance(identity, cost * count)
        private = await self._private(identity, settings)
        admissions: list[Admission] = []
        try:
            for _ in range(count):
                admissions.append(generation.admit(identity.discord_id, settings.jobs_per_member))
        except BaseException:
            for admission in admissions:
                admission.release()
            raise
        return Ticket(
            identity, settings, admissions[0], text, cost, generation,
            private=private, style=preset, extra=tuple(admissions[1:]),
        )  # fmt: skip

    def batch_size(self, settings: EffectiveSettings) -> int:
        """The most images one order may ask for in a server: its `max_batch`, no more than
        a member's job slots (each image is a job) nor a minute's "generate" uses."""
        slots = min(settings.jobs_per_member, self.generation.max_jobs_per_user)
        return max(1, min(settings.max_batch, MAX_BATCH, slots, settings.rate_limits["generate"]))

    def check_images(self, declared: Sequence[Declared], model: str | None = None) -> None:
        """Images offered for an order that isn't placed yet (a message's, before the form
        asking what to do with them): each as declared, and how many the chosen model (the
        default one if None) takes. Raises a UserFacingError; holds nothing."""
        if not declared:
            raise InvalidInput("editany.no_image")
        for image in declared:
            self.inputs.check_declared(image)
        self.generation.check_references(len(declared), model)

    async def prepare_caption(
        self, identity: Identity, *, turn: Turn | None = None, declared: Sequence[Declared] = ()
    ) -> Ticket[CaptionRequest]:
        """`prepare` for a caption of an image (/describe): the member's "generate" turn, the
        image as declared, the server's rules, a text model to ask, the price (DESCRIBE_COST),
        a job slot. Raises a UserFacingError (private, free) and holds nothing on refusal."""
        if self.captions is None:
            raise InvalidInput("describe.unavailable")
        if turn is None or turn != Turn(identity.discord_id, identity.guild_id):
            self.take_turn(identity)
        for image in declared:
            self.inputs.check_declared(image)
        settings = await self.settings_of(identity.guild_id)
        self.captions.check_available()
        self.members.check_here(identity, settings, Purpose.GENERATE)
        cost = self.captions.cost
        await self._check_known_balance(identity, cost)
        private = await self._private(identity, settings)
        admission = self.captions.admit(identity.discord_id, settings.jobs_per_member)
        return Ticket(identity, settings, admission, "", cost, self.captions, private)

    async def _private(self, identity: Identity, settings: EffectiveSettings) -> bool:
        """The member's private mode where the server allows it (from memory when recent)."""
        if self.community is None or not settings.public_results:
            return False
        return await self.community.keeps_private(identity.discord_id, settings)

    async def _check_known_balance(self, identity: Identity, cost: int) -> None:
        """A member whose balance, as last seen, can't pay: look at the wallet itself before
        saying so (still private, still before any answer)."""
        known = self.members.known_balance(identity.discord_id, identity.guild_id)
        if known is not None and known < cost:
            payer = await self.members.payer(await self.members.enter(identity), Purpose.GENERATE)
            payer.check_affordable(cost)

    async def place(
        self,
        ticket: Ticket[R],
        build: RequestBuild[R],
        listener: JobListener | None = None,
        *,
        member: Member | None = None,
    ) -> Job[R]:
        """The member (`member` when the adapter has it already), the wallet that pays, the
        request (`build`), the reservation and the queue. Raises a UserFacingError and
        charges nothing on refusal; the ticket's job slot goes to the job or back."""
        try:
            member = member or await self.members.enter(ticket.identity)
            payer = await self.members.payer(member, Purpose.GENERATE)
            payer.check_affordable(ticket.cost)
            request = await build(member, payer)
            job = await ticket.desk.reserve(payer, request, listener, admission=ticket.admission)
        except BaseException:
            ticket.admission.release()
            raise
        self.members.note_balance(payer, job.balance)
        await ticket.desk.enqueue(job)
        return job

    async def style_images(self, ticket: Ticket[Any]) -> tuple[SourceImage, ...]:
        """The reference images of the ticket's style, through the input pipeline (none
        without a style)."""
        if ticket.style is None or self.styles is None:
            return ()
        return await self.images(await self.styles.references(ticket.style))

    async def place_batch(
        self,
        ticket: Ticket[GenerationRequest],
        build: RequestBuild[GenerationRequest],
        listeners: Sequence[JobListener | None],
        *,
        member: Member | None = None,
    ) -> list[Job[GenerationRequest]]:
        """`place` for a batch (`ticket.count` images, one listener each): the request is
        built once, then every image is reserved as a job of its own in one transaction (all
        paid for, or none), then queued. Each job is charged, run and refunded on its own.
        Raises a UserFacingError and charges nothing on refusal; every slot goes back."""
        if len(listeners) != ticket.count:
            ticket.cancel()
            raise ValueError(f"{len(listeners)} listeners for {ticket.count} images")
        try:
            member = member or await self.members.enter(ticket.identity)
            payer = await self.members.payer(member, Purpose.GENERATE)
            payer.check_affordable(ticket.total)
            request = await build(member, payer)
            jobs = await self.generation.reserve_batch(
                payer, request, listeners, admissions=ticket.admissions
            )
        except BaseException:
            ticket.cancel()
            raise
        self.members.note_balance(payer, jobs[-1].balance)
        for index, job in enumerate(jobs):
            try:
                await self.generation.enqueue(job)
            except BaseException:
                # Stopping: the job refused here is refunded by the queue; the rest of the
                # batch never ran either, so each is refunded (once) too.
                for rest in jobs[index + 1 :]:
                    await self.generation.cancel(rest, "shutdown before queueing")
                raise
        return jobs

    async def image(self, name: str, data: bytes) -> SourceImage:
        """An image sent with an order, through the one input pipeline: checked and shrunk
        to what the model uses, in the image pool (refused when damaged or over a limit)."""
        return await self.inputs.prepare(data, name)

    async def images(self, files: Sequence[tuple[str, bytes]]) -> tuple[SourceImage, ...]:
        """`image` for each `(name, data)` pair, in order."""
        return tuple([await self.image(name, data) for name, data in files])
