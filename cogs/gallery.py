"""`/gallery`: a numbered contact sheet of nine images a page, Previous/Next, and a menu that
opens one image (with Edit for its owner, Delete for its owner or a moderator of its server).

In a server it shows that server's images; in a DM, your own from every server. `image:` opens
one image by its (short) id.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands

from bot import imaging
from bot.i18n import t
from bot.services.gallery import GalleryPage
from bot.services.permissions import Actor
from bot.services.types import Image, ImageType, User
from cogs.common import TenantCog, command_text, identity_of, option_texts, shorten
from cogs.errors import report_error
from cogs.generate import BANANA, image_link, result_view, web_button

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
KINDS: dict[str, ImageType | None] = {
    "all": None,
    "generated": ImageType.GENERATED,
    "uploaded": ImageType.UPLOADED,
}


def image_embed(language: str, image: Image, filename: str | None = None) -> discord.Embed:
    """One image's details: prompt or title, date, size, cost."""
    title = image.title or shorten(image.prompt or "", 200) or t(language, "gallery.untitled")
    embed = discord.Embed(title=shorten(title, 256), colour=BANANA, timestamp=image.created_at)
    if image.prompt:
        embed.description = shorten(image.prompt, 4000)
    elif image.description:
        embed.description = shorten(image.description, 4000)
    embed.add_field(name=t(language, "gallery.kind"), value=t(language, f"kind.{image.type}"))
    if image.dimensions:
        width, height = image.dimensions
        embed.add_field(name=t(language, "upload.dimensions"), value=f"{width}×{height}")
    if image.size_mb is not None:
        embed.add_field(name=t(language, "upload.size"), value=f"{image.size_mb} MB")
    embed.add_field(name=t(language, "gen.cost"), value=str(image.coins_used))
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
        super().__init__(timeout=15 * 60)
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
        page = await self.bot.gallery.page(
            self.viewer, self.owner, self.kind, cursor=self.cursors[index], page_number=index + 1
        )
        self.page = page
        if page.next_cursor is not None and len(self.cursors) == index + 1:
            self.cursors.append(page.next_cursor)
        self.previous.disabled = index == 0
        self.next.disabled = page.next_cursor is None
        start = index * 9 + 1
        self.choose.options = [
            discord.SelectOption(
                label=shorten(f"{start + n}. {_label(self.language, image)}", 100),
                value=image.id,
                description=image.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
            for n, image in enumerate(page.images)
        ]
        self.choose.disabled = not page.images
        return page

    async def render(self, upload_limit: int) -> dict[str, Any]:
        """The page as message fields; the sheet shrunk to the interaction's upload limit
        (Discord refuses a bigger file with 413)."""
        page = self.page
        assert page is not None
        sheet, mime = page.sheet or b"", "image/png"
        if len(sheet) > upload_limit:
            sheet, mime = await asyncio.to_thread(imaging.fit_to_size, sheet, upload_limit)
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
        return interaction.user.id == self.viewer.discord_id

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)

    async def _show(self, interaction: Interaction, index: int) -> None:
        await self.load(index)
        await interaction.response.edit_message(**await self.render(interaction.filesize_limit))

    async def turn(self, interaction: Interaction, step: int) -> None:
        """Show the page `step` pages away from the current one."""
        current = (self.page.page_number if self.page else 1) - 1
        target = max(0, min(current + step, len(self.cursors) - 1))
        await self._show(interaction, target)

    async def open_image(self, interaction: Interaction, image_id: str) -> None:
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
    """Send one image privately, with the buttons the viewer may use: Edit for its owner (in
    its server: an edit costs the presser coins), Delete for its owner or a moderator of its
    server."""
    opened = await interaction.client.gallery.open(viewer, reference)
    image = opened.image
    data, mime = opened.data, str(image.metadata.get("mime_type"))
    if len(data) > interaction.filesize_limit:
        data, mime = await asyncio.to_thread(imaging.fit_to_size, data, interaction.filesize_limit)
    filename = f"image-{image.short_id}.{EXTENSIONS.get(mime, 'png')}"
    actions = opened.actions
    view = None
    # The web gallery shows its owner their own images.
    link = image_link(interaction.client, image) if viewer.owns(image) else None
    if actions.remix or actions.delete or link:
        view = result_view(
            image.id, language, reroll=False, edit=actions.remix, delete=actions.delete,
            web_url=link,
        )  # fmt: skip
    await interaction.response.send_message(
        embed=image_embed(language, image, filename),
        file=discord.File(io.BytesIO(data), filename=filename),
        view=view or discord.utils.MISSING,
        ephemeral=True,
    )


class GalleryCog(TenantCog):
    """Browsing galleries."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("gallery"))
    @app_commands.describe(**option_texts("gallery", "user", "kind", "image"))
    async def gallery(
        self,
        itx: Interaction,
        user: discord.User | None = None,
        kind: Literal["all", "generated", "uploaded"] = "all",
        image: app_commands.Range[str, 1, 64] | None = None,
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
            await itx.response.send_message(
                t(language, "gallery.empty_other", user=target.display_name), ephemeral=True
            )
            return
        view = GalleryView(bot, member.actor, owner, KINDS.get(kind), target.display_name,
                           language)  # fmt: skip
        await itx.response.defer(ephemeral=True, thinking=True)
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
