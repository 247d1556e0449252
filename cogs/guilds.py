"""The server allow-list (ALLOWED_GUILD_IDS): the bot leaves servers that are not on it, when it
joins them and at start-up, and says which in the log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.app import NanoBananaBot

log = logging.getLogger(__name__)


class GuildsCog(commands.Cog):
    """Keeps the bot out of servers its owner did not list."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    async def leave_if_unlisted(self, guild: discord.Guild, when: str) -> None:
        if self.bot.permissions.guild_allowed(guild.id):
            return
        log.warning(
            "leaving server %s (%s) on %s: it is not in ALLOWED_GUILD_IDS", guild.name, guild.id,
            when,
        )  # fmt: skip
        try:
            await guild.leave()
        except discord.HTTPException as error:
            log.error("could not leave server %s: HTTP %s", guild.id, error.status)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        for guild in list(self.bot.guilds):
            await self.leave_if_unlisted(guild, "start-up")

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.leave_if_unlisted(guild, "join")


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(GuildsCog(bot))
