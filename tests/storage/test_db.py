"""Database: pragmas, transactions, and the migration runner on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.db import Database, Migration, MigrationError, load_migrations, split_statements
from tests.fakes.sqlite_locker import LockedDatabase


async def test_pragmas_wal_and_foreign_keys(db: Database) -> None:
    assert (await db.fetchval("PRAGMA journal_mode")).lower() == "wal"
    assert await db.fetchval("PRAGMA foreign_keys") == 1
    assert await db.fetchval("PRAGMA busy_timeout") == 5000


async def test_initial_schema_has_the_contract_tables(db: Database) -> None:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = {r["name"] for r in rows}
    assert {"users", "images", "coin_transactions", "schema_migrations"} <= names
    indexes = {
        r["name"] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='index'")
    }
    assert {"idx_images_user_created", "idx_images_user_type_created"} <= indexes
    assert "idx_images_status_updated" in indexes


async def test_coins_check_constraint(db: Database) -> None:
    await db.execute("INSERT INTO users (id, created_at, updated_at) VALUES ('u', 'x', 'x')")
    with pytest.raises(sqlite3.IntegrityError):
        await db.execute(
            "INSERT INTO wallets (id, user_id, coins, created_at, updated_at) "
            "VALUES ('w', 'u', -1, 'x', 'x')"
        )


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    async with Database(tmp_path / "a.db") as database:
        first = await database.migrate()
        second = await database.migrate()
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        assert second == []
        assert await database.fetchval("SELECT COUNT(*) FROM schema_migrations") == len(first)


async def test_edited_migration_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id INTEGER PRIMARY KEY);\n")
    async with Database(tmp_path / "b.db") as database:
        await database.migrate(load_migrations(folder))
        (folder / "0001_things.sql").write_text("CREATE TABLE things (id TEXT PRIMARY KEY);\n")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await database.migrate(load_migrations(folder))


async def test_failed_migration_rolls_back_whole_file(tmp_path: Path) -> None:
    bad = Migration(1, "bad", "CREATE TABLE a (id INTEGER);\nCREATE TABLE a (id INTEGER);\n")
    async with Database(tmp_path / "c.db") as database:
        with pytest.raises(sqlite3.OperationalError):
            await database.migrate([bad])
        assert await database.fetchval("SELECT COUNT(*) FROM sqlite_master WHERE name='a'") == 0
        assert await database.applied_migrations() == {}


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


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO bot_state VALUES ('k', 'v', 'now')")
            raise RuntimeError("boom")
    assert await db.get_state("k") is None


async def test_cancelled_transaction_rolls_back_and_frees_the_lock(db: Database) -> None:
    entered = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO bot_state VALUES ('c', 'v', 'now')")
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(writer())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.get_state("c") is None
    await db.set_state("c", "after")  # the lock is free and no transaction is left open
    assert await db.get_state("c") == "after"


async def test_reader_never_sees_uncommitted_writes(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO bot_state VALUES ('r', 'v', 'now')")
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    assert await db.get_state("r") is None
    release.set()
    await task
    assert await db.get_state("r") == "v"


async def test_state_round_trip(db: Database) -> None:
    await db.set_state("commands_hash", "abc")
    await db.set_state("commands_hash", "def")
    assert await db.get_state("commands_hash") == "def"


async def test_write_commits_and_rolls_back_whole(db: Database) -> None:
    def ok(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO bot_state VALUES ('w1', 'v', 'now')")
        return 7

    assert await db.write(ok) == 7
    assert await db.get_state("w1") == "v"

    def fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO bot_state VALUES ('w2', 'v', 'now')")
        raise ValueError("no")

    with pytest.raises(ValueError):
        await db.write(fails)
    assert await db.get_state("w2") is None
    await db.set_state("w3", "lock free")  # neither the lock nor a transaction is left behind


async def test_cancelled_write_is_still_all_or_nothing(db: Database) -> None:
    import threading

    started = threading.Event()
    release = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO bot_state VALUES ('c1', 'v', 'now')")
        started.set()
        release.wait(5)
        conn.execute("INSERT INTO bot_state VALUES ('c2', 'v', 'now')")

    task = asyncio.create_task(db.write(slow))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await db.set_state("after", "x")  # queued behind the cancelled transaction on the thread
    assert await db.get_state("c1") == "v" and await db.get_state("c2") == "v"


async def test_grouped_writes_fail_alone(db: Database) -> None:
    """Concurrent writes share a group commit; one that raises is rolled back by itself."""

    def writer(n: int) -> Callable[[sqlite3.Connection], int]:
        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO bot_state VALUES (?, 'v', 'now')", (f"g{n}",))
            if n % 3 == 0:
                raise ValueError(f"write {n} refused")
            return n

        return fn

    outcomes = await asyncio.gather(*(db.write(writer(n)) for n in range(30)),
                                    return_exceptions=True)  # fmt: skip
    for n, outcome in enumerate(outcomes):
        if n % 3 == 0:
            assert isinstance(outcome, ValueError) and await db.get_state(f"g{n}") is None
        else:
            assert outcome == n and await db.get_state(f"g{n}") == "v"


async def test_an_up_to_date_database_opens_while_another_process_writes(tmp_path: Path) -> None:
    """Start-up only writes when a migration is pending, so a locked but migrated database
    doesn't stop the bot; a write against the lock fails cleanly and leaves no transaction
    open, so the next write after the lock works."""
    async with Database(tmp_path / "bot.db") as first:
        await first.migrate()
    async with (
        LockedDatabase(tmp_path / "bot.db") as lock,
        Database(tmp_path / "bot.db", busy_timeout_ms=50) as db,
    ):
        assert await db.migrate() == []
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await db.set_state("k", "v")
        await lock.release()
        await db.set_state("k", "v")
        assert await db.get_state("k") == "v"
