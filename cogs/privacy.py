"""`/privacy export|erase`: members' data rights (bot.services.privacy does the work).

- export: privately, a short-lived signed link to the archive when the web server has a public
  address (WEB_BASE_URL), else the archive as an ephemeral attachment when it fits Discord's
  upload limit for this interaction, else the data without the image files (said so).
- erase: asks first (privately, with a button); then erases and removes the bot's messages that
  showed the member's images. Works in servers and DMs: a member's data spans every server.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.errors import NotAllowed
from bot.services.privacy import Archive
from cogs.common import TenantCog, command_text, identity_of, language_of, reply, take_turn
from cogs.errors import report_error

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

ARCHIVE_NAME = "nanobanana-my-data.zip"


class PrivacyCog(TenantCog):
    """/privacy export and /privacy erase."""

    group = app_commands.Group(**command_text("privacy"))

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @group.command(**command_text("privacy export"))
    async def export(self, itx: Interaction) -> None:
        bot = self.bot
        language = await language_of(itx)
        identity = identity_of(itx)
        await itx.response.defer(ephemeral=True, thinking=True)
        link = bot.web_link("/privacy/export/")
        if link is not None:
            token = await bot.privacy.link_token(identity)
            await reply(itx, t(language, "privacy.export_link", url=link + token,
                               minutes=bot.privacy.link_minutes))  # fmt: skip
            return
        archive = await bot.privacy.export(identity)
        try:
            if archive.size > itx.filesize_limit:
                archive.discard()
                archive = await bot.privacy.export(identity, with_files=False)
            await self._send(itx, language, archive)
        finally:
            archive.discard()

    async def _send(self, itx: Interaction, language: str, archive: Archive) -> None:
        if archive.size > itx.filesize_limit:
            await reply(itx, t(language, "privacy.export_too_large"))
            return
        key = "privacy.export_ready" if archive.with_files else "privacy.export_no_files"
        text = t(language, key, images=archive.images, servers=len(archive.servers))
        if archive.missing:
            text += "\n" + t(language, "privacy.export_missing", count=archive.missing)
        await reply(itx, text, file=discord.File(archive.path, filename=ARCHIVE_NAME))

    @group.command(**command_text("privacy erase"))
    async def erase(self, itx: Interaction) -> None:
        language = await language_of(itx)
        view = discord.ui.View(timeout=None)
        view.add_item(EraseButton(itx.user.id, t(language, "privacy.erase_yes")))
        view.add_item(KeepButton(itx.user.id, t(language, "privacy.erase_no")))
        await reply(itx, t(language, "privacy.erase_confirm"), view=view)


class EraseButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nb:privacy:erase:(?P<user>[0-9]+)"
):
    """Erases the data of the member who asked (only them)."""

    def __init__(self, discord_id: int, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Erase",
                style=discord.ButtonStyle.danger,
                custom_id=f"nb:privacy:erase:{discord_id}",
            )
        )
        self.discord_id = discord_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> EraseButton:
        return cls(int(match["user"]), getattr(item, "label", None))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        bot = interaction.client
        try:
            take_turn(interaction, "other")
            if interaction.user.id != self.discord_id:
                raise NotAllowed()
            await interaction.response.defer()
            erased = await bot.privacy.erase(identity_of(interaction))
        except Exception as error:
            await report_error(interaction, error)
            return
        language = await language_of(interaction)
        text = t(language, "privacy.erased", images=erased.images)
        await interaction.edit_original_response(content=text, view=None)
        # The messages that showed their images go too (best effort: a channel the bot can't
        # reach any more keeps its message; the image behind it is gone from storage).
        for channel_id, message_id in dict.fromkeys(erased.erasure.posts):
            with contextlib.suppress(discord.HTTPException):
                await (
                    bot.get_partial_messageable(channel_id).get_partial_message(message_id).delete()
                )


class KeepButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nb:privacy:keep:(?P<user>[0-9]+)"
):
    """Keeps everything: the question goes away."""

    def __init__(self, discord_id: int, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Cancel",
                style=discord.ButtonStyle.secondary,
                custom_id=f"nb:privacy:keep:{discord_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> KeepButton:
        return cls(int(match["user"]), getattr(item, "label", None))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        language = await language_of(interaction)
        await interaction.response.edit_message(content=t(language, "privacy.kept"), view=None)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(PrivacyCog(bot))
    bot.add_dynamic_items(EraseButton, KeepButton)
