"""The MemberDirectory (bot.services.directory) over the bot's own Discord connection: servers
from its cache, members from its cache or Discord's REST API, remembered for a minute."""

from __future__ import annotations

import time

import discord

from bot.services.directory import MemberInfo, ServerInfo
from bot.services.errors import Unavailable

# How long an answer about a member is reused (Discord rate-limits member look-ups).
MEMBER_TTL = 60.0
_MAX_CACHED = 10_000


class DiscordDirectory:
    """Servers the bot is in and their members, as Discord says."""

    def __init__(self, client: discord.Client, *, ttl: float = MEMBER_TTL) -> None:
        self.client = client
        self.ttl = ttl
        self._members: dict[tuple[int, int], tuple[float, MemberInfo | None]] = {}

    def server(self, guild_id: int) -> ServerInfo | None:
        guild = self.client.get_guild(guild_id)
        return ServerInfo(guild.id, guild.name) if guild is not None else None

    async def member(self, guild_id: int, discord_id: int) -> MemberInfo | None:
        guild = self.client.get_guild(guild_id)
        if guild is None:
            return None
        key = (guild_id, discord_id)
        now = time.monotonic()
        cached = self._members.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = guild.get_member(discord_id)
        if found is None:
            try:
                found = await guild.fetch_member(discord_id)
            except discord.NotFound:
                found = None
            except discord.HTTPException as error:
                if cached is not None:
                    return cached[1]  # a stale answer beats none while Discord is down
                raise Unavailable() from error
        info = None
        if found is not None:
            info = MemberInfo(
                guild_id=guild.id,
                discord_id=found.id,
                display_name=found.display_name,
                role_ids=frozenset(role.id for role in found.roles),
                can_manage_guild=found.guild_permissions.manage_guild,
                is_bot=found.bot,
            )
        if len(self._members) >= _MAX_CACHED:
            self._members.clear()
        self._members[key] = (now, info)
        return info
