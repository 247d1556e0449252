"""The Database interface every repository uses, with two backends: SQLite (storage/sqlite.py,
the embedded default) and PostgreSQL (storage/postgres.py, for several processes).

A write is one *transaction body*: `async def body(tx) -> T`, which awaits nothing but the
methods of `tx` (a `Transaction`). `Database.write(body)` runs it atomically and returns its
result; it is all-or-nothing even if the caller is cancelled meanwhile. The same body runs on
both backends:
- SQLite drives it synchronously on its writer thread (its `tx` methods never suspend), grouping
  the writes queued meanwhile into one commit, each in its own savepoint;
- PostgreSQL awaits it inside an asyncpg transaction on a pooled connection.
A body that awaits anything else (a sleep, a network call) is a bug: SQLite refuses it with a
clear error, so it is caught on the default backend's tests.

SQL is written once, portable: `?` placeholders (translated for asyncpg), `RETURNING`,
`ON CONFLICT`, row values, partial indexes. What differs (JSON functions, row locks) comes
from `Dialect`. Reads (`fetchall`, `fetchone`, `fetchval`) see committed data only.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from storage.errors import DatabaseBusy, DatabaseError, MigrationError
from storage.models import Row
from storage.timeutil import utcnow_iso

__all__ = [
    "Database",
    "DatabaseBusy",
    "DatabaseError",
    "Dialect",
    "Migration",
    "MigrationError",
    "Params",
    "PoolUsage",
    "Row",
    "Transaction",
    "WriteBody",
    "load_migrations",
]

MIGRATIONS_ROOT = Path(__file__).resolve().parent.parent / "migrations"
#: SQLite's migrations (the first set, applied in the field: never edited).
DEFAULT_MIGRATIONS_DIR = MIGRATIONS_ROOT
#: PostgreSQL's migrations: the same versions and names, in PostgreSQL's dialect.
POSTGRES_MIGRATIONS_DIR = MIGRATIONS_ROOT / "postgresql"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

Params = Sequence[Any]
T = TypeVar("T")


class Dialect:
    """The few SQL fragments that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"

    @property
    def for_update(self) -> str:
        """Appended to a SELECT inside a write that reads a row before changing it. SQLite's
        write transactions are exclusive already; PostgreSQL locks the rows read."""
        return " FOR UPDATE" if self.is_postgres else ""

    def json_set(self, column: str, *keys: tuple[str, str]) -> str:
        """`column` (a JSON object) with top-level `keys` set from the next parameters, one
        `?` per key in order; each key is `(name, "text" | "int")`."""
        expression = column
        for name, kind in keys:
            _check_name(name)
            if self.is_postgres:
                cast = "bigint" if kind == "int" else "text"
                expression = f"jsonb_set({expression}, '{{{name}}}', to_jsonb(?::{cast}))"
            else:
                expression = f"json_set({expression}, '$.{name}', ?)"
        return expression

    def json_merge(self, column: str) -> str:
        """`column` (a JSON object) with the top-level keys of the next parameter (a JSON
        object as text) added or replaced."""
        if self.is_postgres:
            return f"({column} || ?::jsonb)"
        # json_patch merges nested objects too; every caller patches top-level keys only.
        return f"json_patch({column}, ?)"

    def json_text(self, column: str, name: str) -> str:
        """The top-level value `name` of a JSON object column, as JSON text (NULL if absent)."""
        _check_name(name)
        if self.is_postgres:
            return f"({column} -> '{name}')::text"
        return (
            f"CASE WHEN json_type({column}, '$.{name}') IS NULL THEN NULL "
            f"ELSE json_quote(json_extract({column}, '$.{name}')) END"
        )


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a JSON key this code writes: {name!r}")


class _Reads(ABC):
    """`fetchone` and `fetchval` on top of a `fetchall` (a transaction's, or a database's
    committed reads)."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement and return every row."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of `fetchall` (or None)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row (or None)."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Transaction(_Reads):
    """What a transaction body may do: statements inside the one transaction."""

    dialect: Dialect

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter row."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement and return every row (a SELECT, or a write with RETURNING)."""

    @abstractmethod
    async def execute_script(self, sql: str) -> None:
        """Run a migration script (several statements)."""


