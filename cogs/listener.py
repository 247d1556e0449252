"""How a paid job answers on Discord: its first answer is the job's own message, which
`DiscordJobListener` then edits as the job moves (queued with its position, generating, the
image as soon as it is checked and before it is stored, or the failure and its refund).

`start_job` is the Discord half of an order (bot.services.orders): the answer first, then
`place` (the member, the wallet, the inputs, the reservation, the queue); a refusal after the
answer replaces it privately, and nothing is charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import discord

from bot.i18n import t
from bot.services.generation import Failure, GenerationRequest, Result
from bot.services.jobs import Job, JobListener
from bot.services.orders import RequestBuild, Ticket
from cogs.cancel import cancel_view
from cogs.common import language_of, shorten
from cogs.errors import describe
from cogs.images import BANANA, coins, image_link, model_name, result_text, sources_embed

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)
R = TypeVar("R")

# Interaction tokens last 15 minutes; switch to the channel a little before that.
TOKEN_LIFETIME = 14 * 60
STATUS_EDIT_INTERVAL = 2.0
# An estimated start is shown to this many seconds: a smaller move in the estimate is not
# worth an edit of the message.
ETA_STEP = 10
# A message carries at most ten attachments.
MAX_FILES = 10


class ResultView(Protocol):
    """What puts the buttons under a result (cogs.views.result_view)."""

    def __call__(
        self, image_id: str, language: str, *, web_url: str | None = None
    ) -> discord.ui.View: ...


class Answering(JobListener, Protocol):
    """A listener that gives the interaction its first answer, and takes it back privately
    when the order is refused after it."""

    async def answer(self, content: str) -> None: ...

    async def refuse(self, text: str) -> None: ...


async def answer_then_place(
    itx: Interaction, ticket: Ticket[R], build: RequestBuild[R], listener: Answering, first: str
) -> Job[R] | None:
    """The Discord half of an order: answer with the job's own message (`first`), then place
    it (`build` makes the request once the member and their wallet are known: downloads,
    stored inputs). A refusal after the answer replaces it privately; nothing is charged.
    None when refused."""
    try:
        await listener.answer(first)
    except BaseException:
        ticket.cancel()
        raise
    try:
        return await itx.client.orders.place(ticket, build, listener)
    except Exception as error:
        await listener.refuse(await describe(itx, error))
        return None


async def start_job(
    itx: Interaction,
    ticket: Ticket[GenerationRequest],
    build: RequestBuild[GenerationRequest],
    *,
    result_view: ResultView,
) -> Job[GenerationRequest] | None:
    """An image job's order: its message shows where it waits, then the image."""
    listener = DiscordJobListener(
        itx, await language_of(itx), public=ticket.public,
        result_view=result_view, cancellable=True,
    )  # fmt: skip
    position = ticket.position
    eta = itx.client.cancels.estimate_new(position)
    first = listener.status_text(ticket.prompt, position, eta)
    # A job that will wait can be cancelled from its first message (its id is known already).
    listener.cancel_id = ticket.admission.job_id if position > 0 else None
    return await answer_then_place(itx, ticket, build, listener, first)


