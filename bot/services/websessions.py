"""Signed-in web gallery sessions, kept on the server: signing out ends a session for good (a
copy of its cookie replayed later is refused), and each visit to a server's gallery checks that
the visitor is still a member there, as API tokens do (the directory's answer is at most
MEMBER_TTL old), dropping a server they have left from the session.

The cookie carries only the session's random id (signed by the web adapter); everything else
is here."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.services.directory import MemberDirectory
from storage.timeutil import utcnow
from storage.web_sessions import WebSessionRepository, WebSessionRow

# How long a session lasts (signing in again starts a new one).
SESSION_LIFETIME = timedelta(days=7)
# Servers a session remembers (a member of more shares only these with the gallery's menu).
MAX_SERVERS = 100
MAX_NAME_CHARS = 100


class WebSessionService:
    """Open, find, narrow and end sessions."""

    def __init__(
        self,
        repo: WebSessionRepository,
        directory: MemberDirectory,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.directory = directory
        self.clock = clock

    async def open(self, discord_id: int, name: str, server_ids: Sequence[int]) -> WebSessionRow:
        """A new session for someone who just signed in, with the servers they share with the
        bot (each with a fresh random id and CSRF token)."""
        now = self.clock()
        session = WebSessionRow(
            id=secrets.token_urlsafe(32),
            discord_id=discord_id,
            name=name[:MAX_NAME_CHARS],
            server_ids=tuple(dict.fromkeys(server_ids))[:MAX_SERVERS],
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        await self.repo.create(session)
        return session

    async def find(self, session_id: str) -> WebSessionRow | None:
        """The live session with this id (None: never opened, signed out or expired)."""
        return await self.repo.find(session_id, self.clock())

    async def is_member(self, session: WebSessionRow, guild_id: int) -> bool:
        """Whether the visitor may browse this server's gallery: one of the session's servers,
        and still a member there (Discord asked again, at most MEMBER_TTL ago). A server they
        have left is dropped from the session. Raises Unavailable if Discord can't say."""
        if guild_id not in session.server_ids:
            return False
        if await self.directory.member(guild_id, session.discord_id) is not None:
            return True
        await self.repo.set_servers(
            session.id, tuple(g for g in session.server_ids if g != guild_id)
        )
        return False

    async def close(self, session_id: str) -> None:
        """Sign out: the session ends everywhere its cookie is."""
        await self.repo.delete(session_id)
