"""`/generate` and the Reroll / Edit / Delete buttons on every result.

Acknowledgement first: before any await, the cog runs the checks that need nothing but memory
(the member's rate limit, prompt, model, ratio, size, the attachments' declared sizes and
types, the server's channels, role and blocklist, the member's job slots and room in the
queue), so
those refusals are ephemeral and free. Then its first answer is the job's own message
("queued" or "generating", public or private as the server keeps results), never a defer
followed by an edit. Only then the database work (account, wallet, the reservation) and the
downloads; a refusal there (coins, a damaged attachment...) replaces that message with a
private one and charges nothing. A `DiscordJobListener` edits the message as the job moves:
queued (with position), generating, the image (as soon as it is checked, before it is
stored), or the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot import imaging
from bot.i18n import t
from bot.nanobanana.client import MAX_INPUT_SIDE
from bot.nanobanana.profiles import profile_for
from bot.services.catalog import possible_ratios, possible_sizes
from bot.services.errors import ImageNotFound
from bot.services.gallery import ImageContext
from bot.services.generation import (
    Admission,
    Failure,
    GenerationRequest,
    Job,
    Result,
    SourceImage,
)
from bot.services.media import problem_to_error
from bot.services.members import Member, Payer, Purpose
from bot.services.permissions import Actor
from bot.services.settings import EffectiveSettings
from bot.services.types import Image
from cogs.common import (
    RateLimited,
    allowed_guild,
    command_text,
    download,
    identity_of,
    language_of,
    option_texts,
    refuse_declared,
    shorten,
    take_turn,
)
from cogs.errors import describe, report_error

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)
T = TypeVar("T")

BANANA = discord.Colour(0xFFE135)
# Interaction tokens last 15 minutes; switch to the channel a little before that.
TOKEN_LIFETIME = 14 * 60
STATUS_EDIT_INTERVAL = 2.0
# A message carries at most ten attachments.
MAX_FILES = 10
# Attachments of /generate being downloaded at once (each up to MAX_UPLOAD_BYTES in memory).
CONCURRENT_DOWNLOADS = 4


def in_guild() -> Callable[[T], T]:
    """A check that refuses the command in DMs with a friendly message (Discord hides
    guild-only commands there, but clients and old caches don't always)."""

    def predicate(itx: discord.Interaction[Any]) -> bool:
        if itx.guild_id is None:
            raise app_commands.NoPrivateMessage()
        return True

    return app_commands.check(predicate)


async def read_attachment(bot: NanoBananaBot, attachment: discord.Attachment) -> SourceImage:
    """Download one attachment and shrink it at once, in the image pool, to what the model
    uses (a few megapixels): the downloaded megabytes are dropped there and then. Refuses a
    damaged or unsupported image (and "busy" when the pool is full)."""
    settings = bot.settings
    data = await download(attachment)
    try:
        small, mime = await bot.imagework.run(
            imaging.shrink_input, data, max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_input_pixels, max_side=MAX_INPUT_SIDE,
        )  # fmt: skip
    except imaging.ImageProblem as problem:
        raise problem_to_error(problem, attachment.filename) from None
    finally:
        del data
    return SourceImage(small, mime)


async def fit(data: bytes, limit: int) -> tuple[bytes, str]:
    """An image within `limit` bytes for Discord: as it is when it fits (no thread, no copy),
    else shrunk off the event loop."""
    if len(data) <= limit:
        return data, imaging.sniff_mime(data) or "image/png"
    return await asyncio.to_thread(imaging.fit_to_size, data, limit)


class DiscordJobListener:
    """Shows a job's progress on the interaction's message, then the result or failure.

    With the server's `public_results` off, every message is ephemeral (and the result, if the
    interaction token has expired, goes to the member's DMs instead of the channel)."""

    def __init__(self, itx: Interaction, language: str, *, public: bool = True) -> None:
        self.itx = itx
        self.language = language
        self.public = public
        self.expires_at = time.monotonic() + TOKEN_LIFETIME
        self._last_edit = 0.0
        self._shown: str | None = None  # the status the message shows now
        self._pending: str | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._final = False
        self._delivered = False
        self._lock = asyncio.Lock()

    @property
    def token_alive(self) -> bool:
        return time.monotonic() < self.expires_at

    def status_text(self, prompt: str, position: int) -> str:
        """ "Generating" when a worker is free for the job, else its place in the queue."""
        prompt = shorten(prompt, 200)
        if position <= 0:
            return t(self.language, "gen.generating", prompt=prompt)
        return t(self.language, "gen.queued", position=position, prompt=prompt)

    async def answer(self, content: str) -> None:
        """The interaction's first response: the job's message itself (one request)."""
        await self.itx.response.send_message(content, ephemeral=not self.public)
        self._shown = content
        self._last_edit = time.monotonic()

    async def refuse(self, text: str) -> None:
        """A refusal after the first response (nothing was charged): private, in place of
        the job's message."""
        self._finish()
        async with self._lock:
            try:
                if self.public:
                    await self.itx.delete_original_response()
                    await self.itx.followup.send(text, ephemeral=True)
                else:
                    await self.itx.edit_original_response(content=text)
            except discord.HTTPException as error:
                log.info("could not tell user %s about a refusal (%s)", self.itx.user.id,
                         error.status)  # fmt: skip

    async def queued(self, job: Job, position: int) -> None:
        prompt = shorten(job.request.prompt, 200)
        await self._status(t(self.language, "gen.queued", position=position, prompt=prompt))

    async def started(self, job: Job) -> None:
        prompt = shorten(job.request.prompt, 200)
        await self._status(t(self.language, "gen.generating", prompt=prompt))

    async def _status(self, content: str) -> None:
        """Edit at most every STATUS_EDIT_INTERVAL s, the latest state winning, and only
        when it changes; never waits for Discord (the job goes on meanwhile)."""
        if self._final:
            return
        if content == self._shown and self._pending is None:
            return
        self._pending = content
        if self._flush_task is None or self._flush_task.done():
            wait = self._last_edit + STATUS_EDIT_INTERVAL - time.monotonic()
            self._flush_task = asyncio.create_task(self._flush_later(max(0.0, wait)))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            content, self._pending = self._pending, None
            if content is None or content == self._shown or self._final or not self.token_alive:
                return
            self._last_edit = time.monotonic()
            self._shown = content
            with contextlib.suppress(discord.HTTPException):
                await self.itx.edit_original_response(content=content)

    def _finish(self) -> None:
        self._final = True
        if self._flush_task is not None:
            self._flush_task.cancel()

    async def ready(self, job: Job, result: Result) -> None:
        """The answer is checked: show it now (it is stored meanwhile)."""
        await self._deliver(result)

    async def completed(self, job: Job, result: Result) -> None:
        if not self._delivered:
            await self._deliver(result)

    async def unsaved(self, job: Job, failure: Failure) -> None:
        """Shown, but it could not be stored (and was refunded): say so under the image,
        which stays; its buttons go (there is no stored image for them to act on)."""
        reason = t(self.language, failure.key, **failure.params)
        key = "gen.unsaved" if failure.refunded else "gen.unsaved_free"
        text = t(self.language, key, reason=reason.rstrip("."), coins=failure.refunded)
        async with self._lock:
            if self.token_alive:
                try:
                    await self.itx.edit_original_response(content=text, view=None)
                    return
                except discord.HTTPException as error:
                    log.info("could not add the unsaved note (%s); posting it", error.status)
            await self._post(content=text)

    async def _deliver(self, result: Result) -> None:
        self._finish()
        self._delivered = True
        shown = [
            (result.image.short_id, result.data),
            *((e.image.short_id, e.data) for e in result.extras),
        ]
        shown = shown[:MAX_FILES]
        # Every image of the answer goes along; together they stay within the upload limit.
        limit = max(1, self.itx.filesize_limit // len(shown))
        fitted = await asyncio.gather(*(fit(data, limit) for _, data in shown))
        names = [
            f"nanobanana-{short_id}.{_extension(mime)}"
            for (short_id, _), (_, mime) in zip(shown, fitted, strict=True)
        ]
        # The balance is private: only a result the member alone sees shows it.
        embed = result_embed(self.language, result, names[0], show_balance=not self.public)

        def files() -> list[discord.File]:
            return [
                discord.File(io.BytesIO(data), filename=name)
                for name, (data, _) in zip(names, fitted, strict=True)
            ]

        view = result_view(
            result.image.id, self.language, web_url=image_link(self.itx.client, result.image)
        )
        async with self._lock:
            message: discord.Message | None = None
            if self.token_alive:
                try:
                    message = await self.itx.edit_original_response(
                        content=None, embed=embed, attachments=files(), view=view
                    )
                except discord.HTTPException as error:
                    log.info("interaction edit failed (%s); posting instead", error.status)
            if message is None:
                message = await self._post(embed=embed, files=files(), view=view)
        if message is not None and self.public:
            # Where it is shown, so that a moderator deleting it removes this message too.
            await self.itx.client.moderation.record_post(
                result.image.id, message.channel.id, message.id, "RESULT"
            )

    async def failed(self, job: Job, failure: Failure) -> None:
        self._finish()
        reason = t(self.language, failure.key, **failure.params)
        if failure.owed:
            key = "gen.failed_owed"
        else:
            key = "gen.failed" if failure.refunded else "gen.failed_free"
        text = t(self.language, key, reason=reason, coins=failure.owed or failure.refunded)
        async with self._lock:
            if self.token_alive:
                try:
                    # Failures are the user's business only: drop the public placeholder and
                    # tell them privately.
                    await self.itx.delete_original_response()
                    await self.itx.followup.send(text, ephemeral=True)
                    return
                except discord.HTTPException as error:
                    log.info("interaction followup failed (%s); posting instead", error.status)
            await self._post(content=text)

    async def _post(self, **kwargs: Any) -> discord.Message | None:
        """After the token: public results go to the interaction's channel with the bot's own
        permissions, mentioning the member (a partial channel needs no cache, only the id);
        private ones to the member's DMs."""
        if not self.public:
            with contextlib.suppress(discord.HTTPException):
                await self.itx.user.send(**kwargs)
            return None
        if self.itx.channel_id is None:
            log.warning("no channel to post job result for user %s", self.itx.user.id)
            return None
        content = kwargs.pop("content", None)
        mention = self.itx.user.mention
        channel = self.itx.client.get_partial_messageable(self.itx.channel_id)
        return await channel.send(
            content=f"{mention} {content}" if content else mention,
            allowed_mentions=discord.AllowedMentions(users=[self.itx.user]),
            **kwargs,
        )


def result_embed(
    language: str, result: Result, filename: str, *, show_balance: bool = False
) -> discord.Embed:
    """The embed under a generated image: its prompt (an edit's with the prompts it came from),
    ratio, resolution, model, cost, the short image ids, and (only when the member alone sees
    it) the balance left."""
    image = result.image
    edit = bool(image.metadata.get("source_prompts"))
    embed = discord.Embed(
        title=t(language, "gen.edited_title" if edit else "gen.done_title"),
        description=prompt_text(language, image),
        colour=BANANA,
        timestamp=image.created_at,
    )
    embed.add_field(name=t(language, "gen.ratio"), value=image.metadata.get("aspect_ratio", "?"))
    if image.metadata.get("image_size"):
        embed.add_field(name=t(language, "gen.size"), value=str(image.metadata["image_size"]))
    embed.add_field(name=t(language, "gen.model"), value=model_name(image))
    embed.add_field(name=t(language, "gen.cost"), value=coins(language, image.coins_used))
    if show_balance:
        embed.add_field(name=t(language, "gen.balance"), value=coins(language, result.balance))
    if result.extras:
        embed.add_field(
            name=t(language, "gen.more_images"),
            value="\n".join(f"`{extra.image.short_id}`" for extra in result.extras)[:1024],
            inline=False,
        )
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"{t(language, 'gen.image_id')}: {image.short_id}")
    return embed


def prompt_text(language: str, image: Image, limit: int = 4000) -> str:
    """An image's prompt as members read it; an edit's shows what it was made from: the
    original prompt, the earlier edits, then its own instruction."""
    earlier = [str(p) for p in image.metadata.get("source_prompts") or () if p]
    own = image.prompt or ""
    if not earlier:
        return shorten(own, limit)
    lines = [t(language, "gen.original_prompt", prompt=shorten(earlier[0], 1000))]
    lines += [t(language, "gen.edit_step", instruction=shorten(p, 1000)) for p in earlier[1:]]
    lines.append(t(language, "gen.edit_step", instruction=shorten(own, 1500)))
    return shorten("\n".join(lines), limit)


def model_name(image: Image) -> str:
    """The model's name as members know it ("Nano Banana Pro"), not its API id."""
    model = image.metadata.get("model")
    return profile_for(model).name if isinstance(model, str) and model else "?"


def coins(language: str, amount: int) -> str:
    """ "100 coins", "1 moneda"."""
    return t(language, "gen.coins", coins=amount)


def _extension(mime_type: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type, "png")


def result_view(
    image_id: str,
    language: str,
    *,
    reroll: bool = True,
    edit: bool = True,
    delete: bool = True,
    web_url: str | None = None,
) -> discord.ui.View:
    """Persistent Reroll / Edit / Delete buttons (they survive restarts), and a link to the
    image in the web gallery when there is one."""
    view = discord.ui.View(timeout=None)
    if reroll:
        view.add_item(RerollButton(image_id, t(language, "gen.reroll")))
    if edit:
        view.add_item(EditButton(image_id, t(language, "gen.edit")))
    if delete:
        view.add_item(DeleteButton(image_id, t(language, "gen.delete")))
    if web_url is not None:
        view.add_item(web_button(language, web_url))
    return view


def web_button(language: str, url: str) -> discord.ui.Button[Any]:
    """ "Open in web gallery": a link button (Discord opens the URL; no custom_id)."""
    return discord.ui.Button(
        label=t(language, "gen.web_gallery"), style=discord.ButtonStyle.link, url=url, emoji="🖼️"
    )


def image_link(bot: NanoBananaBot, image: Image) -> str | None:
    """The image's page in the web gallery, if members can reach one."""
    where = f"/servers/{image.guild_id}" if image.guild_id is not None else "/all"
    return bot.web_link(f"{where}/images/{image.id}")


RequestBuilder = Callable[[Member, Payer], Awaitable[GenerationRequest]]


async def job_settings(itx: Interaction) -> EffectiveSettings:
    """The server's settings, from memory when read lately (one read otherwise)."""
    settings = itx.client.guild_settings
    return settings.cached(itx.guild_id) or await settings.effective(itx.guild_id)


def admit(itx: Interaction, settings: EffectiveSettings) -> Admission:
    """The checks of a new job that need nothing but memory (no await): the server's rules
    for this channel and role, the member's job slots, room in the queue. Raises a
    UserFacingError (answered privately, for free)."""
    bot = itx.client
    bot.members.check_here(identity_of(itx), settings, Purpose.GENERATE)
    return bot.generation.admit(itx.user.id, settings.jobs_per_member)


async def start_job(
    itx: Interaction,
    admission: Admission,
    settings: EffectiveSettings,
    prompt: str,
    build: RequestBuilder,
    *,
    cost: int | None = None,
    member: tuple[Member, Payer] | None = None,
) -> Job | None:
    """Answer with the job's own message first, then reserve (`build` makes the request once
    the member and their wallet are loaded: downloads, stored inputs) and queue. A refusal
    after the answer replaces it privately; nothing is charged. None when refused."""
    bot = itx.client
    listener = DiscordJobListener(itx, await language_of(itx), public=settings.public_results)
    try:
        # The server's blocklist before the first answer shows the prompt (from memory).
        await bot.moderation.check_prompt(itx.guild_id, prompt)
        await listener.answer(listener.status_text(prompt, admission.position))
    except BaseException:
        admission.release()
        raise
    try:
        member_payer = member or await paying_member(itx)
        payer = member_payer[1]
        if cost is not None:
            payer.check_affordable(cost)
        request = await build(*member_payer)
        job = await bot.generation.reserve(payer, request, listener, admission=admission)
    except Exception as error:
        admission.release()
        await listener.refuse(await describe(itx, error))
        return None
    bot.members.note_balance(payer, job.balance)
    await bot.generation.enqueue(job)
    return job


async def paying_member(itx: Interaction) -> tuple[Member, Payer]:
    """The member generating here and the wallet that pays (the server's rules checked)."""
    bot = itx.client
    member = await bot.members.enter(identity_of(itx))
    payer = await bot.members.payer(member, Purpose.GENERATE)
    return member, payer


def request_context(itx: Interaction) -> dict[str, Any]:
    return {"guild_id": itx.guild_id, "channel_id": itx.channel_id}


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class _ImageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nb:base:(?P<id>x)"):
    """A button bound to one image; checks who presses it and reports errors itself.

    Its state (the image and its owner) is loaded once, in `from_custom_id`, as in
    discord.py's dynamic_counter example; `interaction_check` and `run` use it as loaded.
    """

    action = "base"
    style = discord.ButtonStyle.secondary
    emoji = "🍌"

    def __init__(
        self, image_id: str, label: str | None = None, *, context: ImageContext | None = None
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or self.action.title(),
                style=self.style,
                emoji=self.emoji,
                custom_id=f"nb:{self.action}:{image_id}",
            )
        )
        self.image_id = image_id
        self.context = context
        self.actor: Actor | None = None
        self.refusal: RateLimited | None = None

    #: The member's rate limit this button counts against (see bot.services.ratelimits).
    limit_action = "other"

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Any:
        label = getattr(item, "label", None)
        try:
            # Counted first, before any database read: a refused press costs nothing.
            take_turn(interaction, cls.limit_action)
        except RateLimited as refusal:
            button = cls(match["id"], label)
            button.refusal = refusal
            return button
        context = await interaction.client.gallery.context(match["id"])
        return cls(match["id"], label, context=context)

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        bot = interaction.client
        try:
            if self.refusal is not None:
                raise self.refusal
            bot.permissions.check_guild_allowed(interaction.guild_id)
            if self.context is None:
                raise ImageNotFound()
            self.actor = await bot.accounts.actor(identity_of(interaction))
            self.check(interaction.client, self.actor, self.context)
            return True
        except Exception as error:
            await report_error(interaction, error)
            return False

    def check(self, bot: NanoBananaBot, actor: Actor, context: ImageContext) -> None:
        """Raise if `actor` may not press this button (the default: remixing, owners only)."""
        bot.permissions.check_remix_image(actor, context.image, context.owner_mention)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            assert self.context is not None and self.actor is not None
            await self.run(interaction, self.context, self.actor)
        except Exception as error:
            await report_error(interaction, error)

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        raise NotImplementedError


