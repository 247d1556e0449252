"""WebSessionRepository: the web gallery's signed-in sessions (migration 0008).

Standard SQL with `?` placeholders only, so the same statements run on every backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from storage.db import Database, Transaction
from storage.models import Row
from storage.timeutil import from_iso, to_iso

_COLUMNS = "id, discord_id, name, server_ids, csrf, created_at, expires_at"


@dataclass(frozen=True)
class WebSessionRow:
    """One session: who, the servers they may browse, its CSRF token, and when it ends."""

    id: str
    discord_id: int
    name: str
    server_ids: tuple[int, ...]
    csrf: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> WebSessionRow:
        return cls(
            id=row["id"],
            discord_id=int(row["discord_id"]),
            name=row["name"],
            server_ids=tuple(int(g) for g in json.loads(row["server_ids"])),
            csrf=row["csrf"],
            created_at=from_iso(row["created_at"]),
            expires_at=from_iso(row["expires_at"]),
        )


class WebSessionRepository:
    """Open, find, narrow and end sessions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, session: WebSessionRow) -> None:
        """Record a new session, and sweep the expired ones (in the same transaction)."""

        async def insert(tx: Transaction) -> None:
            await tx.execute(
                "DELETE FROM web_sessions WHERE expires_at <= ?", (to_iso(session.created_at),)
            )
            await tx.execute(
                f"INSERT INTO web_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id, str(session.discord_id), session.name,
                    json.dumps([str(g) for g in session.server_ids]), session.csrf,
                    to_iso(session.created_at), to_iso(session.expires_at),
                ),
            )  # fmt: skip

        await self.db.write(insert)

    async def find(self, session_id: str, now: datetime) -> WebSessionRow | None:
        """The session if it exists and has not expired at `now`."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM web_sessions WHERE id = ? AND expires_at > ?",
            (session_id, to_iso(now)),
        )
        return WebSessionRow.from_row(row) if row is not None else None

    async def set_servers(self, session_id: str, server_ids: tuple[int, ...]) -> None:
        await self.db.execute(
            "UPDATE web_sessions SET server_ids = ? WHERE id = ?",
            (json.dumps([str(g) for g in server_ids]), session_id),
        )

    async def delete(self, session_id: str) -> bool:
        """End a session; False if there was none."""
        return await self.db.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,)) == 1
