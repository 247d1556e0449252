"""`/upload`: store one of your images in your gallery (of this server)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.i18n.formats import file_size
from bot.services.members import Purpose
from cogs.common import (
    TenantCog,
    command_text,
    download,
    identity_of,
    in_guild,
    option_texts,
    refuse_oversized,
    shorten,
)
from cogs.images import BANANA, coins, image_link
from cogs.views import result_view

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


class UploadCog(TenantCog):
    """Uploads into the gallery."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("upload"))
    @app_commands.describe(**option_texts("upload", "image", "title", "description"))
    @app_commands.guild_only()
    @in_guild()
    async def upload(
        self,
        itx: Interaction,
        image: discord.Attachment,
        title: str | None = None,
        description: str | None = None,
    ) -> None:
        bot = self.bot
        # (The member's "upload" rate limit, which the HTTP API shares, was counted first, by
        # the command tree's check.)
        bot.uploads.validate_text(title, description)
        refuse_oversized(image, bot.settings.max_upload_bytes)
        member = await bot.members.enter(identity_of(itx))
        payer = await bot.members.payer(member, Purpose.UPLOAD)
        payer.check_affordable()
        # Ephemeral thinking: downloading and checking can take longer than Discord's 3 s,
        # and both the result and any refusal are for this user only.
        await itx.response.defer(ephemeral=True, thinking=True)
        data = await download(image)
        result = await bot.uploads.upload(
            payer, data, filename=image.filename, title=title, description=description
        )
        stored = result.image
        language = member.language
        embed = discord.Embed(
            title=t(language, "upload.done_title"),
            description=shorten(stored.description or "", 2000) or None,
            colour=BANANA,
            timestamp=stored.created_at,
        )
        embed.add_field(name=t(language, "upload.title"), value=shorten(stored.title or "—", 256))
        width, height = stored.dimensions or (0, 0)
        embed.add_field(name=t(language, "upload.dimensions"), value=f"{width}×{height}")
        size = stored.metadata.get("size")
        if isinstance(size, int):
            embed.add_field(name=t(language, "upload.size"), value=file_size(language, size))
        embed.add_field(name=t(language, "gen.cost"), value=coins(language, stored.coins_used))
        # Ephemeral: the balance is only shown to its owner.
        embed.add_field(name=t(language, "gen.balance"), value=coins(language, result.balance))
        embed.set_footer(text=f"{t(language, 'gen.image_id')}: {stored.short_id}")
        thumbnail = await bot.gallery.thumbnail(stored)
        files = []
        if thumbnail:
            files.append(discord.File(io.BytesIO(thumbnail), filename="thumbnail.webp"))
            embed.set_thumbnail(url="attachment://thumbnail.webp")
        view = result_view(
            stored.id,
            language,
            reroll=False,
            variations=False,
            thread=False,
            web_url=image_link(bot, stored),
        )
        await itx.followup.send(embed=embed, files=files, view=view, ephemeral=True)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(UploadCog(bot))