class RerollButton(_ImageButton, template=rf"nb:reroll:(?P<id>{_UUID})"):
    """A new paid job with the same prompt, model, ratio, size and inputs."""

    action = "reroll"
    limit_action = "generate"
    style = discord.ButtonStyle.primary
    emoji = "🎲"

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        image = context.image
        if not image.prompt:
            raise ImageNotFound()
        settings = await job_settings(interaction)
        admission = admit(interaction, settings)

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            # Reads the job's stored inputs: after the answer.
            return await bot.generation.reroll_request(image, request_context(interaction))

        await start_job(interaction, admission, settings, image.prompt, build)


class EditButton(_ImageButton, template=rf"nb:edit:(?P<id>{_UUID})"):
    """Asks for an instruction, then a new paid job that edits this image."""

    action = "edit"
    emoji = "✏️"

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        # A result is shown before it is stored: the form opens at once all the same, and the
        # edit waits for the image after its own answer (GenerationService.settled).
        image = context.image
        if not image.is_ready and not interaction.client.generation.settling(image.id):
            raise ImageNotFound()
        language = await language_of(interaction)
        await interaction.response.send_modal(EditModal(self.image_id, language))


class DeleteButton(_ImageButton, template=rf"nb:delete:(?P<id>{_UUID})"):
    """Asks first (privately): deleting is for good and its coins are not refunded. Its owner, a
    moderator of its own server, or a bot admin."""

    action = "delete"
    limit_action = "delete"
    style = discord.ButtonStyle.danger
    emoji = "🗑️"

    def check(self, bot: NanoBananaBot, actor: Actor, context: ImageContext) -> None:
        bot.permissions.check_delete_image(actor, context.image, context.owner_mention)

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        language = await language_of(interaction)
        image = context.image
        # The message the button is on, to clear once deleted; an ephemeral one can only be
        # edited with its own interaction's token, which the confirmation won't have.
        shown = interaction.message
        message_id = shown.id if shown is not None and not shown.flags.ephemeral else None
        view = discord.ui.View(timeout=None)
        view.add_item(
            ConfirmDeleteButton(image.id, t(language, "gen.delete_yes"), message_id=message_id)
        )
        view.add_item(CancelDeleteButton(image.id, t(language, "gen.delete_no")))
        key = "gen.delete_confirm" if image.coins_used else "gen.delete_confirm_free"
        await interaction.response.send_message(
            t(language, key, coins=image.coins_used), view=view, ephemeral=True
        )


