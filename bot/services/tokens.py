"""Personal API tokens: made with `/token` in a server, shown once, stored as a SHA-256 hash,
scoped to that member and that server, revocable, with their last use recorded.

A token is `nbt_` plus 43 random URL-safe characters (256 bits): too long to guess, so a plain
hash (no salt, no slow KDF) is the right store, as for GitHub's tokens; the hash is what the
database is searched by.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.services.errors import InvalidInput, NotAllowed, Unauthenticated
from bot.services.members import Member
from storage.api_tokens import ApiToken, ApiTokenRepository, TooManyTokens
from storage.timeutil import utcnow

TOKEN_PREFIX = "nbt_"
MAX_ACTIVE_TOKENS = 5
MAX_NAME_CHARS = 40
# How often a token's last use is written (one write per request would be wasteful).
TOUCH_EVERY = timedelta(minutes=1)
_TOKEN_SHAPE = re.compile(r"^nbt_[A-Za-z0-9_-]{43}$")


def hash_token(raw: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just made: `secret` is shown to its member once and never stored."""

    secret: str
    token: ApiToken


class TokenService:
    """Create, list, revoke and check tokens."""

    def __init__(self, repo: ApiTokenRepository, *, max_active: int = MAX_ACTIVE_TOKENS) -> None:
        self.repo = repo
        self.max_active = max_active

    def clean_name(self, name: str | None) -> str:
        cleaned = " ".join((name or "").split()) or "token"
        if len(cleaned) > MAX_NAME_CHARS:
            raise InvalidInput("token.name_too_long", limit=MAX_NAME_CHARS)
        return cleaned

    async def create(self, member: Member, name: str | None = None) -> NewToken:
        """A new token for the member in the server they are in (servers only)."""
        if member.guild_id is None:
            raise NotAllowed("error.guild_only")
        label = self.clean_name(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            token = await self.repo.create(
                user_id=member.user.id,
                guild_id=member.guild_id,
                name=label,
                token_hash=hash_token(secret),
                prefix=secret[:10],
                max_active=self.max_active,
            )
        except TooManyTokens as error:
            raise InvalidInput("token.too_many", limit=error.limit) from None
        return NewToken(secret, token)

    async def list(self, member: Member) -> list[ApiToken]:
        """The member's tokens in this server: active ones, then the revoked."""
        if member.guild_id is None:
            raise NotAllowed("error.guild_only")
        tokens = await self.repo.list_for_member(member.user.id, member.guild_id)
        return sorted(tokens, key=lambda t: (not t.active, t.created_at))

    async def revoke(self, member: Member, reference: str) -> ApiToken:
        """Revoke one of the member's active tokens of this server by its id (the short id
        `/token list` shows is enough) or its name."""
        wanted = reference.strip().lower()
        if not wanted:
            raise InvalidInput("token.not_found", id=reference)
        matches = [
            t
            for t in await self.list(member)
            if t.active and (t.id.startswith(wanted) or t.name.lower() == wanted)
        ]
        if len(matches) != 1:
            raise InvalidInput("token.ambiguous" if matches else "token.not_found", id=reference)
        revoked = await self.repo.revoke(member.user.id, matches[0].id)
        if revoked is None:
            raise InvalidInput("token.not_found", id=reference)
        return revoked

    async def authenticate(self, raw: str) -> ApiToken:
        """The active token `raw` names, its use recorded; raises Unauthenticated."""
        if not _TOKEN_SHAPE.match(raw):
            raise Unauthenticated("api.token_invalid")
        token = await self.repo.find_by_hash(hash_token(raw))
        if token is None:
            raise Unauthenticated("api.token_invalid")
        if not token.active:
            raise Unauthenticated("api.token_revoked")
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
            await self.repo.touch(token.id, now)
        return token
