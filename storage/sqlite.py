"""The SQLite backend: the embedded default, one file (WAL), stdlib sqlite3 on our own threads.

Two connections on one WAL database, each owned by a one-thread executor:
- the *writer*: write transaction bodies run on its thread, grouped: the writes queued while
  a group runs are committed together as the next group (one trip to the thread and one
  commit for many writes), each inside its own savepoint, so one write's error never touches
  another's. A body is a coroutine function that awaits only its `tx`, whose methods run
  synchronously here: the body is driven to its end with one `send(None)`, without ever
  returning to the event loop between its statements;
- the *reader*, in autocommit mode: every read is one trip that steps its statement to the
  end, so it only ever sees committed data and never waits behind a write.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from storage.db import (
    DEFAULT_MIGRATIONS_DIR,
    Database,
    Dialect,
    Params,
    PoolUsage,
    Row,
    Transaction,
    WriteBody,
)
from storage.errors import ConstraintViolation, DatabaseBusy, DatabaseError

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many queued writes one group commit takes at most (bounds the latency of the batch).
MAX_GROUP = 256
SQLITE = Dialect("sqlite")


def translate(error: sqlite3.Error) -> Exception:
    """sqlite3's errors in the data layer's terms: locked/busy -> DatabaseBusy, constraint
    failures -> ConstraintViolation; anything else unchanged."""
    if isinstance(error, sqlite3.IntegrityError):
        return ConstraintViolation(str(error))
    text = str(error).lower()
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "disk i/o" in text or "unable to open" in text
    ):
        return DatabaseBusy(str(error))
    return error


def _reraise(error: sqlite3.Error) -> NoReturn:
    translated = translate(error)
    if translated is error:
        raise error
    raise translated from error


class SQLiteTransaction(Transaction):
    """A transaction on the writer connection; every method completes without suspending."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor: sqlite3.Cursor = _run(self._conn.execute, sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        _run(self._conn.executemany, sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(_run(self._conn.execute, sql, params).fetchall())

    async def execute_script(self, sql: str) -> None:
        for statement in split_statements(sql):
            _run(self._conn.execute, statement)


def _run(method: Any, *args: Any) -> Any:
    try:
        return method(*args)
    except sqlite3.IntegrityError as error:
        raise ConstraintViolation(str(error)) from error


def drive(body: WriteBody[T], tx: Transaction) -> T:
    """Run a transaction body to its end without an event loop (its awaits on `tx` never
    suspend). A body that awaits anything else is refused: it would hold the writer while
    waiting, and on PostgreSQL it would hold a connection and its locks."""
    coroutine = body(tx)
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise DatabaseError(
        f"the transaction body {getattr(body, '__qualname__', body)!r} awaited something other "
        "than its transaction's methods; a body may only await tx.execute/fetch*"
    )


def _run_group(conn: sqlite3.Connection, bodies: list[WriteBody[Any]]) -> list[tuple[bool, Any]]:
    """One transaction for a group of writes, each inside its own SAVEPOINT: a write that
    raises is rolled back alone and gets its exception; the others commit together.
    Runs on the writer's thread. Returns (ok, result-or-exception) per write."""
    outcomes: list[tuple[bool, Any]] = []
    tx = SQLiteTransaction(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for body in bodies:
            conn.execute("SAVEPOINT write")
            try:
                result = drive(body, tx)
            except Exception as error:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                outcomes.append((False, translate(error) if isinstance(error, sqlite3.Error)
                                 else error))  # fmt: skip
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
        raise DatabaseError("the script ends with an incomplete statement")
    return statements


def _has_code(sql: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in sql.splitlines()
    ) and bool(sql.strip().strip(";").strip())


class _Connection:
    """One sqlite3 connection used only from its own thread."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.conn: sqlite3.Connection | None = None

    async def run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(fn, *args))

    async def open(self, path: Path, busy_timeout_ms: int, *pragmas: str) -> None:
        def connect() -> sqlite3.Connection:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so Python's sqlite3
            # module never opens a transaction behind our back.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            for pragma in pragmas:
                conn.execute(pragma)
            return conn

        try:
            self.conn = await self.run(connect)
        except sqlite3.Error as error:
            _reraise(error)

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await self.run(conn.close)
        self.executor.shutdown(wait=True)


class SQLiteDatabase(Database):
    """The bot's SQLite database (a file; `:memory:` is not supported: two connections)."""

    dialect = SQLITE
    migrations_dir = DEFAULT_MIGRATIONS_DIR

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: _Connection | None = None
        self._reader: _Connection | None = None
        self._queued: list[tuple[WriteBody[Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        return str(self.path)

    async def connect(self) -> None:
        """Open both connections and set the pragmas. Creates the parent folder if needed."""
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writer, reader = _Connection("sqlite-writer"), _Connection("sqlite-reader")
        try:
            # NORMAL is durable across application crashes in WAL mode (only an OS crash can
            # lose the last commits), and much faster than FULL.
            await writer.open(self.path, self.busy_timeout_ms, "PRAGMA journal_mode=WAL",
                              "PRAGMA synchronous=NORMAL")  # fmt: skip
            await reader.open(self.path, self.busy_timeout_ms, "PRAGMA query_only=ON")
        except BaseException:
            await writer.close()
            await reader.close()
            raise
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        """Close both connections; queued writes and a running group finish first."""
        if self._committer is not None:
            await asyncio.shield(self._committer)
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        for connection in (reader, writer):
            if connection is not None:
                await connection.close()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def pool_usage(self) -> PoolUsage:
        """Two connections (writer, reader); the writer is in use while a group commits."""
        if self._writer is None:
            return PoolUsage(0, 0, 2, 0)
        committing = self._committer is not None and not self._committer.done()
        return PoolUsage(int(committing), 2, 2, len(self._queued) + int(committing))

    def _require(self, connection: _Connection | None) -> _Connection:
        if connection is None or connection.conn is None:
            raise DatabaseError("the database is not open")
        return connection

    async def write(self, body: WriteBody[T]) -> T:
        self._require(self._writer)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((body, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_groups())
        # Shielded: a cancelled caller's write still happens (atomically), as documented.
        return await asyncio.shield(future)

    async def _commit_groups(self) -> None:
        """Drain the queue of writes, a group at a time, on the writer's thread."""
        while self._queued:
            group, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
            try:
                writer = self._require(self._writer)
                outcomes = await writer.run(_run_group, writer.conn, [b for b, _ in group])
            except BaseException as error:
                failure = translate(error) if isinstance(error, sqlite3.Error) else error
                for _, future in group:
                    if not future.done():
                        future.set_exception(failure)
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

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """One trip to the reader's thread that steps the statement to the end. Never leave a
        cursor open across awaits: while a statement on the reader is active, SQLite keeps
        its read snapshot, so other coroutines would read stale data."""
        reader = self._require(self._reader)

        def read(conn: sqlite3.Connection) -> list[Row]:
            return list(conn.execute(sql, params).fetchall())

        try:
            rows: list[Row] = await reader.run(read, reader.conn)
        except sqlite3.Error as error:
            _reraise(error)
        return rows

    async def _has_table(self, name: str) -> bool:
        return bool(
            await self.fetchval(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            )
        )