WriteBody = Callable[[Transaction], Coroutine[Any, Any, T]]


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(directory: Path = DEFAULT_MIGRATIONS_DIR) -> list[Migration]:
    """Read `NNNN_name.sql` files in version order; refuse duplicates and stray names."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} appears twice")
        migrations[version] = Migration(version, match.group(2), path.read_text("utf-8"))
    return [migrations[v] for v in sorted(migrations)]


@dataclass(frozen=True)
class PoolUsage:
    """How busy a database's connections are (for /metrics): connections in use, open and
    at most; writes queued or running."""

    in_use: int
    open: int
    max: int
    writes_pending: int


class Database(_Reads):
    """The bot's database: open with `connect()` (or `async with`), close with `close()`."""

    dialect: Dialect
    #: Where the migrations of this backend live.
    migrations_dir: Path

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the data is, for messages (a path, or a URL without its password)."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the connections (idempotent)."""

    @abstractmethod
    async def close(self) -> None:
        """Close everything; writes already queued finish first."""

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pool_usage(self) -> PoolUsage:
        """The connections' use now (no I/O)."""
        return PoolUsage(0, 0, 0, 0)

    @abstractmethod
    async def write(self, body: WriteBody[T]) -> T:
        """Run the transaction body atomically and return its result (see the module doc).
        Raises DatabaseBusy, with nothing written, when the database can't take it now."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a read and return every row (committed data only)."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; returns the changed row count."""

        async def statement(tx: Transaction) -> int:
            return await tx.execute(sql, params)

        return await self.write(statement)

    # Migrations -------------------------------------------------------------------------

    @abstractmethod
    async def _has_table(self, name: str) -> bool: ...

    async def applied_migrations(self) -> dict[int, tuple[str, str]]:
        """Applied versions mapped to (name, checksum)."""
        rows = await self.fetchall("SELECT version, name, checksum FROM schema_migrations")
        return {int(r["version"]): (str(r["name"]), str(r["checksum"])) for r in rows}

    def load_migrations(self) -> list[Migration]:
        """This backend's migration files."""
        return load_migrations(self.migrations_dir)

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> list[Migration]:
        """Apply pending migrations in order, each in one transaction; return those applied.

        Refuses to run if an already applied file was edited since (its checksum changed).
        Only a database that needs it is written to: an up-to-date one starts even while
        another process holds its write lock.
        """
        source = list(migrations) if migrations is not None else self.load_migrations()
        if not await self._has_table("schema_migrations"):

            async def create(tx: Transaction) -> bool:
                await tx.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                return True

            await self._migration_write(create)
        applied = await self.applied_migrations()
        for migration in source:
            known = applied.get(migration.version)
            if known is not None and known[1] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql was edited after "
                    "it was applied; add a new migration instead of changing an old one"
                )
        done: list[Migration] = []
        for migration in source:
            if migration.version in applied:
                continue

            async def apply(tx: Transaction, migration: Migration = migration) -> bool:
                # Another process may have applied it meanwhile (two bots starting at once).
                if await tx.fetchval(
                    "SELECT COUNT(*) FROM schema_migrations WHERE version = ?",
                    (migration.version,),
                ):
                    return False
                await tx.execute_script(migration.sql)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES (?, ?, ?, ?)",
                    (migration.version, migration.name, migration.checksum, utcnow_iso()),
                )
                return True

            if await self._migration_write(apply):
                done.append(migration)
        return done

    async def _migration_write(self, body: WriteBody[bool]) -> bool:
        """Run one migration's transaction (PostgreSQL serialises concurrent migrators)."""
        return await self.write(body)

    # Small key/value state --------------------------------------------------------------

    async def get_state(self, key: str) -> str | None:
        """Read a value from `bot_state`."""
        value = await self.fetchval("SELECT value FROM bot_state WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set_state(self, key: str, value: str) -> None:
        """Write a value to `bot_state`."""
        await self.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, value, utcnow_iso()),
        )


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))
