"""`/describe`: a caption of an image, or a prompt that would make it, written by a text model.

A paid job of its own kind (bot.services.captions), ordered like every paid job
(bot.services.orders): memory-only checks, then the job's own message, then the member, the
wallet, the download through the input pipeline and the reservation. The job's message
shows where it waits, then the text (or the failure and its refund).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.captions import Caption, CaptionRequest
from bot.services.jobs import Failure, Job
from bot.services.members import Member, Payer
from cogs.common import (
    TenantCog,
    command_text,
    declared,
    download,
    identity_of,
    in_guild,
    language_of,
    option_texts,
    shorten,
)
from cogs.images import BANANA, coins
from cogs.listener import answer_then_place

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)


class CaptionListener:
    """The job's message: queued or working, then the caption (a prompt in a code block, to
    copy), or why it failed and what was refunded (privately)."""

    def __init__(self, itx: Interaction, language: str, *, public: bool) -> None:
        self.itx = itx
        self.language = language
        self.public = public
        self._lock = asyncio.Lock()
        self._done = False

    def status_text(self, position: int) -> str:
        if position <= 0:
            return t(self.language, "describe.working")
        return t(self.language, "describe.queued", position=position)

    async def answer(self, content: str) -> None:
        await self.itx.response.send_message(content, ephemeral=not self.public)

    async def refuse(self, text: str) -> None:
        await self._private(text)

    async def queued(self, job: Job[Any], position: int) -> None:
        await self._edit(content=self.status_text(position))

    async def started(self, job: Job[Any]) -> None:
        await self._edit(content=self.status_text(0))

    async def completed(self, job: Job[Any], caption: Caption) -> None:
        language = self.language
        text = shorten(caption.text, 3900)
        if caption.style == "prompt":
            text = f"```\n{text.replace('```', 'ʼʼʼ')}\n```"
        embed = discord.Embed(
            title=t(language, f"describe.title_{caption.style}"), description=text, colour=BANANA
        )
        embed.add_field(name=t(language, "gen.cost"), value=coins(language, caption.cost))
        if not self.public:  # the balance is private
            embed.add_field(name=t(language, "gen.balance"), value=coins(language, caption.balance))
        self._done = True
        await self._edit(content=None, embed=embed)

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        reason = t(self.language, failure.key, **failure.params)
        if failure.owed:
            key = "gen.failed_owed"
        else:
            key = "gen.failed" if failure.refunded else "gen.failed_free"
        self._done = True
        await self._private(
            t(self.language, key, reason=reason, coins=failure.owed or failure.refunded)
        )

    async def _edit(self, **changes: Any) -> None:
        async with self._lock:
            if self._done and "embed" not in changes:
                return
            with contextlib.suppress(discord.HTTPException):
                await self.itx.edit_original_response(**changes)

    async def _private(self, text: str) -> None:
        """Failures and refusals are the member's business only: the public message goes."""
        async with self._lock:
            try:
                if self.public:
                    await self.itx.delete_original_response()
                    await self.itx.followup.send(text, ephemeral=True)
                else:
                    await self.itx.edit_original_response(content=text)
            except discord.HTTPException as error:
                log.info("could not tell user %s (%s)", self.itx.user.id, error.status)


class DescribeCog(TenantCog):
    """Captions and prompts from images."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("describe"))
    @app_commands.describe(**option_texts("describe", "image", "style"))
    @app_commands.guild_only()
    @in_guild()
    async def describe(
        self,
        itx: Interaction,
        image: discord.Attachment,
        style: Literal["caption", "prompt"] = "caption",
    ) -> None:
        bot = self.bot
        language = await language_of(itx)
        ticket = await bot.orders.prepare_caption(identity_of(itx), declared=[declared(image)])

        async def build(member: Member, payer: Payer) -> CaptionRequest:
            shrunk = await bot.orders.image(image.filename, await download(image))
            context = {"guild_id": itx.guild_id, "channel_id": itx.channel_id}
            return CaptionRequest(shrunk, style, language, context)

        listener = CaptionListener(itx, language, public=ticket.public)
        await answer_then_place(itx, ticket, build, listener, listener.status_text(ticket.position))


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(DescribeCog(bot))
