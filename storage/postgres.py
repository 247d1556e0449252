"""The PostgreSQL backend (asyncpg): one database shared by every process of a deployment.

Chosen with `DATABASE_URL=postgresql://user:password@host:5432/dbname`. Transaction bodies are
awaited inside an asyncpg transaction (READ COMMITTED) on a pooled connection; the repositories'
guarded statements (`... WHERE coins >= ?`, `... WHERE status IN (...)`) are what make
concurrent writers safe, and reads that must not change under a body use `Dialect.for_update`.
Statements are written with `?` placeholders and translated to `$1, $2...` once each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.db import (
    POSTGRES_MIGRATIONS_DIR,
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
POSTGRES = Dialect("postgresql")
# pg_advisory_xact_lock key serialising migrations of processes that start together.
MIGRATION_LOCK = 0x6E62_6D69_6772


@functools.lru_cache(maxsize=4096)
def translate_placeholders(sql: str) -> str:
    """`?` placeholders as `$1, $2...`, leaving quoted strings and identifiers alone."""
    out: list[str] = []
    number = 0
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def translate(error: BaseException) -> BaseException:
    """asyncpg's errors in the data layer's terms (see storage.errors)."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return ConstraintViolation(str(error))
    if isinstance(error, _TRANSIENT):
        return DatabaseBusy(f"{type(error).__name__}: {error}")
    if isinstance(error, asyncpg.InterfaceError) and "closed" in str(error):
        return DatabaseBusy(f"{type(error).__name__}: {error}")
    return error


def _reraise(error: BaseException) -> NoReturn:
    translated = translate(error)
    if translated is error:
        raise error
    raise translated from error


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTransaction(Transaction):
    """A transaction on one pooled connection."""

    dialect = POSTGRES

    def __init__(self, conn: asyncpg.Connection | PoolConnectionProxy) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        status = await self._conn.execute(translate_placeholders(sql), *params)
        return _rowcount(status)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(translate_placeholders(sql), [tuple(r) for r in rows])

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._conn.fetch(translate_placeholders(sql), *params))

    async def execute_script(self, sql: str) -> None:
        # No parameters: the simple query protocol, which takes several statements at once.
        await self._conn.execute(sql)

    @property
    def connection(self) -> asyncpg.Connection | PoolConnectionProxy:
        """The underlying connection (bulk copies use COPY through it)."""
        return self._conn


class PostgresDatabase(Database):
    """The bot's database on a PostgreSQL server."""

    dialect = POSTGRES
    migrations_dir = POSTGRES_MIGRATIONS_DIR

    def __init__(
        self, url: str, *, pool_size: int = 10, command_timeout_ms: int | None = None
    ) -> None:
        self.url = url
        self.pool_size = max(2, pool_size)
        # How long one pooled connection is waited for before DatabaseBusy.
        self.acquire_timeout = max(5.0, (command_timeout_ms or 0) / 1000)
        self._pool: asyncpg.Pool | None = None
        self._writes: set[asyncio.Task[Any]] = set()

    @property
    def description(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    async def connect(self) -> None:
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                server_settings={"application_name": "nanobanana-bot"},
            )
        except Exception as error:
            _reraise(error)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes))
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def pool_usage(self) -> PoolUsage:
        """asyncpg's pool: connections open, idle and at most; writes running or waiting."""
        pool = self._pool
        if pool is None:
            return PoolUsage(0, 0, self.pool_size, 0)
        opened = pool.get_size()
        return PoolUsage(opened - pool.get_idle_size(), opened, pool.get_max_size(),
                         len(self._writes))  # fmt: skip

    def _require(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseError("the database is not open")
        return self._pool

    async def write(self, body: WriteBody[T]) -> T:
        pool = self._require()
        task: asyncio.Task[T] = asyncio.ensure_future(self._write(pool, body))
        self._writes.add(task)
        task.add_done_callback(self._write_done)
        # Shielded: a cancelled caller's write still happens (atomically), as on SQLite.
        return await asyncio.shield(task)

    def _write_done(self, task: asyncio.Task[Any]) -> None:
        self._writes.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a cancelled caller no longer awaits it

    async def _write(self, pool: asyncpg.Pool, body: WriteBody[T]) -> T:
        try:
            async with (
                pool.acquire(timeout=self.acquire_timeout) as conn,
                conn.transaction(),
            ):
                return await body(PostgresTransaction(conn))
        except Exception as error:
            _reraise(error)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        pool = self._require()
        try:
            async with pool.acquire(timeout=self.acquire_timeout) as conn:
                return list(await conn.fetch(translate_placeholders(sql), *params))
        except Exception as error:
            _reraise(error)

    async def _has_table(self, name: str) -> bool:
        return bool(
            await self.fetchval(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ?",
                (name,),
            )
        )

    async def _migration_write(self, body: WriteBody[bool]) -> bool:
        async def locked(tx: Transaction) -> bool:
            await tx.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            return await body(tx)

        return await self.write(locked)
