"""`/describe`: a caption of an image, or a prompt that would make it, written by a text model.

A paid job of its own kind (bot.services.captions), ordered like every paid job
(bot.services.orders): memory-only checks, then the job's own message, then the member, the
wallet, the download through the input pipeline and the reservation. The job's message
shows where it waits, then the text (or the failure and its refund).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.captions import Caption, CaptionRequest, Style
from bot.services.errors import InvalidInput
from bot.services.jobs import Failure, Job
from bot.services.media import Declared
from bot.services.members import Member, Payer
from cogs.common import (
    TenantCog,
    allowed_guild,
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
from cogs.translator import menu_key

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)

#: The message command's catalogue prefix (its name is "Describe with Nano Banana").
MENU = menu_key("Describe with Nano Banana")


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


@dataclass(frozen=True)
class MessageImage:
    """The image a message command describes: what Discord declares of it, and how to
    fetch its bytes (an attachment, or an embed's image through Discord's media proxy)."""

    declared: Declared
    read: Callable[[], Awaitable[bytes]]


def message_image(bot: NanoBananaBot, message: discord.Message) -> MessageImage | None:
    """The first image of a message: an attached image, else an embed's image or thumbnail.
    An embed's picture is fetched only from its `proxy_url` (Discord's media proxy), never
    from the third-party address it shows, so nobody can make the bot fetch what they like;
    its size is unknown until fetched (the input pipeline refuses it then, free)."""
    for attachment in message.attachments:
        kind = (attachment.content_type or "").lower()
        if kind.startswith("image/") or (not kind and attachment.width):
            return MessageImage(declared(attachment), functools.partial(download, attachment))
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            url = media.proxy_url
            if url:
                name = url.split("?")[0].rsplit("/", 1)[-1] or "embed"
                size = Declared(name=name, size=0, width=media.width or 0,
                                height=media.height or 0)  # fmt: skip
                return MessageImage(size, functools.partial(_fetch, bot, url, name))
    return None


async def _fetch(bot: NanoBananaBot, url: str, name: str) -> bytes:
    try:
        return await bot.http.get_from_cdn(url)
    except discord.HTTPException:
        raise InvalidInput("image.download_failed", name=name) from None


class DescribeCog(TenantCog):
    """Captions and prompts from images: `/describe`, and the message command "Describe with
    Nano Banana" (Apps menu of any message with an image), alike in price and limits."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(
            name=t("en", f"{MENU}.name"), callback=self.describe_message
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

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
        source = MessageImage(declared(image), functools.partial(download, image))
        await self.order(itx, source, style)

    @app_commands.guild_only()
    @allowed_guild()
    @in_guild()
    async def describe_message(self, itx: Interaction, message: discord.Message) -> None:
        """The message command: a caption of the message's first image."""
        source = message_image(self.bot, message)
        if source is None:
            raise InvalidInput("describe.no_image")
        await self.order(itx, source, "caption")

    async def order(self, itx: Interaction, source: MessageImage, style: Style) -> None:
        """Order a caption of `source` (orders.prepare_caption first: refusals are private
        and free; then the job's own message, then the download and the reservation)."""
        bot = self.bot
        language = await language_of(itx)
        ticket = await bot.orders.prepare_caption(identity_of(itx), declared=[source.declared])

        async def build(member: Member, payer: Payer) -> CaptionRequest:
            shrunk = await bot.orders.image(source.declared.name, await source.read())
            context = {"guild_id": itx.guild_id, "channel_id": itx.channel_id}
            return CaptionRequest(shrunk, style, language, context)

        listener = CaptionListener(itx, language, public=ticket.public)
        await answer_then_place(itx, ticket, build, listener, listener.status_text(ticket.position))


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(DescribeCog(bot))
