"""SQLite through aiosqlite: connections, pragmas, transactions and migrations.

Two connections on one WAL database:
- a *writer*, whose transactions are serialised by an asyncio lock (aiosqlite runs one
  connection on one thread, but coroutines interleave, so without the lock two tasks could end
  up inside one transaction). Hot-path writes go through `write()`: a synchronous function run
  whole on the writer's thread, grouped with other writes queued meanwhile into one commit;
- a *reader* in autocommit mode, whose every read is a single trip that steps its statement to
  the end, so it only ever sees committed data and never waits behind the write lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from storage.timeutil import utcnow_iso

log = logging.getLogger(__name__)

DEFAULT_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")


WriteFn = Callable[[sqlite3.Connection], Any]
# How many queued writes one group commit takes at most (bounds the latency of the batch).
MAX_GROUP = 256


def _run_group(conn: sqlite3.Connection, fns: list[WriteFn]) -> list[tuple[bool, Any]]:
    """One transaction for a group of writes, each inside its own SAVEPOINT: a write that
    raises is rolled back alone and gets its exception; the others commit together.
    Runs on the writer's thread. Returns (ok, result-or-exception) per write."""
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for fn in fns:
            conn.execute("SAVEPOINT write")
            try:
                result = fn(conn)
            except Exception as error:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                outcomes.append((False, error))
            else:
                conn.execute("RELEASE write")
                outcomes.append((True, result))
        # Inside the try: a COMMIT that fails (busy) must not leave the transaction open, or
        # every later write would fail with "cannot start a transaction within a transaction".
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return outcomes


class DatabaseError(Exception):
    """A database problem that callers can report (bad migration, closed database...)."""


class MigrationError(DatabaseError):
    """A migration file is malformed, or an applied one was edited."""


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


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies with inner `;` stay whole)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        raise MigrationError("the script ends with an incomplete statement")
    return statements


def _has_code(sql: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in sql.splitlines()
    ) and bool(sql.strip().strip(";").strip())


class Database:
    """The bot's SQLite database: open with `connect()`, close with `close()`."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._queued: list[tuple[WriteFn, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open both connections and set the pragmas. Creates the parent folder if needed."""
        if self._writer is not None:
            return
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._open()
        await self._writer.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode (only an OS crash can lose
        # the last commits), and much faster than FULL.
        await self._writer.execute("PRAGMA synchronous=NORMAL")
        self._reader = await self._open()
        await self._reader.execute("PRAGMA query_only=ON")

    async def _open(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so Python's sqlite3 module
        # never opens a transaction behind our back.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys=ON")
        return conn

    async def close(self) -> None:
        """Close both connections; queued writes and a running transaction finish first."""
        if self._committer is not None:
            await asyncio.shield(self._committer)
        async with self._write_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._reader = self._writer = None

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise DatabaseError("the database is not open")
        return conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (`BEGIN IMMEDIATE ... COMMIT`) owned by the calling task.

        Rolls back on any exception, including cancellation. Not re-entrant: code that must
        compose several writes takes the connection this yields.
        """
        async with self._write_lock:
            conn = self._require(self._writer)
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # Shielded: a cancelled task must still leave no transaction open.
                with suppress(sqlite3.Error):
                    await asyncio.shield(conn.rollback())
                raise
            else:
                # aiosqlite runs requests in order on its thread, so even if this task is
                # cancelled while the commit is in flight, the commit lands before any later
                # BEGIN: the shield only decides what this task sees.
                await asyncio.shield(conn.commit())

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` atomically on the writer's thread and return its result.

        The hot paths (debits, refunds, job steps) use this. The whole of `fn` runs on the
        thread without returning to the event loop between statements, and it is
        all-or-nothing even if the calling task is cancelled meanwhile (the thread finishes
        it either way, before any later write). Writes queued while a group is running are
        committed together as the next group (one trip to the thread and one commit for many
        writes), each inside its own savepoint, so one write's error never touches another's.
        `fn` must be synchronous and must not touch asyncio.
        """
        self._require(self._writer)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((fn, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_groups())
        # Shielded: a cancelled caller's write still happens (atomically), as documented.
        return await asyncio.shield(future)

    async def _commit_groups(self) -> None:
        """Drain the queue of writes, a group at a time, under the write lock."""
        while self._queued:
            group, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
            try:
                async with self._write_lock:
                    writer = self._require(self._writer)
                    # aiosqlite has no public "run this on your thread"; `_execute` is what
                    # every one of its own methods uses (pinned in pyproject.toml).
                    run = cast(Callable[..., Awaitable[list[tuple[bool, Any]]]], writer._execute)
                    outcomes = await run(_run_group, writer._conn, [fn for fn, _ in group])
            except BaseException as error:
                for _, future in group:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for (_, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        """Run a read on the reader connection and return the first row."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """Run a read on the reader connection and return every row.

        One trip to the reader's thread that steps the statement to the end. Never leave a
        cursor open across awaits here: while any statement on the shared reader connection
        is active, SQLite keeps that connection's read snapshot, so other coroutines would
        read stale data (a row committed a moment ago would look missing).
        """
        conn = self._require(self._reader)
        return list(await conn.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        """Run a read and return the first column of the first row (or None)."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; returns the changed row count."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    # Migrations -------------------------------------------------------------------------

    async def applied_migrations(self) -> dict[int, tuple[str, str]]:
        """Applied versions mapped to (name, checksum)."""
        rows = await self.fetchall("SELECT version, name, checksum FROM schema_migrations")
        return {int(r["version"]): (str(r["name"]), str(r["checksum"])) for r in rows}

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> list[Migration]:
        """Apply pending migrations in order, each in one transaction; return those applied.

        Refuses to run if an already applied file was edited since (its checksum changed).
        """
        pending_source = list(migrations) if migrations is not None else load_migrations()
        exists = await self.fetchval(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        if not exists:
            # Only a database that needs it is written to: an up-to-date one starts even while
            # another process holds its write lock.
            await self.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
        applied = await self.applied_migrations()
        for migration in pending_source:
            known = applied.get(migration.version)
            if known is not None and known[1] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name}.sql was edited after "
                    "it was applied; add a new migration instead of changing an old one"
                )
        done: list[Migration] = []
        for migration in pending_source:
            if migration.version in applied:
                continue
            statements = split_statements(migration.sql)
            async with self.transaction() as conn:
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                    "VALUES (?, ?, ?, ?)",
                    (migration.version, migration.name, migration.checksum, utcnow_iso()),
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            done.append(migration)
        return done

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
