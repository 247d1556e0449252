"""How a batch of images answers on Discord (`/generate count:`): one message for the whole
batch, whose images are each a job of their own (bot.services.orders.place_batch).

The message says how many images are coming and what they cost (count × price), follows
them as they are made, then shows every image that was made together: one file and one
embed each (a message holds at most 10 of either), and a row of buttons each (Reroll, Edit,
Variations, Delete, numbered: a message holds at most 5 rows of 5 buttons). An image that
failed was refunded on its own; the member is told privately which one and why. If none was
made, the message goes and only the private answer stays, as for a single image.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from bot.services.generation import Failure, GenerationRequest, Result
from bot.services.jobs import Job
from bot.services.orders import RequestBuild, Ticket
from cogs.common import language_of, shorten
from cogs.errors import describe
from cogs.images import BANANA, coins, prompt_text
from cogs.listener import DiscordJobListener, _extension
from cogs.views import batch_view

if TYPE_CHECKING:
    from bot.app import Interaction

log = logging.getLogger(__name__)


@dataclass
class Part:
    """One image of the batch: what became of its job."""

    number: int
    result: Result | None = None
    failure: Failure | None = None
    unsaved: Failure | None = None

    @property
    def ended(self) -> bool:
        return self.result is not None or self.failure is not None


class PartListener:
    """The listener of one job of the batch: it reports to the batch's message."""

    def __init__(self, batch: BatchListener, part: Part) -> None:
        self.batch = batch
        self.part = part

    async def queued(self, job: Job[Any], position: int) -> None:
        await self.batch.progress(position)

    async def started(self, job: Job[Any]) -> None:
        await self.batch.progress(0)

    async def ready(self, job: Job[Any], result: Result) -> None:
        # Never waits for the other images: this job's storing goes on meanwhile.
        self.part.result = result
        await self.batch.part_ended()

    async def completed(self, job: Job[Any], result: Result) -> None:
        if self.part.result is None:
            self.part.result = result
            await self.batch.part_ended()

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        self.part.failure = failure
        await self.batch.part_ended()

    async def unsaved(self, job: Job[Any], failure: Failure) -> None:
        """Shown to the batch (not yet to the member) or shown already, then not stored."""
        if not self.batch.delivered:
            # Not shown to the member yet: a plain failure (refunded).
            self.part.result = None
            self.part.failure = failure
            await self.batch.part_ended()
            return
        self.part.unsaved = failure
        await self.batch.note_unsaved(self.part)


