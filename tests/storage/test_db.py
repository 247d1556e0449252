"""Database: transaction bodies, reads, and the migration runner, on both backends (a real
SQLite file and a real PostgreSQL server), plus what only one backend has."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database, Migration, Transaction, load_migrations
from storage.errors import ConstraintViolation, DatabaseBusy, DatabaseError, MigrationError
from storage.postgres import PostgresDatabase, translate_placeholders
from storage.sqlite import SQLiteDatabase, split_statements
from tests.fakes.sqlite_locker import LockedDatabase
from tests.pg_server import PostgresServer

Body = Callable[[Transaction], Coroutine[Any, Any, Any]]


@pytest.fixture
async def empty_db(
    pg_for_backend: PostgresServer | None, tmp_path: Path
) -> AsyncIterator[Database]:
    """A database with no migration applied, on either backend."""
    if pg_for_backend is None:
        async with SQLiteDatabase(tmp_path / "empty.db") as database:
            yield database
        return
    name = f"e_{uuid.uuid4().hex[:16]}"
    try:
        async with PostgresDatabase(await pg_for_backend.create_database(name)) as database:
            yield database
    finally:
        await pg_for_backend.drop_database(name)


async def table_names(db: Database) -> set[str]:
    if db.dialect.is_postgres:
        rows = await db.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    else:
        rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows}


def insert_state(key: str) -> Body:
    async def body(tx: Transaction) -> str:
        await tx.execute("INSERT INTO bot_state VALUES (?, 'v', 'now')", (key,))
        return key

    return body


async def test_schema_has_the_contract_tables(db: Database) -> None:
    assert {"users", "images", "coin_transactions", "wallets", "schema_migrations"} <= (
        await table_names(db)
    )


async def test_migration_sets_match_version_for_version() -> None:
    """Every SQLite migration has its PostgreSQL twin (same number and name), and back."""
    sqlite = [(m.version, m.name) for m in load_migrations(SQLiteDatabase.migrations_dir)]
    postgres = [(m.version, m.name) for m in load_migrations(PostgresDatabase.migrations_dir)]
    assert sqlite == postgres


async def test_coins_check_constraint(db: Database) -> None:
    await db.execute("INSERT INTO users (id, created_at, updated_at) VALUES ('u', 'x', 'x')")
    with pytest.raises(ConstraintViolation):
        await db.execute(
            "INSERT INTO wallets (id, user_id, coins, created_at, updated_at) "
            "VALUES ('w', 'u', -1, 'x', 'x')"
        )
    assert await db.fetchval("SELECT COUNT(*) FROM wallets") == 0


async def test_migrations_are_idempotent(empty_db: Database) -> None:
    first = await empty_db.migrate()
    second = await empty_db.migrate()
    assert [m.version for m in first] == [m.version for m in empty_db.load_migrations()]
    assert second == []
    assert await empty_db.fetchval("SELECT COUNT(*) FROM schema_migrations") == len(first)


async def test_edited_migration_is_refused(empty_db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id INTEGER PRIMARY KEY);\n")
    await empty_db.migrate(load_migrations(folder))
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id TEXT PRIMARY KEY);\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await empty_db.migrate(load_migrations(folder))


async def test_failed_migration_rolls_back_whole_file(empty_db: Database) -> None:
    bad = Migration(1, "bad", "CREATE TABLE a (id INTEGER);\nCREATE TABLE a (id INTEGER);\n")
    with pytest.raises(Exception, match="already exists"):
        await empty_db.migrate([bad])
    assert "a" not in await table_names(empty_db)
    assert await empty_db.applied_migrations() == {}


def test_bad_migration_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    sql = """
    -- a comment
    CREATE TABLE t (x INTEGER);
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET x = x + 1;
        UPDATE t SET x = x + 2;
    END;
    """
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].count("UPDATE") == 2


def test_placeholders_are_numbered_outside_quotes() -> None:
    sql = "SELECT '?' AS q, \"a?\" FROM t WHERE a = ? AND b IN (?, ?) AND c = 'it''s ?'"
    assert translate_placeholders(sql) == (
        "SELECT '?' AS q, \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3) AND c = 'it''s ?'"
    )


async def test_state_round_trip(db: Database) -> None:
    await db.set_state("commands_hash", "abc")
    await db.set_state("commands_hash", "def")
    assert await db.get_state("commands_hash") == "def"


async def test_write_commits_and_rolls_back_whole(db: Database) -> None:
    async def ok(tx: Transaction) -> int:
        await tx.execute("INSERT INTO bot_state VALUES ('w1', 'v', 'now')")
        return 7

    assert await db.write(ok) == 7
    assert await db.get_state("w1") == "v"

    async def fails(tx: Transaction) -> None:
        await tx.execute("INSERT INTO bot_state VALUES ('w2', 'v', 'now')")
        raise ValueError("no")

    with pytest.raises(ValueError):
        await db.write(fails)
    assert await db.get_state("w2") is None
    await db.set_state("w3", "lock free")  # neither a lock nor a transaction is left behind


async def test_reads_inside_a_body_see_its_own_writes(db: Database) -> None:
    async def body(tx: Transaction) -> Any:
        await tx.execute("INSERT INTO bot_state VALUES ('own', 'mine', 'now')")
        return await tx.fetchval("SELECT value FROM bot_state WHERE key = 'own'")

    assert await db.write(body) == "mine"


async def test_grouped_writes_fail_alone(db: Database) -> None:
    """Concurrent writes (a group commit on SQLite, pooled connections on PostgreSQL): one
    that raises is rolled back by itself."""

    def writer(n: int) -> Body:
        async def body(tx: Transaction) -> int:
            await tx.execute("INSERT INTO bot_state VALUES (?, 'v', 'now')", (f"g{n}",))
            if n % 3 == 0:
                raise ValueError(f"write {n} refused")
            return n

        return body

    outcomes = await asyncio.gather(*(db.write(writer(n)) for n in range(30)),
                                    return_exceptions=True)  # fmt: skip
    for n, outcome in enumerate(outcomes):
        if n % 3 == 0:
            assert isinstance(outcome, ValueError) and await db.get_state(f"g{n}") is None
        else:
            assert outcome == n and await db.get_state(f"g{n}") == "v"


async def test_cancelled_write_is_still_all_or_nothing(db: Database) -> None:
    """A caller cancelled while its body runs: the body finishes and commits whole."""
    started = threading.Event()

    async def slow(tx: Transaction) -> None:
        await tx.execute("INSERT INTO bot_state VALUES ('c1', 'v', 'now')")
        started.set()
        if tx.dialect.is_postgres:
            await tx.execute("SELECT pg_sleep(0.3)")
        else:
            time.sleep(0.3)  # noqa: ASYNC251 (on the writer's thread: the body never yields)
        await tx.execute("INSERT INTO bot_state VALUES ('c2', 'v', 'now')")

    task = asyncio.create_task(db.write(slow))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.set_state("after", "x")  # SQLite: queued behind the cancelled transaction
    for _ in range(100):
        if await db.get_state("c2") is not None:
            break
        await asyncio.sleep(0.05)
    assert await db.get_state("c1") == "v" and await db.get_state("c2") == "v"


async def test_reader_never_sees_uncommitted_writes(db: Database) -> None:
    inside = threading.Event()
    release = threading.Event()

    async def writer(tx: Transaction) -> None:
        await tx.execute("INSERT INTO bot_state VALUES ('r', 'v', 'now')")
        inside.set()
        if tx.dialect.is_postgres:
            while not release.is_set():
                await tx.execute("SELECT pg_sleep(0.02)")
        else:
            release.wait(5)

    task = asyncio.create_task(db.write(writer))
    await asyncio.to_thread(inside.wait, 5)
    assert await db.get_state("r") is None
    release.set()
    await task
    assert await db.get_state("r") == "v"


async def test_a_body_that_awaits_something_else_is_refused(tmp_path: Path) -> None:
    """On SQLite a body may only await its transaction (it runs on the writer's thread); one
    that sleeps is refused with a clear error and leaves nothing behind."""

    async def sleepy(tx: Transaction) -> None:
        await tx.execute("INSERT INTO bot_state VALUES ('s', 'v', 'now')")
        await asyncio.sleep(0)

    async with SQLiteDatabase(tmp_path / "bot.db") as db:
        await db.migrate()
        with pytest.raises(DatabaseError, match="awaited something other"):
            await db.write(sleepy)
        assert await db.get_state("s") is None
        await db.set_state("next", "fine")


async def test_sqlite_pragmas_wal_and_foreign_keys(tmp_path: Path) -> None:
    async with SQLiteDatabase(tmp_path / "bot.db") as db:
        assert (await db.fetchval("PRAGMA journal_mode")).lower() == "wal"
        assert await db.fetchval("PRAGMA foreign_keys") == 1
        assert await db.fetchval("PRAGMA busy_timeout") == 5000


async def test_an_up_to_date_database_opens_while_another_process_writes(tmp_path: Path) -> None:
    """Start-up only writes when a migration is pending, so a locked but migrated database
    doesn't stop the bot; a write against the lock fails cleanly (DatabaseBusy) and leaves no
    transaction open, so the next write after the lock works."""
    async with SQLiteDatabase(tmp_path / "bot.db") as first:
        await first.migrate()
    async with (
        LockedDatabase(tmp_path / "bot.db") as lock,
        SQLiteDatabase(tmp_path / "bot.db", busy_timeout_ms=50) as db,
    ):
        assert await db.migrate() == []
        with pytest.raises(DatabaseBusy, match="locked"):
            await db.set_state("k", "v")
        await lock.release()
        await db.set_state("k", "v")
        assert await db.get_state("k") == "v"


async def test_postgres_processes_migrating_at_once_apply_each_file_once(
    pg_server: PostgresServer,
) -> None:
    """Two bots starting together on a new database: one applies, the other waits and finds
    nothing left to do."""
    name = f"m_{uuid.uuid4().hex[:16]}"
    url = await pg_server.create_database(name)
    try:
        async with PostgresDatabase(url) as one, PostgresDatabase(url) as two:
            first, second = await asyncio.gather(one.migrate(), two.migrate())
            assert sorted(m.version for m in [*first, *second]) == [
                m.version for m in one.load_migrations()
            ]
    finally:
        await pg_server.drop_database(name)


def test_postgres_description_hides_the_password() -> None:
    database = PostgresDatabase("postgresql://bot:s3cret@db.example:5432/bot?sslmode=require")
    assert database.description == "postgresql://bot@db.example:5432/bot"


async def test_postgres_unreachable_is_busy(tmp_path: Path) -> None:
    database = PostgresDatabase(f"postgresql://nobody@/none?host={tmp_path}&port=1")
    with pytest.raises(DatabaseBusy):
        await database.connect()
