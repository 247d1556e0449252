"""ApiTokenRepository: members' personal API tokens, stored as hashes (migration 0003).

Standard SQL with `?` placeholders only, so the same statements run on every backend.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from storage.db import Database, Transaction
from storage.errors import StorageLayerError
from storage.models import Row
from storage.timeutil import from_iso, to_iso, utcnow_iso

_COLUMNS = "id, user_id, guild_id, name, token_hash, prefix, created_at, last_used_at, revoked_at"


class TooManyTokens(StorageLayerError):
    """The member already has the most active tokens allowed in this server."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} active tokens")
        self.limit = limit


class ApiToken(BaseModel):
    """One token: whose, for which server, and its history (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    guild_id: int
    name: str
    token_hash: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @classmethod
    def from_row(cls, row: Row) -> ApiToken:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            guild_id=int(row["guild_id"]),
            name=row["name"],
            token_hash=row["token_hash"],
            prefix=row["prefix"],
            created_at=from_iso(row["created_at"]),
            last_used_at=from_iso(row["last_used_at"]) if row["last_used_at"] else None,
            revoked_at=from_iso(row["revoked_at"]) if row["revoked_at"] else None,
        )


class ApiTokenRepository:
    """Create, find, list, touch and revoke tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        user_id: str,
        guild_id: int,
        name: str,
        token_hash: str,
        prefix: str,
        max_active: int,
    ) -> ApiToken:
        """Record a new token, refusing (TooManyTokens) when the member already has
        `max_active` active tokens in that server; the count and the insert are one
        transaction, so two at once can't both pass."""
        token_id = str(uuid.uuid4())
        guild = str(guild_id)

        async def insert(tx: Transaction) -> ApiToken:
            # Locks the member (PostgreSQL): two creations in two processes queue up here.
            await tx.fetchone(f"SELECT id FROM users WHERE id = ?{tx.dialect.for_update}",
                              (user_id,))  # fmt: skip
            active = await tx.fetchval(
                "SELECT COUNT(*) FROM api_tokens WHERE user_id = ? AND guild_id = ? "
                "AND revoked_at IS NULL",
                (user_id, guild),
            )
            if int(active) >= max_active:
                raise TooManyTokens(max_active)
            await tx.execute(
                f"INSERT INTO api_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (token_id, user_id, guild, name, token_hash, prefix, utcnow_iso()),
            )
            return await _fetch(tx, token_id)

        return await self.db.write(insert)

    async def find_by_hash(self, token_hash: str) -> ApiToken | None:
        """The token with this hash (active or revoked), or None."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,)
        )
        return ApiToken.from_row(row) if row is not None else None

    async def list_for_member(self, user_id: str, guild_id: int) -> list[ApiToken]:
        """The member's tokens in a server, oldest first, revoked ones included."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE user_id = ? AND guild_id = ? "
            "ORDER BY created_at, id",
            (user_id, str(guild_id)),
        )
        return [ApiToken.from_row(r) for r in rows]

    async def touch(self, token_id: str, when: datetime) -> None:
        """Record a use of the token."""
        moment = to_iso(when)

        await self.db.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND "
            "(last_used_at IS NULL OR last_used_at < ?)",
            (moment, token_id, moment),
        )

    async def revoke(self, user_id: str, token_id: str) -> ApiToken | None:
        """Revoke one of the member's active tokens; None if there is no such active token."""

        async def update(tx: Transaction) -> ApiToken | None:
            changed = await tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? "
                "AND revoked_at IS NULL",
                (utcnow_iso(), token_id, user_id),
            )
            return await _fetch(tx, token_id) if changed == 1 else None

        return await self.db.write(update)


async def _fetch(tx: Transaction, token_id: str) -> ApiToken:
    row: Any = await tx.fetchone(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,))
    return ApiToken.from_row(row)