class DiscordJobListener:
    """Shows a job's progress on the interaction's message, then the result or failure.

    With the server's `public_results` off, every message is ephemeral (and the result, if the
    interaction token has expired, goes to the member's DMs instead of the channel)."""

    def __init__(
        self,
        itx: Interaction,
        language: str,
        *,
        public: bool = True,
        result_view: ResultView | None = None,
        cancellable: bool = False,
    ) -> None:
        self.itx = itx
        self.language = language
        self.public = public
        self.result_view = result_view
        # Queued messages carry a Cancel button (image jobs ordered on Discord).
        self.cancellable = cancellable
        #: The job the message's Cancel button cancels now (None: no button).
        self.cancel_id: str | None = None
        self._shown_cancel: str | None = None
        self._pending_cancel: str | None = None
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

    def status_text(self, prompt: str, position: int, eta: float | None = None) -> str:
        """ "Generating" when a worker is free for the job, else its place in the queue and,
        once the bot has measured the API's recent latency, when it should start (`eta`
        seconds from now, as a Discord relative timestamp that counts down by itself)."""
        prompt = shorten(prompt, 200)
        if position <= 0:
            return t(self.language, "gen.generating", prompt=prompt)
        if eta is None:
            return t(self.language, "gen.queued", position=position, prompt=prompt)
        return t(self.language, "gen.queued_eta", position=position, prompt=prompt, eta=_eta(eta))

    async def answer(self, content: str) -> None:
        """The interaction's first response: the job's message itself (one request), with
        its Cancel button when it will wait."""
        cancel = self.cancel_id if self.cancellable else None
        view = cancel_view(cancel, self.language) if cancel else discord.utils.MISSING
        await self.itx.response.send_message(content, ephemeral=not self.public, view=view)
        self._shown = content
        self._shown_cancel = cancel
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

    async def queued(self, job: Job[Any], position: int) -> None:
        """Its place in the queue and estimated start, with the Cancel button."""
        eta = self.itx.client.cancels.estimate(job.id)
        text = self.status_text(job.request.prompt, position, eta)
        await self._status(text, job.id if self.cancellable else None)

    async def started(self, job: Job[Any]) -> None:
        prompt = shorten(job.request.prompt, 200)
        await self._status(t(self.language, "gen.generating", prompt=prompt))

    async def _status(self, content: str, cancel: str | None = None) -> None:
        """Edit at most every STATUS_EDIT_INTERVAL s, the latest state winning, and only
        when it changes; never waits for Discord (the job goes on meanwhile). `cancel`: the
        job the message's Cancel button is for (None: no button, e.g. once it runs)."""
        if self._final:
            return
        if (content, cancel) == (self._shown, self._shown_cancel) and self._pending is None:
            return
        self._pending = content
        self._pending_cancel = cancel
        if self._flush_task is None or self._flush_task.done():
            wait = self._last_edit + STATUS_EDIT_INTERVAL - time.monotonic()
            self._flush_task = asyncio.create_task(self._flush_later(max(0.0, wait)))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            content, self._pending = self._pending, None
            cancel = self._pending_cancel
            if content is None or self._final or not self.token_alive:
                return
            if (content, cancel) == (self._shown, self._shown_cancel):
                return
            self._last_edit = time.monotonic()
            changed = cancel != self._shown_cancel
            self._shown, self._shown_cancel = content, cancel
            view: Any = discord.utils.MISSING
            if changed:
                view = cancel_view(cancel, self.language) if cancel else None
            with contextlib.suppress(discord.HTTPException):
                await self.itx.edit_original_response(content=content, view=view)

    def _finish(self) -> None:
        self._final = True
        if self._flush_task is not None:
            self._flush_task.cancel()

    async def ready(self, job: Job[Any], result: Result) -> None:
        """The answer is checked: show it now (it is stored meanwhile)."""
        await self._deliver(result)

    async def completed(self, job: Job[Any], result: Result) -> None:
        if not self._delivered:
            await self._deliver(result)

    async def unsaved(self, job: Job[Any], failure: Failure) -> None:
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
        gallery = self.itx.client.gallery
        fitted = await asyncio.gather(*(gallery.fit(data, limit, wait=True) for _, data in shown))
        names = [
            f"nanobanana-{short_id}.{_extension(mime)}"
            for (short_id, _), (_, mime) in zip(shown, fitted, strict=True)
        ]
        # The balance is private: only a result the member alone sees shows it.
        embed = result_embed(
            self.itx.client, self.language, result, names[0], show_balance=not self.public
        )
        # A grounded image's sources, listed under it.
        sources = sources_embed(self.language, result.image)
        embeds = [embed] if sources is None else [embed, sources]

        def files() -> list[discord.File]:
            return [
                discord.File(io.BytesIO(data), filename=name)
                for name, (data, _) in zip(names, fitted, strict=True)
            ]

        bot = self.itx.client
        view = (
            self.result_view(result.image.id, self.language, web_url=image_link(bot, result.image))
            if self.result_view is not None
            else discord.utils.MISSING
        )
        async with self._lock:
            message: discord.Message | None = None
            if self.token_alive:
                try:
                    message = await self.itx.edit_original_response(
                        content=None, embeds=embeds, attachments=files(), view=view
                    )
                except discord.HTTPException as error:
                    log.info("interaction edit failed (%s); posting instead", error.status)
            if message is None:
                message = await self._post(embeds=embeds, files=files(), view=view)
        if message is not None and self.public:
            # Where it is shown, so that a moderator deleting it removes this message too.
            await self.itx.client.moderation.record_post(
                result.image.id, message.channel.id, message.id, "RESULT"
            )

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        self._finish()
        reason = t(self.language, failure.key, **failure.params)
        if failure.owed:
            key = "gen.failed_owed"
        else:
            key = "gen.failed" if failure.refunded else "gen.failed_free"
        text = t(self.language, key, reason=reason, coins=failure.owed or failure.refunded)
        async with self._lock:
            if failure.key.startswith("reason.cancelled") and self.token_alive:
                # Cancelled from its own message: that message says so, without its button.
                try:
                    await self.itx.edit_original_response(content=text, view=None)
                    return
                except discord.HTTPException as error:
                    log.info("could not show a cancel (%s); posting it", error.status)
            elif self.token_alive:
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
    bot: NanoBananaBot, language: str, result: Result, filename: str, *, show_balance: bool = False
) -> discord.Embed:
    """The embed under a generated image: its prompt (an edit's with the prompts it came from)
    and what the model said beside it, ratio, resolution, model, cost, the short image ids,
    and (only when the member alone sees it) the balance left."""
    image = result.image
    edit = bool(image.metadata.get("source_prompts"))
    embed = discord.Embed(
        title=t(language, "gen.edited_title" if edit else "gen.done_title"),
        description=result_text(language, image),
        colour=BANANA,
        timestamp=image.created_at,
    )
    embed.add_field(name=t(language, "gen.ratio"), value=image.metadata.get("aspect_ratio", "?"))
    if image.metadata.get("image_size"):
        embed.add_field(name=t(language, "gen.size"), value=str(image.metadata["image_size"]))
    embed.add_field(name=t(language, "gen.model"), value=model_name(bot, image))
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


def _eta(seconds: float) -> str:
    """When a job should start, as a Discord relative timestamp ("in 2 minutes"), which
    every member's client shows in their own language and keeps counting down (style R,
    checked 2026-12-07: discord.js formatters' TimestampStyles.RelativeTime, rendered by
    discord.py's `utils.format_dt`)."""
    now = time.time()
    at = ETA_STEP * -(-(now + seconds) // ETA_STEP)  # rounded up to the step
    return discord.utils.format_dt(datetime.datetime.fromtimestamp(at, datetime.UTC), "R")


def _extension(mime_type: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type, "png")
