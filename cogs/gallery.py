"""`/gallery`: a numbered contact sheet of nine images a page, Previous/Next, and a menu that
opens one image (with Edit for its owner, Delete for its owner or a moderator of its server).

In a server it shows that server's images; in a DM, your own from every server. `image:` opens
one image by its (short) id.

Everything here acknowledges first (a deferral) and renders after, so no click waits for a
sheet before Discord hears back; sheets come from the gallery's cache or the bounded image
pool ("busy, try again" when it is full), and a view lets go of its sheet once it is sent.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot.i18n import t
from bot.i18n.formats import ago, file_size
from bot.services.gallery import GalleryPage
from bot.services.permissions import Actor
from bot.services.types import Image, ImageType, User
from cogs.common import (
    RateLimited,
    TenantCog,
    command_text,
    identity_of,
    option_texts,
    shorten,
    take_turn,
)
from cogs.errors import report_error
from cogs.images import BANANA, coins, image_link, model_name, result_text, web_button
from cogs.views import result_view

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# A gallery's buttons work this long after its last use (it holds only the page's rows).
VIEW_TIMEOUT = 5 * 60
# Galleries rendered (read, drawn, sent) at once; the others wait their turn after their
# acknowledgement, so a burst of them never stands between anyone and their own answer.
RENDERS = 3


def renders(bot: NanoBananaBot) -> asyncio.Semaphore:
    """The gallery's render gate (one per bot, on its cog)."""
    cog = bot.get_cog("GalleryCog")
    assert isinstance(cog, GalleryCog)
    return cog.renders


KINDS: dict[str, ImageType | None] = {
    "all": None,
    "generated": ImageType.GENERATED,
    "uploaded": ImageType.UPLOADED,
}


def image_embed(
    bot: NanoBananaBot, language: str, image: Image, filename: str | None = None
) -> discord.Embed:
    """One image's details: prompt (an edit's with what it came from) or title, date (the
    embed's timestamp, which Discord shows in the member's own time zone), size, cost."""
    title = image.title or shorten(image.prompt or "", 200) or t(language, "gallery.untitled")
    embed = discord.Embed(title=shorten(title, 256), colour=BANANA, timestamp=image.created_at)
    if image.prompt:
        embed.description = result_text(language, image)
    elif image.description:
        embed.description = shorten(image.description, 4000)
    embed.add_field(name=t(language, "gallery.kind"), value=t(language, f"kind.{image.type}"))
    embed.add_field(
        name=t(language, "gallery.created"), value=discord.utils.format_dt(image.created_at, "f")
    )
    if image.dimensions:
        width, height = image.dimensions
        embed.add_field(name=t(language, "upload.dimensions"), value=f"{width}×{height}")
    size = image.metadata.get("size")
    if isinstance(size, int):
        embed.add_field(name=t(language, "upload.size"), value=file_size(language, size))
    if image.is_generated and image.metadata.get("model"):
        embed.add_field(name=t(language, "gen.model"), value=model_name(bot, image))
    embed.add_field(name=t(language, "gen.cost"), value=coins(language, image.coins_used))
    if filename:
        embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"{t(language, 'gen.image_id')}: {image.short_id}")
    return embed


