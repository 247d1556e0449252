"""The message command "Edit with Nano Banana" (right-click a message, Apps): a paid image job
that edits the images of any message (its attachments and its embeds' images), with the
instruction asked for in a form.

The command reads the message as Discord resolves it in the interaction (no message content
intent needed), refuses for free what memory can refuse (no image, more than the default
model takes, an image over the limits as declared), and opens the form; the images wait in
memory for its submission (for as long as Discord's CDN links live, at most
`PENDING_SECONDS`). The submission is an order like /generate's (bot.services.orders): rate
limit, prompt, channel rules, blocklist, budgets, price; then the job's own message; then the
downloads from Discord's CDN through the one input pipeline (the bytes are copied, never the
links), the reservation and the queue.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.services.errors import InvalidInput
from bot.services.generation import GenerationRequest
from bot.services.media import Declared
from bot.services.members import Member, Payer
from cogs.common import (
    check_allowed_guild,
    declared,
    identity_of,
    language_of,
    shorten,
    take_turn,
)
from cogs.errors import report_error
from cogs.listener import start_job
from cogs.views import request_context, result_view, submitted_value

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

#: How long a message's images wait for the form (Discord's interaction tokens last 15 min).
PENDING_SECONDS = 15 * 60
#: Forms open at once across the bot (the oldest is forgotten beyond this).
MAX_PENDING = 1000
MODAL_ID = re.compile(r"nb:editany:(?P<key>[0-9]{1,20})")
INSTRUCTION_FIELD = "instruction"
#: Hosts of Discord's CDN and media proxy: embed images are fetched from there only (an
#: embed's own `url` may point anywhere on the web; its `proxy_url` is Discord's copy).
DISCORD_MEDIA = ("discordapp.com", "discordapp.net", "discord.com")


@dataclass(frozen=True)
class Source:
    """One image of the message: an attachment (read through discord.py) or an embed's image
    (by its Discord proxy URL), and what Discord declares about it."""

    declared: Declared
    attachment: discord.Attachment | None = None
    url: str | None = None


@dataclass(frozen=True)
class Pending:
    """A message's images waiting for the form's submission."""

    user_id: int
    sources: tuple[Source, ...]
    message_id: int
    at: float


def images_of(message: discord.Message) -> list[Source]:
    """The message's images, in order: image attachments, then each embed's image (a link
    preview of an image shows it as the thumbnail of an "image" embed)."""
    found = [
        Source(declared(a), attachment=a)
        for a in message.attachments
        if (a.content_type or "").startswith("image/") or a.width
    ]
    for embed in message.embeds:
        media = embed.image if embed.image.url else None
        if media is None and embed.type in ("image", "gifv") and embed.thumbnail.url:
            media = embed.thumbnail
        if media is None:
            continue
        url = media.proxy_url or media.url
        if not url or not from_discord(url):
            continue
        name = shorten(urlsplit(url).path.rsplit("/", 1)[-1] or "image", 60)
        size = Declared(name, 0, None, media.width or 0, media.height or 0)
        found.append(Source(size, url=url))
    return found


def from_discord(url: str) -> bool:
    """Whether `url` is on Discord's CDN or media proxy (or the API host discord.py talks to,
    which tests point at the fake Discord)."""
    host = (urlsplit(url).hostname or "").lower()
    api = (urlsplit(discord.http.Route.BASE).hostname or "").lower()
    return host == api or any(host == d or host.endswith(f".{d}") for d in DISCORD_MEDIA)


class EditAnyModal(discord.ui.Modal):
    """The form asking what to change; its submission is handled from its payload
    (`EditAnyCog.on_interaction`), by the key of the images waiting for it."""

    def __init__(self, key: int, language: str, count: int) -> None:
        super().__init__(title=t(language, "editany.title"), custom_id=f"nb:editany:{key}")
        self.add_item(
            discord.ui.TextInput(
                label=shorten(t(language, "editany.label", count=count), 45),
                placeholder=t(language, "gen.edit_placeholder"),
                style=discord.TextStyle.paragraph,
                max_length=4000,
                custom_id=INSTRUCTION_FIELD,
            )
        )


class EditAnyCog(commands.Cog):
    """ "Edit with Nano Banana" on any message with images."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        self.pending: OrderedDict[int, Pending] = OrderedDict()
        menu = app_commands.ContextMenu(
            name=t("en", "menu.edit_any.name"), callback=self.open, extras={"key": "edit_any"}
        )
        menu.add_check(check_allowed_guild)
        self.menu = app_commands.guild_only()(menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def open(self, itx: Interaction, message: discord.Message) -> None:
        """The command: the message's images checked as declared, then the form."""
        if itx.guild_id is None:
            raise app_commands.NoPrivateMessage()
        take_turn(itx, "other")
        sources = images_of(message)
        # No image, too many for the model, or one over the limits: refused now, for free.
        self.bot.orders.check_images([s.declared for s in sources])
        self._forget_old()
        self.pending[itx.id] = Pending(itx.user.id, tuple(sources), message.id, time.monotonic())
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        language = await language_of(itx)
        await itx.response.send_modal(EditAnyModal(itx.id, language, len(sources)))

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - PENDING_SECONDS
        while self.pending and next(iter(self.pending.values())).at < cutoff:
            self.pending.popitem(last=False)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: Interaction) -> None:
        """The form's submissions."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            instruction = submitted_value(data.get("components"), INSTRUCTION_FIELD) or ""
            await self.edit(interaction, int(match["key"]), instruction)
        except Exception as error:
            await report_error(interaction, error)

    async def edit(self, itx: Interaction, key: int, instruction: str) -> None:
        """An order like /generate's, with the message's images as its inputs."""
        self._forget_old()
        pending = self.pending.get(key)
        if pending is None or pending.user_id != itx.user.id:
            raise InvalidInput("editany.expired")
        bot = self.bot
        sources = pending.sources
        first = sources[0].declared
        ticket = await bot.orders.prepare(
            identity_of(itx), prompt=instruction, declared=[s.declared for s in sources]
        )
        # Taken for good once the order passed its checks (a refused one can be sent again).
        self.pending.pop(key, None)

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            inputs = tuple([await bot.orders.image(s.declared.name, await self.fetch(s))
                            for s in sources])  # fmt: skip
            context = {**request_context(itx), "message_id": pending.message_id}
            return GenerationRequest(
                prompt=ticket.prompt, inputs=inputs, context=context,
                aspect_ratio=bot.generation.ratio_like(first.width, first.height, inputs[0]),
            )  # fmt: skip

        await start_job(itx, ticket, build, result_view=result_view)

    async def fetch(self, source: Source) -> bytes:
        """An image's bytes from Discord's CDN (copied: the links expire); a deleted message's
        images are gone, and say so."""
        name = source.declared.name
        try:
            if source.attachment is not None:
                return await source.attachment.read()
            assert source.url is not None
            return await self.bot.http.get_from_cdn(source.url)
        except (discord.NotFound, discord.Forbidden):
            raise InvalidInput("editany.gone", name=name) from None
        except (discord.HTTPException, aiohttp.ClientError):
            raise InvalidInput("image.download_failed", name=name) from None


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(EditAnyCog(bot))
