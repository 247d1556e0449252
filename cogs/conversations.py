"""Conversations on Discord (issue 22): reply to a result to continue it, or talk in a thread.

- **Reply to continue**: a member replies to one of the bot's results and mentions the bot
  (Discord's reply "ping" does it): the reply's text is the next turn of that image's
  conversation, its image attachments join as references. The bot reads such a message
  without the privileged Message Content intent: Discord sends the content of messages that
  mention the app (docs.discord.com, "You might not need a privileged intent", read
  2026-12-07). The answer is a reply to the member's message, edited as the job moves.
- **Edit threads**: "Continue in a thread" under a result opens a thread on it; in the thread
  each turn (a reply mentioning the bot, or the thread's Edit button) sends the conversation
  so far; under each result: Reroll (that turn again), Undo (back one turn, free), Branch (a
  new thread from that turn).

Every turn is a paid order through bot.services.conversations (orders -> the job engine);
refusals before anything is charged go to the member privately (a DM for a message; an
ephemeral answer for a button), and cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord.ext import commands

from bot.i18n import language_from_locale, t
from bot.services.conversations import Target
from bot.services.errors import (
    ConversationNotFound,
    ImageNotFound,
    InvalidInput,
    NotEnoughCoins,
    UserFacingError,
)
from bot.services.generation import Failure, GenerationRequest, Result
from bot.services.jobs import Job
from bot.services.orders import Ticket
from bot.services.permissions import Identity
from cogs.common import declared, download, identity_of, language_of, shorten
from cogs.errors import describe, report_error
from cogs.images import image_link
from cogs.listener import STATUS_EDIT_INTERVAL, DiscordJobListener, result_embed
from cogs.views import INSTRUCTION_FIELD, UUID, result_view, submitted_value

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)

#: An image id in a result's buttons (nb:reroll:<id>, nb:edit:<id>, nb:cv:...:<conv>:<id>).
_IMAGE_IN_BUTTON = re.compile(rf"^nb:(?:reroll|edit|delete|thread):(?P<id>{UUID})$")
_TURN_IN_BUTTON = re.compile(rf"^nb:cv:(?:reroll|branch):{UUID}:(?P<id>{UUID})$")
CV_EDIT_MODAL = re.compile(rf"nb:cv:editmodal:(?P<conv>{UUID})")
#: Discord's limit on a thread's name.
THREAD_NAME_CHARS = 100
#: Public threads archive after a day without messages (minutes; one of Discord's values).
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440


def image_id_in(message: discord.Message) -> str | None:
    """The image a result message of the bot shows, from its buttons (None: not a result)."""
    for row in message.components:
        for child in getattr(row, "children", ()):
            custom_id = str(getattr(child, "custom_id", "") or "")
            match = _IMAGE_IN_BUTTON.match(custom_id) or _TURN_IN_BUTTON.match(custom_id)
            if match is not None:
                return match["id"]
    return None


def without_mention(content: str, bot_id: int) -> str:
    """The member's words, the bot's mention taken out."""
    return re.sub(rf"<@!?{bot_id}>", " ", content).strip()


def identity_of_message(message: discord.Message) -> Identity:
    """The Discord-free identity of a message's author, and where: a message carries no
    locale, so the server's preferred one speaks for them."""
    author = message.author
    channel = message.channel
    guild = message.guild
    roles = author.roles if isinstance(author, discord.Member) else []
    manage = isinstance(author, discord.Member) and author.guild_permissions.manage_guild
    return Identity(
        discord_id=author.id,
        display_name=author.display_name,
        locale=str(guild.preferred_locale) if guild is not None else None,
        is_bot=author.bot,
        can_manage_guild=guild is not None and manage,
        guild_id=guild.id if guild is not None else None,
        channel_id=channel.id,
        parent_channel_id=getattr(channel, "parent_id", None),
        role_ids=frozenset(role.id for role in roles),
        channel_nsfw=bool(getattr(channel, "nsfw", False)),
    )