class GalleryView(discord.ui.View):
    """Paging state lives here (cursors of the pages seen), for this ephemeral message."""

    def __init__(
        self, bot: NanoBananaBot, viewer: Actor, owner: User, kind: ImageType | None,
        owner_name: str, language: str,
    ) -> None:  # fmt: skip
        super().__init__(timeout=VIEW_TIMEOUT)
        self.bot = bot
        self.viewer = viewer
        self.owner = owner
        self.kind = kind
        self.owner_name = owner_name
        self.language = language
        # cursors[i] is the cursor that produced page i + 1 (None for the first page).
        self.cursors: list[str | None] = [None]
        self.page: GalleryPage | None = None
        self.previous = _PageButton(t(language, "gallery.previous"), "◀️", step=-1)
        self.next = _PageButton(t(language, "gallery.next"), "▶️", step=1)
        self.choose = _ImageSelect(t(language, "gallery.select"))
        for item in (self.previous, self.next, self.choose):
            self.add_item(item)
        # Your own gallery links to the web gallery (of this server, or all of it in a DM).
        if owner.discord_id == viewer.discord_id:
            where = f"/servers/{viewer.guild_id}" if viewer.guild_id is not None else "/all"
            link = bot.web_link(where)
            if link is not None:
                self.add_item(web_button(language, link))

    async def load(self, index: int) -> GalleryPage:
        gallery = self.bot.gallery
        page = await gallery.listing(
            self.viewer, self.owner, self.kind, cursor=self.cursors[index], page_number=index + 1
        )
        page = replace(page, sheet=await gallery.sheet(page))
        self.page = page
        if page.next_cursor is not None and len(self.cursors) == index + 1:
            self.cursors.append(page.next_cursor)
        self.previous.disabled = index == 0
        self.next.disabled = page.next_cursor is None
        start = index * 9 + 1
        # A menu shows plain text (no <t:...> timestamps): how long ago, in the member's
        # language, needs no time zone.
        now = discord.utils.utcnow()
        self.choose.options = [
            discord.SelectOption(
                label=shorten(f"{start + n}. {_label(self.language, image)}", 100),
                value=image.id,
                description=shorten(ago(self.language, image.created_at, now), 100),
            )
            for n, image in enumerate(page.images)
        ]
        self.choose.disabled = not page.images
        return page

    async def render(self, upload_limit: int) -> dict[str, Any]:
        """The page as message fields; the sheet shrunk to the interaction's upload limit
        (Discord refuses a bigger file with 413). The view lets go of the sheet: it is in
        the message now (and in the gallery's cache)."""
        page = self.page
        assert page is not None
        self.page = page.released()
        sheet, mime = await self.bot.gallery.fit(page.sheet or b"", upload_limit)
        filename = f"gallery.{EXTENSIONS.get(mime, 'png')}"
        embed = discord.Embed(
            title=t(self.language, "gallery.title", user=self.owner_name), colour=BANANA
        )
        embed.set_image(url=f"attachment://{filename}")
        embed.set_footer(
            text=t(self.language, "gallery.footer", page=page.page_number, pages=page.pages,
                   total=page.total)
        )  # fmt: skip
        files = [discord.File(io.BytesIO(sheet), filename=filename)]
        return {"embed": embed, "attachments": files, "view": self}

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        if interaction.user.id != self.viewer.discord_id:
            return False
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        try:
            take_turn(interaction, "open" if custom_id == self.choose.custom_id else "page")
        except RateLimited as refusal:
            await report_error(interaction, refusal)
            return False
        return True

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)

    async def on_timeout(self) -> None:
        self.page = None  # nothing more to show: drop the rows too

    async def _show(self, interaction: Interaction, index: int) -> None:
        # Acknowledge first (the message stays as it is meanwhile), then read and render.
        await interaction.response.defer()
        async with renders(self.bot):
            await self.load(index)
            rendered = await self.render(interaction.filesize_limit)
            await interaction.edit_original_response(**rendered)

    async def turn(self, interaction: Interaction, step: int) -> None:
        """Show the page `step` pages away from the current one."""
        current = (self.page.page_number if self.page else 1) - 1
        target = max(0, min(current + step, len(self.cursors) - 1))
        await self._show(interaction, target)

    async def open_image(self, interaction: Interaction, image_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with renders(self.bot):
            await send_image(interaction, self.viewer, image_id, self.language)


class _PageButton(discord.ui.Button[GalleryView]):
    def __init__(self, label: str, emoji: str, *, step: int) -> None:
        super().__init__(label=label, emoji=emoji, row=0)
        self.step = step

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        assert self.view is not None
        await self.view.turn(interaction, self.step)


class _ImageSelect(discord.ui.Select[GalleryView]):
    def __init__(self, placeholder: str) -> None:
        super().__init__(placeholder=placeholder, min_values=1, max_values=1, row=1)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        assert self.view is not None
        await self.view.open_image(interaction, self.values[0])


def _label(language: str, image: Image) -> str:
    return image.title or image.prompt or t(language, "gallery.untitled")


async def send_image(
    interaction: Interaction, viewer: Actor, reference: str, language: str
) -> None:
    """Send one image privately (as a followup: the interaction was deferred first), with the
    buttons the viewer may use: Edit for its owner (in its server: an edit costs the presser
    coins), Delete for its owner or a moderator of its server."""
    opened = await interaction.client.gallery.open(viewer, reference)
    image = opened.image
    data, mime = opened.data, str(image.metadata.get("mime_type"))
    if len(data) > interaction.filesize_limit:
        data, mime = await interaction.client.gallery.fit(data, interaction.filesize_limit)
    filename = f"image-{image.short_id}.{EXTENSIONS.get(mime, 'png')}"
    actions = opened.actions
    view = None
    # The web gallery shows its owner their own images.
    link = image_link(interaction.client, image) if viewer.owns(image) else None
    if actions.remix or actions.delete or link:
        view = result_view(
            image.id, language, reroll=False, edit=actions.remix, delete=actions.delete,
            variations=actions.remix and image.is_generated, thread=False, web_url=link,
        )  # fmt: skip
    await interaction.followup.send(
        embed=image_embed(interaction.client, language, image, filename),
        file=discord.File(io.BytesIO(data), filename=filename),
        view=view or discord.utils.MISSING,
        ephemeral=True,
    )


class GalleryCog(TenantCog):
    """Browsing galleries."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        self.renders = asyncio.Semaphore(RENDERS)

    @app_commands.command(**command_text("gallery"))
    @app_commands.describe(**option_texts("gallery", "user", "kind", "image"))
    async def gallery(
        self,
        itx: Interaction,
        user: discord.User | None = None,
        kind: Literal["all", "generated", "uploaded"] = "all",
        image: app_commands.Range[str, 1, 64] | None = None,
    ) -> None:
        # Acknowledge first; every answer below is a followup, made in its turn.
        await itx.response.defer(ephemeral=True, thinking=True)
        async with self.renders:
            await self._gallery(itx, user, kind, image)

    async def _gallery(
        self,
        itx: Interaction,
        user: discord.User | None,
        kind: Literal["all", "generated", "uploaded"],
        image: str | None,
    ) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        language = member.language
        if image is not None:
            await send_image(itx, member.actor, image, language)
            return
        target = user or itx.user
        # Looking at someone's gallery never creates an account for them.
        owner = member.user if target.id == itx.user.id else await bot.accounts.find(target.id)
        if owner is None:
            bot.permissions.check_see_gallery(member.actor, target.id)
            await itx.followup.send(
                t(language, "gallery.empty_other", user=target.display_name), ephemeral=True
            )
            return
        view = GalleryView(bot, member.actor, owner, KINDS.get(kind), target.display_name,
                           language)  # fmt: skip
        page = await view.load(0)
        if not page.images:
            key = "gallery.empty_self" if owner.id == member.user.id else "gallery.empty_other"
            await itx.followup.send(t(language, key, user=target.display_name), ephemeral=True)
            return
        rendered = await view.render(itx.filesize_limit)
        await itx.followup.send(
            embed=rendered["embed"], files=rendered["attachments"], view=view, ephemeral=True
        )


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(GalleryCog(bot))
