"""Moving an existing SQLite database to PostgreSQL (`python -m bot copy-to-postgres`), and the
`python -m bot` commands on PostgreSQL: every user, wallet, ledger row, image and setting
survives, balances and invariants hold, and the copy goes on working."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage.copy import copy_sqlite_to_postgres
from storage.errors import DatabaseError
from storage.guild_settings import GuildSettingsRepository
from storage.jobs import JobRepository
from storage.leases import LeaseRepository
from storage.models import TransactionKind
from storage.postgres import PostgresDatabase
from storage.sqlite import SQLiteDatabase
from storage.timeutil import utcnow
from storage.wallets import WalletRepository
from tests.pg_server import PostgresServer
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "v1_bot.db"
GUILD = 900000000000000001


@pytest.fixture
async def empty_pg(pg_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty (not migrated) PostgreSQL database: what an owner creates to move to."""
    name = f"c_{uuid.uuid4().hex[:16]}"
    url = await pg_server.create_database(name)
    try:
        yield url
    finally:
        await pg_server.drop_database(name)


@pytest.fixture
async def source(tmp_path: Path) -> Path:
    """A SQLite database with history: the upgraded v1 fixture (balances, ledgers, images of
    every status, refunds, grants) plus what this release writes (server wallets and
    settings, a daily claim, an unfinished job of a process, an object being written)."""
    path = tmp_path / "bot.db"
    shutil.copy(FIXTURE, path)
    async with SQLiteDatabase(path) as db:
        await db.migrate()
        user, wallet = await member(db, 4242, 500, GUILD)
        wallets = WalletRepository(db)
        await wallets.claim_daily(wallet.id, 50, not_since=utcnow())
        await wallets.debit(wallet.id, 30, kind=TransactionKind.ADJUSTMENT, reason="fix")
        settings = GuildSettingsRepository(db)
        await settings.change(GUILD, "generation_cost", 40, actor_id=user.id)
        await settings.change(GUILD, "channel_ids", [GUILD + 1, GUILD + 2], actor_id=None)
        leases = LeaseRepository(db)
        await leases.register("old-process", "host pid 1", -1)
        await paid_job(db, user, wallet, 100, prompt="left running", lease_owner="old-process")
        await leases.add_intents("old-process", ["images/x/1-half-written.png"])
        await db.set_state("commands_hash", "abc")
    return path


def canonical(value: Any) -> Any:
    """A column value as both backends mean it (jsonb reformats JSON text)."""
    if isinstance(value, str) and value[:1] and value[:1] in "{[":
        return json.loads(value)
    return value


async def rows_of(db: SQLiteDatabase | PostgresDatabase, table: str) -> list[dict[str, Any]]:
    rows = await db.fetchall(f"SELECT * FROM {table}")
    found = [{k: canonical(v) for k, v in dict(row).items()} for row in rows]
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


async def test_every_row_survives_the_copy(source: Path, empty_pg: str) -> None:
    async with SQLiteDatabase(source) as old, PostgresDatabase(empty_pg) as new:
        report = await copy_sqlite_to_postgres(old, new)
        assert report.problems == []
        assert {"users", "wallets", "coin_transactions", "images", "jobs", "guild_settings",
                "guild_settings_changes", "bot_state", "bot_processes",
                "object_intents"} <= set(report.tables)  # fmt: skip
        assert report.tables["jobs"] >= 8
        assert report.tables["users"] >= 5 and report.tables["coin_transactions"] >= 10
        for table in report.tables:
            assert await rows_of(new, table) == await rows_of(old, table), table
        await assert_ledger_consistent(new)
        # The copy works on: the ledger's sequence continues after the copied rows, the dead
        # process's job is refunded by the first sweep, and nothing was lost on the way.
        wallets = WalletRepository(new)
        wallet_id = str(await new.fetchval("SELECT id FROM wallets ORDER BY id LIMIT 1"))
        await wallets.credit(wallet_id, 10, kind=TransactionKind.GRANT)
        work = await LeaseRepository(new).sweep_work()
        # The v1 fixture's crash leftovers, and the job of the process that died.
        assert "left running" in [j.request.get("prompt") for j in work.expired_jobs]
        assert len(work.expired_jobs) == 3
        assert work.dead_intents == ["images/x/1-half-written.png"]
        for job in work.expired_jobs:
            refund = await JobRepository(new).fail_and_refund(
                job.id, "interrupted by a restart", only_if_expired=True
            )
            assert refund is not None and refund.refunded == job.cost == 100
        assert (await LeaseRepository(new).sweep_work()).expired_jobs == []
        await assert_ledger_consistent(new)


async def test_a_database_with_data_is_never_copied_into(source: Path, empty_pg: str) -> None:
    async with SQLiteDatabase(source) as old, PostgresDatabase(empty_pg) as new:
        await copy_sqlite_to_postgres(old, new)
        users = await new.fetchval("SELECT COUNT(*) FROM users")
        with pytest.raises(DatabaseError, match="already holds data"):
            await copy_sqlite_to_postgres(old, new)
        assert await new.fetchval("SELECT COUNT(*) FROM users") == users


def bot_command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "DATABASE"))},
        "DISCORD_TOKEN": "not-used",
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=environment, cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_the_copy_command_then_migrate_and_health_on_postgresql(
    source: Path, empty_pg: str, tmp_path: Path
) -> None:
    copied = await asyncio.to_thread(
        bot_command, "copy-to-postgres", "--sqlite", str(source), DATABASE_URL=empty_pg
    )
    assert copied.returncode == 0, copied.stderr
    assert "done:" in copied.stdout and "verified" in copied.stdout
    assert "users:" in copied.stdout
    migrated = await asyncio.to_thread(bot_command, "migrate", DATABASE_URL=empty_pg)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied none (up to date)" in migrated.stdout and "postgresql://" in migrated.stdout
    again = await asyncio.to_thread(
        bot_command, "copy-to-postgres", "--sqlite", str(source), DATABASE_URL=empty_pg
    )
    assert again.returncode == 1 and "nothing copied" in again.stderr
    # The health probe: no live bot process on this host yet, then one.
    sick = await asyncio.to_thread(bot_command, "health", DATABASE_URL=empty_pg)
    assert sick.returncode == 1 and "FAIL" in sick.stdout
    async with PostgresDatabase(empty_pg) as db:
        await LeaseRepository(db).register("p1", f"{socket.gethostname()} pid 7 (all)", 60)
    healthy = await asyncio.to_thread(bot_command, "health", DATABASE_URL=empty_pg)
    assert healthy.returncode == 0 and "1 live bot process" in healthy.stdout
    missing = await asyncio.to_thread(
        bot_command, "copy-to-postgres", "--sqlite", str(tmp_path / "none.db"),
        DATABASE_URL=empty_pg,
    )  # fmt: skip
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr


async def test_migrate_applies_the_postgresql_set(empty_pg: str) -> None:
    migrated = await asyncio.to_thread(bot_command, "migrate", DATABASE_URL=empty_pg)
    assert migrated.returncode == 0, migrated.stderr
    applied = (
        "0001_initial, 0002_servers_are_tenants, 0003_api_tokens, 0004_owner_controls, "
        "0005_job_leases"
    )
    assert f"applied {applied}" in migrated.stdout