def message_error(language: str, error: BaseException) -> str:
    """The member's text for a refusal of a message (a message has no interaction)."""
    if isinstance(error, NotEnoughCoins):
        return t(language, "error.coins", balance=error.balance, cost=error.cost)
    if isinstance(error, UserFacingError):
        return t(language, error.key, **error.params)
    log.error("unexpected error on a conversation message", exc_info=error)
    return t(language, "error.unexpected", error_id="conv")


async def tell_privately(message: discord.Message, text: str) -> None:
    """A refusal of a message, as privately as Discord allows: a DM (a reply that only
    mentions its author when their DMs are closed)."""
    try:
        await message.author.send(text)
        return
    except discord.HTTPException:
        pass
    with contextlib.suppress(discord.HTTPException):
        await message.reply(
            text, mention_author=True, allowed_mentions=discord.AllowedMentions(replied_user=True)
        )


class MessageJobListener:
    """A turn asked by a message: the bot's reply shows where it waits, then the image (or
    the failure and its refund)."""

    def __init__(
        self, bot: NanoBananaBot, message: discord.Message, language: str,
        conversation_id: str | None = None,
    ) -> None:  # fmt: skip
        self.bot = bot
        self.message = message
        self.language = language
        #: In a conversation's thread, its buttons go under the result (else a result's own).
        self.conversation_id = conversation_id
        self.reply: discord.Message | None = None
        self._shown = ""
        self._last_status = 0.0
        self._delivered = False
        self._lock = asyncio.Lock()

    async def answer(self, content: str) -> None:
        self.reply = await self.message.reply(content, mention_author=False)
        self._shown = content
        self._last_status = time.monotonic()

    async def refuse(self, text: str) -> None:
        async with self._lock:
            if self.reply is not None:
                with contextlib.suppress(discord.HTTPException):
                    await self.reply.delete()
        await tell_privately(self.message, text)

    async def _edit(self, **kwargs: Any) -> None:
        if self.reply is None:
            return
        async with self._lock:
            try:
                await self.reply.edit(**kwargs)
            except discord.HTTPException as error:
                log.info("could not edit a conversation reply (%s)", error.status)

    async def queued(self, job: Job[Any], position: int) -> None:
        prompt = shorten(job.request.prompt, 200)
        await self._status(t(self.language, "gen.queued", position=position, prompt=prompt))

    async def started(self, job: Job[Any]) -> None:
        prompt = shorten(job.request.prompt, 200)
        await self._status(t(self.language, "gen.generating", prompt=prompt))

    async def _status(self, content: str) -> None:
        """A progress edit, at most every STATUS_EDIT_INTERVAL s and only when it changes
        (a channel's message edits share Discord's rate limit with the result's)."""
        now = time.monotonic()
        if self._delivered or content == self._shown:
            return
        if now - self._last_status < STATUS_EDIT_INTERVAL:
            return
        self._shown, self._last_status = content, now
        await self._edit(content=content)

    async def ready(self, job: Job[Any], result: Result) -> None:
        await self._deliver(result)

    async def completed(self, job: Job[Any], result: Result) -> None:
        if not self._delivered:
            await self._deliver(result)

    async def unsaved(self, job: Job[Any], failure: Failure) -> None:
        reason = t(self.language, failure.key, **failure.params)
        key = "gen.unsaved" if failure.refunded else "gen.unsaved_free"
        text = t(self.language, key, reason=reason.rstrip("."), coins=failure.refunded)
        await self._edit(content=text, view=None)

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        reason = t(self.language, failure.key, **failure.params)
        if failure.owed:
            key = "gen.failed_owed"
        else:
            key = "gen.failed" if failure.refunded else "gen.failed_free"
        text = t(self.language, key, reason=reason, coins=failure.owed or failure.refunded)
        await self._edit(content=text, embeds=[], view=None)

    async def _deliver(self, result: Result) -> None:
        self._delivered = True
        guild = self.message.guild
        limit = guild.filesize_limit if guild is not None else 10 * 1024 * 1024
        data, mime = await self.bot.gallery.fit(result.data, limit, wait=True)
        name = f"nanobanana-{result.image.short_id}.{'jpg' if 'jpeg' in mime else 'png'}"
        embed = result_embed(self.bot, self.language, result, name)
        if self.conversation_id is not None:
            view = thread_view(self.conversation_id, result.image.id, self.language)
        else:
            view = result_view(
                result.image.id, self.language, web_url=image_link(self.bot, result.image)
            )
        await self._edit(
            content=None,
            embed=embed,
            attachments=[discord.File(io.BytesIO(data), filename=name)],
            view=view,
        )
        if self.reply is not None:
            await self.bot.moderation.record_post(
                result.image.id, self.reply.channel.id, self.reply.id, "RESULT"
            )


