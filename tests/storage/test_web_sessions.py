"""Web sessions in the database, on both backends: found while live, gone once deleted or
expired (and swept when a new one opens), their servers narrowed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.web_sessions import WebSessionRepository, WebSessionRow

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def session(session_id: str, created: datetime, days: int = 7) -> WebSessionRow:
    return WebSessionRow(
        id=session_id, discord_id=123456789012345678, name="alice",
        server_ids=(111111111111111111, 222222222222222222), csrf="c" * 32,
        created_at=created, expires_at=created + timedelta(days=days),
    )  # fmt: skip


async def test_sessions_live_end_and_expire(db: Database) -> None:
    repo = WebSessionRepository(db)
    await repo.create(session("old", NOW - timedelta(days=8)))
    await repo.create(session("a", NOW))
    found = await repo.find("a", NOW + timedelta(days=6))
    assert found is not None and found.server_ids == (111111111111111111, 222222222222222222)
    assert found.discord_id == 123456789012345678 and found.expires_at == NOW + timedelta(days=7)
    assert await repo.find("a", NOW + timedelta(days=7)) is None  # expired
    assert await repo.find("old", NOW) is None
    # Opening a session sweeps the expired ones.
    assert await db.fetchval("SELECT COUNT(*) FROM web_sessions WHERE id = 'old'") == 0
    await repo.set_servers("a", (222222222222222222,))
    narrowed = await repo.find("a", NOW)
    assert narrowed is not None and narrowed.server_ids == (222222222222222222,)
    assert await repo.delete("a")
    assert await repo.find("a", NOW) is None
    assert not await repo.delete("a")
