"""What the HTTP adapters need to know about Discord servers and their members, as a protocol
the composition root implements with the bot's Discord connection (services never import
discord)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MemberInfo:
    """A member of a server as Discord says now: name, roles and Manage Server."""

    guild_id: int
    discord_id: int
    display_name: str
    role_ids: frozenset[int] = frozenset()
    can_manage_guild: bool = False
    is_bot: bool = False


@dataclass(frozen=True)
class ServerInfo:
    """A server the bot is in."""

    id: int
    name: str


class MemberDirectory(Protocol):
    """Servers the bot is in, and their members."""

    async def member(self, guild_id: int, discord_id: int) -> MemberInfo | None:
        """The member, or None if they are not in that server (or the bot is not)."""
        ...

    def server(self, guild_id: int) -> ServerInfo | None:
        """The server if the bot is in it."""
        ...