async def _referenced(message: discord.Message) -> discord.Message:
    """The message a reply answers (fetched when Discord did not send it along); a deleted
    one is refused."""
    reference = message.reference
    assert reference is not None and reference.message_id is not None
    resolved = reference.resolved
    if isinstance(resolved, discord.Message):
        return resolved
    if isinstance(resolved, discord.DeletedReferencedMessage):
        raise InvalidInput("conv.message_gone")
    try:
        return await message.channel.fetch_message(reference.message_id)
    except discord.NotFound:
        raise InvalidInput("conv.message_gone") from None


async def continue_from_message(bot: NanoBananaBot, message: discord.Message) -> None:
    """A message that mentions the bot: the next turn of a conversation when it replies to
    one of the bot's results, or is posted in a conversation's thread; ignored otherwise."""
    me = bot.user
    if me is None or message.author.bot or all(u.id != me.id for u in message.mentions):
        return
    guild_id = message.guild.id if message.guild is not None else None
    if not bot.permissions.guild_allowed(guild_id):
        return
    identity = identity_of_message(message)
    language = identity.language
    # Looked up by id, not by the channel's type: after a restart a thread may not be in
    # discord.py's cache yet (its messages come with a partial channel).
    conversation = await bot.conversations.in_thread(message.channel.id)
    try:
        target: Target
        if message.reference is not None and message.reference.message_id is not None:
            replied = await _referenced(message)
            image_id = image_id_in(replied) if replied.author.id == me.id else None
            if image_id is None and conversation is None:
                raise InvalidInput("conv.not_a_result")
            if conversation is not None:
                target = await bot.conversations.target_for(conversation)
            else:
                assert image_id is not None
                target = await bot.conversations.target_for_image(image_id)
        elif conversation is not None:
            target = await bot.conversations.target_for(conversation)
        else:
            return  # a mention elsewhere is not a turn
        prompt = without_mention(message.content, me.id)
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        ticket = await bot.conversations.prepare(
            identity, target, prompt, declared=[declared(a) for a in images]
        )
    except Exception as error:
        await tell_privately(message, message_error(language, error))
        return
    threaded = conversation.id if conversation is not None else None
    listener = MessageJobListener(bot, message, language, threaded)
    try:
        await listener.answer(t(language, "gen.queued", position=max(1, ticket.position),
                                prompt=shorten(ticket.prompt, 200)))  # fmt: skip
    except discord.HTTPException as error:
        # The bot may not post here (a thread it cannot write in): nothing was charged.
        ticket.cancel()
        log.info("could not answer a conversation message (%s)", error.status)
        await tell_privately(message, t(language, "conv.thread_refused"))
        return
    except BaseException:
        ticket.cancel()
        raise
    try:
        try:
            files = [(a.filename, await download(a)) for a in images]
        except BaseException:
            ticket.cancel()
            raise
        channel_id = message.channel.id
        await bot.conversations.place(
            ticket, target, files, listener,
            context={"guild_id": guild_id, "channel_id": channel_id}, channel_id=channel_id,
        )  # fmt: skip
    except Exception as error:
        await listener.refuse(message_error(language, error))


# Threads -----------------------------------------------------------------------------------