class BatchListener(DiscordJobListener):
    """One message for every image of a batch (see the module's docstring)."""

    def __init__(
        self, itx: Interaction, language: str, *, public: bool, count: int, cost: int, prompt: str
    ) -> None:
        super().__init__(itx, language, public=public)
        self.count = count
        self.cost = cost
        self.prompt = prompt
        self.parts = [Part(number) for number in range(1, count + 1)]
        self.listeners = [PartListener(self, part) for part in self.parts]
        self.delivered = False
        self._delivering = False
        self._message: discord.Message | None = None

    def first_text(self, position: int) -> str:
        """The first answer: how many images, what they cost, where they wait."""
        return self._progress_text(position)

    def _progress_text(self, position: int) -> str:
        params = {
            "count": self.count, "cost": self.cost, "total": self.cost * self.count,
            "prompt": shorten(self.prompt, 200),
            "ready": sum(p.ended for p in self.parts),
        }  # fmt: skip
        if position > 0:
            return t(self.language, "batch.queued", position=position, **params)
        if params["ready"]:
            return t(self.language, "batch.progress", **params)
        return t(self.language, "batch.generating", **params)

    async def progress(self, position: int) -> None:
        """An image of the batch moved in the queue or started (edited at most every few
        seconds, as a single image's message)."""
        await self._status(self._progress_text(position))

    async def part_ended(self) -> None:
        """One image is made or failed: once every image has, the batch is shown. Checked
        and set with no await between, so exactly one caller shows it."""
        if self._delivering or not all(part.ended for part in self.parts):
            if not self._delivering:
                await self._status(self._progress_text(0))
            return
        self._delivering = True
        await self._show()

    async def _show(self) -> None:
        self._finish()
        made = [part for part in self.parts if part.result is not None]
        failed = [part for part in self.parts if part.failure is not None]
        if made:
            await self._deliver_batch(made, failed)
        self.delivered = True
        if failed:
            await self._tell_failures(failed, whole=not made)

    def _failure_line(self, part: Part, failure: Failure) -> str:
        reason = t(self.language, failure.key, **failure.params)
        if failure.owed:
            key = "gen.failed_owed"
        else:
            key = "gen.failed" if failure.refunded else "gen.failed_free"
        text = t(self.language, key, reason=reason, coins=failure.owed or failure.refunded)
        return t(self.language, "batch.image_failed", number=part.number, count=self.count,
                 text=text)  # fmt: skip

    async def _tell_failures(self, failed: list[Part], *, whole: bool) -> None:
        """Which images failed and their refunds, privately (as a single image's failure);
        when none was made, the public message goes."""
        lines = [self._failure_line(p, p.failure) for p in failed if p.failure is not None]
        text = "\n".join(lines)[:2000]
        async with self._lock:
            if self.token_alive:
                try:
                    if whole:
                        await self.itx.delete_original_response()
                    await self.itx.followup.send(text, ephemeral=True)
                    return
                except discord.HTTPException as error:
                    log.info("batch failure followup failed (%s); posting instead", error.status)
            await self._post(content=text)

    async def _deliver_batch(self, made: list[Part], failed: list[Part]) -> None:
        bot = self.itx.client
        shown = [(part, part.result) for part in made if part.result is not None]
        # Together they stay within the upload limit (Discord's limit applies to the
        # message: the same rule as an answer with several images).
        limit = max(1, self.itx.filesize_limit // len(shown))
        fitted = await asyncio.gather(
            *(bot.gallery.fit(result.data, limit, wait=True) for _, result in shown)
        )
        names = [
            f"nanobanana-{result.image.short_id}.{_extension(mime)}"
            for (_, result), (_, mime) in zip(shown, fitted, strict=True)
        ]
        embeds = self._embeds(shown, names, failed)

        def files() -> list[discord.File]:
            return [
                discord.File(io.BytesIO(data), filename=name)
                for name, (data, _) in zip(names, fitted, strict=True)
            ]

        view = batch_view([(part.number, result.image.id) for part, result in shown], self.language)
        async with self._lock:
            message: discord.Message | None = None
            if self.token_alive:
                try:
                    message = await self.itx.edit_original_response(
                        content=None, embeds=embeds, attachments=files(), view=view
                    )
                except discord.HTTPException as error:
                    log.info("batch edit failed (%s); posting instead", error.status)
            if message is None:
                message = await self._post(embeds=embeds, files=files(), view=view)
            self._message = message
        if message is not None and self.public:
            # Where each is shown, so that deleting one clears it from this message.
            for _, result in shown:
                await bot.moderation.record_post(
                    result.image.id, message.channel.id, message.id, "RESULT"
                )

    def _embeds(
        self, shown: list[tuple[Part, Result]], names: list[str], failed: list[Part]
    ) -> list[discord.Embed]:
        """An embed per image (its number, its image, its id); the first one also says what
        the batch was asked and what it cost (the prompt once: embeds share 6,000 characters)."""
        language = self.language
        bot = self.itx.client
        first = shown[0][1].image
        embeds = []
        for index, ((part, result), name) in enumerate(zip(shown, names, strict=True)):
            image = result.image
            embed = discord.Embed(colour=BANANA, timestamp=image.created_at)
            if index == 0:
                embed.title = t(language, "batch.done_title", count=len(shown))
                embed.description = prompt_text(language, first, limit=3000)
                embed.add_field(
                    name=t(language, "gen.ratio"), value=first.metadata.get("aspect_ratio", "?")
                )
                if first.metadata.get("image_size"):
                    embed.add_field(
                        name=t(language, "gen.size"), value=str(first.metadata["image_size"])
                    )
                model = first.metadata.get("model")
                embed.add_field(
                    name=t(language, "gen.model"),
                    value=bot.generation.catalog.name_of(model if isinstance(model, str) else None),
                )
                paid = sum(r.image.coins_used for _, r in shown)
                embed.add_field(
                    name=t(language, "gen.cost"),
                    value=t(language, "batch.cost", count=len(shown), cost=first.coins_used,
                            total=paid),
                )  # fmt: skip
                if not self.public:
                    balance = coins(language, self._balance(shown, failed))
                    embed.add_field(name=t(language, "gen.balance"), value=balance)
            embed.set_image(url=f"attachment://{name}")
            embed.set_footer(
                text=t(language, "batch.footer", number=part.number, count=self.count,
                       id=image.short_id)
            )  # fmt: skip
            embeds.append(embed)
        return embeds

    @staticmethod
    def _balance(shown: list[tuple[Part, Result]], failed: list[Part]) -> int:
        """The balance after the batch: every image was paid for before any ran, so it is
        the latest refund's balance, else the balance after the last payment."""
        refunds = [p.failure.balance for p in failed
                   if p.failure is not None and p.failure.balance is not None]  # fmt: skip
        if refunds:
            return refunds[-1]
        return min(result.balance for _, result in shown)

    async def note_unsaved(self, part: Part) -> None:
        """An image shown, then not stored (refunded): say so on the message, and its buttons
        go (there is no stored image for them to act on)."""
        failure = part.unsaved
        assert failure is not None
        reason = t(self.language, failure.key, **failure.params)
        key = "gen.unsaved" if failure.refunded else "gen.unsaved_free"
        text = t(self.language, key, reason=reason.rstrip("."), coins=failure.refunded)
        note = t(self.language, "batch.image_note", number=part.number, text=text)
        live = [(p.number, p.result.image.id) for p in self.parts
                if p.result is not None and p.unsaved is None]  # fmt: skip
        async with self._lock:
            try:
                if self.token_alive:
                    await self.itx.edit_original_response(
                        content=note, view=batch_view(live, self.language)
                    )
                elif self._message is not None:
                    await self._message.edit(content=note, view=batch_view(live, self.language))
            except discord.HTTPException as error:
                log.info("could not add the unsaved note (%s)", error.status)


async def start_batch(
    itx: Interaction,
    ticket: Ticket[GenerationRequest],
    build: RequestBuild[GenerationRequest],
) -> list[Job[GenerationRequest]] | None:
    """A batch's order: the answer (how many images, count × price, where they wait), then
    every image placed as a job of its own; a refusal after the answer replaces it privately
    and nothing is charged."""
    listener = BatchListener(
        itx, await language_of(itx), public=ticket.public,
        count=ticket.count, cost=ticket.cost, prompt=ticket.prompt,
    )  # fmt: skip
    try:
        await listener.answer(listener.first_text(ticket.position))
    except BaseException:
        ticket.cancel()
        raise
    try:
        return await itx.client.orders.place_batch(ticket, build, listener.listeners)
    except Exception as error:
        await listener.refuse(await describe(itx, error))
        return None
