"""The configured database, by URL or path: the one module that knows both backends (the
interface in storage.db knows neither, so nothing imports in a circle)."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database, is_postgres_url
from storage.errors import DatabaseError
from storage.postgres import PostgresDatabase
from storage.sqlite import SQLiteDatabase

__all__ = ["open_database"]


def open_database(
    *,
    url: str | None = None,
    path: Path | str = Path("data/bot.db"),
    busy_timeout_ms: int = 5000,
    pool_size: int = 10,
) -> Database:
    """The configured database, not yet connected: PostgreSQL when `url` is a
    postgresql:// URL, else the SQLite file at `path`."""
    if url:
        if not is_postgres_url(url):
            raise DatabaseError("DATABASE_URL must start with postgresql://")
        return PostgresDatabase(url, pool_size=pool_size, command_timeout_ms=busy_timeout_ms)
    return SQLiteDatabase(path, busy_timeout_ms=busy_timeout_ms)