def thread_view(conversation_id: str, image_id: str, language: str) -> discord.ui.View:
    """The buttons under a result in a conversation's thread."""
    view = discord.ui.View(timeout=None)
    view.add_item(TurnRerollButton(conversation_id, image_id, t(language, "conv.reroll")))
    view.add_item(UndoButton(conversation_id, t(language, "conv.undo")))
    view.add_item(BranchButton(conversation_id, image_id, t(language, "conv.branch")))
    view.add_item(ThreadEditButton(conversation_id, t(language, "conv.edit")))
    return view


def thread_controls(conversation_id: str, language: str) -> discord.ui.View:
    """The buttons of a thread's first message: Edit (the next turn) and Undo."""
    view = discord.ui.View(timeout=None)
    view.add_item(ThreadEditButton(conversation_id, t(language, "conv.edit")))
    view.add_item(UndoButton(conversation_id, t(language, "conv.undo")))
    return view


class _Button(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nb:cv:base"):
    """A conversation button: reports its own errors privately."""

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            interaction.client.permissions.check_guild_allowed(interaction.guild_id)
            await self.run(interaction)
        except Exception as error:
            await report_error(interaction, error)

    async def run(self, interaction: Interaction) -> None:
        raise NotImplementedError


class OpenThreadButton(_Button, template=rf"nb:thread:(?P<id>{UUID})"):
    """ "Continue in a thread": opens a thread on the result, its conversation's own."""

    def __init__(self, image_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Continue in a thread",
                style=discord.ButtonStyle.secondary,
                emoji="🧵",
                custom_id=f"nb:thread:{image_id}",
            )
        )
        self.image_id = image_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> OpenThreadButton:
        return cls(match["id"], getattr(item, "label", None))

    async def run(self, interaction: Interaction) -> None:
        bot = interaction.client
        language = await language_of(interaction)
        message = interaction.message
        if interaction.guild_id is None or message is None or message.flags.ephemeral:
            raise InvalidInput("conv.thread_here")
        actor = await bot.accounts.actor(identity_of(interaction))
        target = await bot.conversations.target_for_image(self.image_id)
        # Who may, before anything is written or opened.
        await bot.conversations.check_may_open(actor, target)
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = shorten(target.tip.prompt or target.tip.title or "Nano Banana", THREAD_NAME_CHARS)
        try:
            thread = await message.create_thread(
                name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as error:
            log.info("could not open a thread (%s)", error.status)
            raise InvalidInput("conv.thread_refused") from None
        conversation = await bot.conversations.in_new_thread(
            actor, target, message.channel.id, thread.id
        )
        try:
            await thread.send(
                t(language, "conv.thread_intro", mention=f"<@{bot.user.id if bot.user else 0}>"),
                view=thread_controls(conversation.id, language),
            )
        except discord.HTTPException as error:
            log.info("could not post in a new thread (%s)", error.status)
            raise InvalidInput("conv.thread_refused") from None
        await interaction.followup.send(
            t(language, "conv.thread_opened", thread=thread.mention), ephemeral=True
        )


class ThreadEditButton(_Button, template=rf"nb:cv:edit:(?P<conv>{UUID})"):
    """The thread's next turn: asks for the instruction in a form."""

    def __init__(self, conversation_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Edit", style=discord.ButtonStyle.primary, emoji="✏️",
                custom_id=f"nb:cv:edit:{conversation_id}",
            )
        )  # fmt: skip
        self.conversation_id = conversation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ThreadEditButton:
        return cls(match["conv"], getattr(item, "label", None))

    async def run(self, interaction: Interaction) -> None:
        language = await language_of(interaction)
        modal = discord.ui.Modal(
            title=t(language, "gen.edit_title"), custom_id=f"nb:cv:editmodal:{self.conversation_id}"
        )
        modal.add_item(
            discord.ui.TextInput(
                label=t(language, "gen.edit_label"),
                placeholder=t(language, "gen.edit_placeholder"),
                style=discord.TextStyle.paragraph,
                max_length=4000,
                custom_id=INSTRUCTION_FIELD,
            )
        )
        await interaction.response.send_modal(modal)