class ConfirmDeleteButton(
    DeleteButton, template=rf"nb:delete:yes:(?P<id>{_UUID})(?::(?P<message>[0-9]{{1,20}}))?"
):
    """Deletes the image (object, thumbnail, row, further images of its answer) and clears the
    messages that showed it."""

    action = "delete:yes"

    def __init__(
        self,
        image_id: str,
        label: str | None = None,
        *,
        context: ImageContext | None = None,
        message_id: int | None = None,
    ) -> None:
        super().__init__(image_id, label, context=context)
        self.message_id = message_id
        if message_id is not None:
            self.item.custom_id = f"nb:{self.action}:{image_id}:{message_id}"

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Any:
        button = await super().from_custom_id(interaction, item, match)
        button.message_id = int(match["message"]) if match["message"] else None
        return button

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        # Through moderation: a moderator's deletion of someone's image is audited.
        deleted = await bot.moderation.delete_image(actor, context)
        text = t(await language_of(interaction), "gen.deleted")
        await interaction.response.edit_message(content=text, view=None)
        # The results that showed it say so instead (their buttons would find nothing).
        shown = {post.message_id: post.channel_id for post in deleted.posts
                 if post.kind == "RESULT"}  # fmt: skip
        if self.message_id is not None and interaction.channel_id is not None:
            shown.setdefault(self.message_id, interaction.channel_id)
        for message_id, channel_id in shown.items():
            message = bot.get_partial_messageable(channel_id).get_partial_message(message_id)
            with contextlib.suppress(discord.HTTPException):
                await message.edit(content=text, embeds=[], attachments=[], view=None)


class CancelDeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"nb:delete:no:(?P<id>{_UUID})"
):
    """Keeps the image: the question goes away."""

    def __init__(self, image_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Cancel",
                style=discord.ButtonStyle.secondary,
                custom_id=f"nb:delete:no:{image_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelDeleteButton:
        return cls(match["id"], getattr(item, "label", None))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        language = await language_of(interaction)
        await interaction.response.edit_message(content=t(language, "gen.delete_kept"), view=None)


EDIT_MODAL_ID = re.compile(rf"nb:editmodal:(?P<id>{_UUID})")
INSTRUCTION_FIELD = "instruction"


class EditModal(discord.ui.Modal):
    """The form asking for an Edit's instruction.

    Only a form: its submission is handled statelessly by `GenerateCog.on_interaction`, from
    the image id in its custom_id, so it still works after a restart and when the same image's
    Edit is opened twice at once (discord.py keys open modals by custom_id alone).
    """

    def __init__(self, image_id: str, language: str) -> None:
        super().__init__(title=t(language, "gen.edit_title"), custom_id=f"nb:editmodal:{image_id}")
        self.add_item(
            discord.ui.TextInput(
                label=t(language, "gen.edit_label"),
                placeholder=t(language, "gen.edit_placeholder"),
                style=discord.TextStyle.paragraph,
                max_length=4000,
                custom_id=INSTRUCTION_FIELD,
            )
        )


def submitted_value(data: Any, custom_id: str) -> str | None:
    """A text input's value from a modal submission payload (action rows or labels)."""
    if isinstance(data, dict):
        if data.get("custom_id") == custom_id and "value" in data:
            return str(data["value"])
        children: Any = [data.get("component"), *(data.get("components") or [])]
        data = children
    if isinstance(data, list):
        for child in data:
            found = submitted_value(child, custom_id)
            if found is not None:
                return found
    return None


async def submit_edit(interaction: Interaction, image_id: str, instruction: str) -> None:
    """An Edit's modal was submitted: a new paid job that edits this image. Memory-only
    checks, the answer, then the image, its owner and the stored image to edit."""
    bot = interaction.client
    take_turn(interaction, "generate")
    bot.permissions.check_guild_allowed(interaction.guild_id)
    prompt = bot.generation.validate_prompt(instruction)
    settings = await job_settings(interaction)
    admission = admit(interaction, settings)

    async def build(member: Member, payer: Payer) -> GenerationRequest:
        context = await bot.gallery.context(image_id)
        if context is None:
            raise ImageNotFound()
        bot.permissions.check_remix_image(member.actor, context.image, context.owner_mention)
        return await bot.generation.edit_request(
            context.image, prompt, request_context(interaction)
        )

    await start_job(interaction, admission, settings, prompt, build)


class GenerateCog(commands.Cog):
    """Image generation and editing."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        # Attachments are downloaded a few at a time: each is megabytes in memory until shrunk.
        self.downloads = asyncio.Semaphore(CONCURRENT_DOWNLOADS)
        # Built per bot: its options depend on the configured models.
        self.__cog_app_commands__.append(generate_command(self))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: Interaction) -> None:
        """Edit modal submissions, handled from their payload alone (see EditModal)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = EDIT_MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            instruction = submitted_value(data.get("components"), INSTRUCTION_FIELD) or ""
            await submit_edit(interaction, match["id"], instruction)
        except Exception as error:
            await report_error(interaction, error)


def generate_command(cog: GenerateCog) -> app_commands.Command[Any, ..., None]:
    """`/generate` with the options this bot's models call for: `model` only when members
    may choose between several, `size` only when a model has sizes. Which models exist
    changes while the bot runs (Google retires them): `model` and `size` are autocompleted
    from the live catalog, each choice labelled with its cost, so members see the price
    before anything is charged; the ratios offered are those any possible model takes."""
    models = cog.bot.models

    # A plain str for every choice (not Choice) so that an unknown value reaches the
    # service's own check and its friendly message instead of a conversion error.
    async def generate(
        itx: Interaction,
        prompt: str,
        aspect_ratio: str = "1:1",
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        model: str | None = None,
        size: str | None = None,
    ) -> None:
        # Before any await: what memory alone can check (the rate limit ran before this, in
        # the tree's check), so these refusals are private, free and instant.
        bot = cog.bot
        generation = bot.generation
        prompt = generation.validate_prompt(prompt)
        ratio = generation.validate_ratio(aspect_ratio, model)
        attachments = [a for a in (image, image2) if a is not None]
        for attachment in attachments:
            refuse_declared(attachment, bot.settings.max_upload_bytes,
                            bot.settings.max_input_pixels)  # fmt: skip
        settings = await job_settings(itx)  # from memory but for a server's first use
        # Refuses an unknown model or size before anything else.
        cost = generation.cost_of(model, size, default=settings.generation_cost)
        member = None
        known = bot.members.known_balance(itx.user.id, itx.guild_id)
        if known is not None and known < cost:
            # Probably can't pay: look at the wallet itself before saying so (still private).
            member = await paying_member(itx)
            member[1].check_affordable(cost)
        admission = admit(itx, settings)

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            async with cog.downloads:
                inputs = tuple([await read_attachment(bot, a) for a in attachments])
            return GenerationRequest(
                prompt=prompt, aspect_ratio=ratio, inputs=inputs, context=request_context(itx),
                model=model, image_size=size,
            )  # fmt: skip

        await start_job(itx, admission, settings, prompt, build, cost=cost, member=member)

    hidden = set()
    if not models.settings.extras:
        hidden.add("model")
    if not possible_sizes(models.settings, models.lineup):
        hidden.add("size")
    signature = inspect.signature(generate)
    generate.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name not in hidden]
    )
    descriptions = option_texts(
        "generate", "prompt", "aspect_ratio", "image", "image2", "model", "size"
    )
    callback = app_commands.describe(**{k: v for k, v in descriptions.items() if k not in hidden})(
        generate
    )
    callback = app_commands.choices(
        aspect_ratio=[
            app_commands.Choice(name=r, value=r)
            for r in possible_ratios(models.settings, models.lineup)[:25]
        ]
    )(callback)
    autocompletes: dict[str, Any] = {}
    if "model" not in hidden:
        autocompletes["model"] = _model_choices
    if "size" not in hidden:
        autocompletes["size"] = _size_choices
    if autocompletes:
        callback = app_commands.autocomplete(**autocompletes)(callback)
    callback = allowed_guild()(in_guild()(app_commands.guild_only()(callback)))
    return app_commands.Command(**command_text("generate"), callback=callback)


async def _model_choices(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The models members may pick now, each with its cost (from memory: instant)."""
    catalog = itx.client.generation.catalog
    typed = current.strip().lower()
    return [
        app_commands.Choice(name=choice.label, value=choice.value)
        for choice in catalog.models()
        if not typed or typed in choice.label.lower() or typed in choice.value
    ][:25]


async def _size_choices(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The sizes of the model picked so far (the default's otherwise), with their costs."""
    catalog = itx.client.generation.catalog
    picked = getattr(itx.namespace, "model", None)
    model = picked if isinstance(picked, str) and picked in catalog.profiles else None
    if model is None and catalog.usable and not catalog.model_option:
        model = catalog.default_model
    typed = current.strip().lower()
    return [
        app_commands.Choice(name=choice.label, value=choice.value)
        for choice in catalog.size_labels(model)
        if not typed or typed in choice.label.lower()
    ][:25]


async def setup(bot: NanoBananaBot) -> None:
    bot.add_dynamic_items(
        RerollButton, EditButton, DeleteButton, ConfirmDeleteButton, CancelDeleteButton
    )
    await bot.add_cog(GenerateCog(bot))