class UndoButton(_Button, template=rf"nb:cv:undo:(?P<conv>{UUID})"):
    """Back one turn (free): the next turn continues from the one before."""

    def __init__(self, conversation_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Undo", style=discord.ButtonStyle.secondary, emoji="↩️",
                custom_id=f"nb:cv:undo:{conversation_id}",
            )
        )  # fmt: skip
        self.conversation_id = conversation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> UndoButton:
        return cls(match["conv"], getattr(item, "label", None))

    async def run(self, interaction: Interaction) -> None:
        bot = interaction.client
        language = await language_of(interaction)
        actor = await bot.accounts.actor(identity_of(interaction))
        position = await bot.conversations.undo(actor, self.conversation_id)
        await interaction.response.send_message(
            t(language, "conv.undone", turn=position, previous=position - 1,
              member=interaction.user.mention),
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip


class TurnRerollButton(_Button, template=rf"nb:cv:reroll:(?P<conv>{UUID}):(?P<id>{UUID})"):
    """That turn again (a new paid job, same history and references), in its place."""

    def __init__(self, conversation_id: str, image_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Reroll", style=discord.ButtonStyle.primary, emoji="🎲",
                custom_id=f"nb:cv:reroll:{conversation_id}:{image_id}",
            )
        )  # fmt: skip
        self.conversation_id = conversation_id
        self.image_id = image_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> TurnRerollButton:
        return cls(match["conv"], match["id"], getattr(item, "label", None))

    async def run(self, interaction: Interaction) -> None:
        bot = interaction.client
        turn = bot.orders.take_turn(identity_of(interaction))
        conversation = await bot.conversations.get(self.conversation_id)
        if conversation is None:
            raise ConversationNotFound()
        turn_id = await _turn_of_job(bot, conversation.id, self.image_id)
        target = await bot.conversations.reroll_target(conversation, turn_id)
        prompt = await bot.conversations.turn_prompt(conversation, turn_id)
        ticket = await bot.conversations.prepare(
            identity_of(interaction), target, prompt, turn=turn
        )
        await order_in_thread(interaction, ticket, target, conversation.id)


class BranchButton(_Button, template=rf"nb:cv:branch:(?P<conv>{UUID}):(?P<id>{UUID})"):
    """A new thread whose conversation goes on from this turn (free)."""

    def __init__(self, conversation_id: str, image_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Branch", style=discord.ButtonStyle.secondary, emoji="🌿",
                custom_id=f"nb:cv:branch:{conversation_id}:{image_id}",
            )
        )  # fmt: skip
        self.conversation_id = conversation_id
        self.image_id = image_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> BranchButton:
        return cls(match["conv"], match["id"], getattr(item, "label", None))

    async def run(self, interaction: Interaction) -> None:
        bot = interaction.client
        language = await language_of(interaction)
        actor = await bot.accounts.actor(identity_of(interaction))
        conversation = await bot.conversations.get(self.conversation_id)
        if conversation is None:
            raise ConversationNotFound()
        position = await _position_of_job(bot, conversation.id, self.image_id)
        parent_id = conversation.channel_id
        if parent_id is None or interaction.guild_id is None:
            raise InvalidInput("conv.thread_here")
        # Who may, before a thread is opened or a row written.
        await bot.conversations.check_may_open(
            actor, await bot.conversations.target_for(conversation)
        )
        await interaction.response.defer(ephemeral=True, thinking=True)
        name = t(language, "conv.branch_name", turn=position)
        try:
            data = await bot.http.start_thread_without_message(
                parent_id, name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                type=discord.ChannelType.public_thread.value,
            )  # fmt: skip
        except discord.HTTPException as error:
            log.info("could not open a branch's thread (%s)", error.status)
            raise InvalidInput("conv.thread_refused") from None
        branch = await bot.conversations.branch(actor, conversation.id, position, parent_id)
        thread_id = int(data["id"])
        await bot.conversations.show_in_thread(branch.id, parent_id, thread_id)
        thread = bot.get_partial_messageable(thread_id, type=discord.ChannelType.public_thread)
        try:
            await thread.send(
                t(language, "conv.branch_intro", turn=position, member=interaction.user.mention),
                view=thread_controls(branch.id, language),
                allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
            )
        except discord.HTTPException as error:
            log.info("could not post in a branch's thread (%s)", error.status)
            raise InvalidInput("conv.thread_refused") from None
        await interaction.followup.send(
            t(language, "conv.thread_opened", thread=f"<#{thread_id}>"), ephemeral=True
        )


async def _turn_of_job(bot: NanoBananaBot, conversation_id: str, job_id: str) -> str:
    for turn in await bot.conversations.repo.chain(conversation_id):
        if turn.job_id == job_id:
            return turn.id
    raise InvalidInput("conv.turn_gone")


async def _position_of_job(bot: NanoBananaBot, conversation_id: str, job_id: str) -> int:
    for turn in await bot.conversations.repo.chain(conversation_id):
        if turn.job_id == job_id:
            return turn.position
    raise InvalidInput("conv.turn_gone")


async def order_in_thread(
    itx: Interaction, ticket: Ticket[GenerationRequest], target: Target, conversation_id: str
) -> None:
    """A turn asked by a button or a form in a thread: answered on the interaction, then
    placed (a refusal after the answer replaces it privately; nothing is charged)."""
    bot = itx.client
    language = await language_of(itx)

    def view(image_id: str, language: str, *, web_url: str | None = None) -> discord.ui.View:
        return thread_view(conversation_id, image_id, language)

    listener = DiscordJobListener(
        itx, language, public=ticket.settings.public_results, result_view=view
    )
    first = listener.status_text(ticket.prompt, ticket.position)
    context = {"guild_id": itx.guild_id, "channel_id": itx.channel_id}

    async def place() -> Any:
        return await bot.conversations.place(ticket, target, (), listener, context=context)

    await answer_then_place_turn(itx, ticket, listener, first, place)


async def answer_then_place_turn(
    itx: Interaction, ticket: Ticket[GenerationRequest], listener: DiscordJobListener,
    first: str, place: Any,
) -> None:  # fmt: skip
    """`answer_then_place` for a conversation's turn (its place records the turn)."""
    try:
        await listener.answer(first)
    except BaseException:
        ticket.cancel()
        raise
    try:
        await place()
    except Exception as error:
        await listener.refuse(await describe(itx, error))


async def submit_thread_edit(itx: Interaction, conversation_id: str, instruction: str) -> None:
    """The thread's Edit form: the next turn of its conversation."""
    bot = itx.client
    turn = bot.orders.take_turn(identity_of(itx))
    conversation = await bot.conversations.get(conversation_id)
    if conversation is None:
        raise ConversationNotFound()
    target = await bot.conversations.target_for(conversation)
    ticket = await bot.conversations.prepare(identity_of(itx), target, instruction, turn=turn)
    await order_in_thread(itx, ticket, target, conversation.id)


class ConversationsCog(commands.Cog):
    """Reply to continue, and edit threads."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        try:
            await continue_from_message(self.bot, message)
        except ImageNotFound as error:
            language = language_from_locale(None)
            await tell_privately(message, message_error(language, error))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: Interaction) -> None:
        """The thread's Edit form, handled from its payload alone (it survives restarts)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = CV_EDIT_MODAL.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            instruction = submitted_value(data.get("components"), INSTRUCTION_FIELD) or ""
            await submit_thread_edit(interaction, match["conv"], instruction)
        except Exception as error:
            await report_error(interaction, error)


async def setup(bot: NanoBananaBot) -> None:
    bot.add_dynamic_items(
        OpenThreadButton, ThreadEditButton, UndoButton, TurnRerollButton, BranchButton
    )
    await bot.add_cog(ConversationsCog(bot))
