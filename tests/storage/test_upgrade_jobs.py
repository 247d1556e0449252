"""Upgrading a database made by the release before issue 21 (paid jobs as image rows, schema
0001-0009) to jobs (0010), on SQLite and on PostgreSQL, loses nothing and keeps every refund
guarantee.

`tests/fixtures/v2_bot.db` and `tests/fixtures/v2_bot.pg.sql` were written by that release's own
code (tests/fixtures/make_v2_database.py, at commit 137820d): balances and ledger rows in server
wallets, finished images (an answer with further images, an API job, an edit, one deleted),
uploads, failed jobs already refunded, one whose refund is owed (the balance cap), budget usage,
grants, and PENDING/PROCESSING jobs of two processes that died. `v2_recovered.json` is what
that release's recovery made of them: this code's recovery must give the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.services.jobs import JobEngine
from storage.db import Database
from storage.jobs import JobRepository, JobStatus, json_object
from storage.leases import LeaseRepository
from storage.objects import LocalObjectStore
from storage.postgres import PostgresDatabase
from storage.sqlite import SQLiteDatabase
from storage.timeutil import from_iso
from storage.usage import Cap, CapKind, UsageRepository
from tests.pg_server import PostgresServer
from tests.storage.helpers import all_jobs, assert_ledger_consistent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECOVERED: dict[str, Any] = json.loads((FIXTURES / "v2_recovered.json").read_text())
MAX_BALANCE = int(RECOVERED["after"]["max_balance"])
#: Tables 0010 does not touch: every row as it was.
UNTOUCHED = (
    "users", "wallets", "generation_usage", "budget_totals", "budget_notices", "guild_settings",
    "guild_settings_changes", "api_tokens", "bot_state", "bot_processes", "object_intents",
    "generation_slots", "gallery_counts", "leases",
)  # fmt: skip
#: What the two processes that died left unfinished (prompts).
CRASH_LEFT = {
    "a banana still queued",
    "a banana waiting for the API",
    "a banana queued at the cap",
    "a banana half written",
    "a free banana left running",
}


@contextlib.asynccontextmanager
async def loaded_dump(server: PostgresServer) -> AsyncIterator[str]:
    """A new database holding the release's PostgreSQL dump, loaded as an owner would
    (`psql -f`); yields its URL, dropped on exit."""
    name = f"v2_{uuid.uuid4().hex[:16]}"
    url = await server.create_database(name)
    try:
        loaded = await asyncio.to_thread(
            subprocess.run,
            [str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url,
             "-f", str(FIXTURES / "v2_bot.pg.sql")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        yield url
    finally:
        await server.drop_database(name)


@pytest.fixture
async def release_db(
    pg_for_backend: PostgresServer | None, tmp_path: Path
) -> AsyncIterator[Database]:
    """The release's database, not upgraded yet: a copy of the SQLite file, or the dump
    loaded into a fresh PostgreSQL database."""
    async with contextlib.AsyncExitStack() as stack:
        database: Database
        if pg_for_backend is not None:
            database = PostgresDatabase(
                await stack.enter_async_context(loaded_dump(pg_for_backend))
            )
        else:
            path = tmp_path / "bot.db"
            shutil.copy(FIXTURES / "v2_bot.db", path)
            database = SQLiteDatabase(path)
        await stack.enter_async_context(database)
        yield database


def twin(db: Database) -> Database:
    """A second connection to the same database, as another bot process opens it."""
    if isinstance(db, PostgresDatabase):
        return PostgresDatabase(db.url)
    assert isinstance(db, SQLiteDatabase)
    return SQLiteDatabase(db.path)


def canonical(value: Any) -> Any:
    """A column value as both backends mean it (jsonb reformats JSON text)."""
    if isinstance(value, str) and value[:1] and value[:1] in "{[":
        return json.loads(value)
    return value


async def rows_of(db: Database, table: str, key: str = "") -> dict[Any, dict[str, Any]]:
    """Every row of `table` by its `key` column (or, without one, by its whole content)."""
    found = [
        {k: canonical(v) for k, v in dict(row).items()}
        for row in await db.fetchall(f"SELECT * FROM {table}")
    ]
    if key:
        return {row[key]: row for row in found}
    return {json.dumps(row, sort_keys=True, default=str): row for row in found}


async def upgrade(db: Database) -> dict[str, dict[Any, dict[str, Any]]]:
    """Migrate the release's database to this code's schema; every row from before."""
    before = {table: await rows_of(db, table) for table in UNTOUCHED}
    before["coin_transactions"] = await rows_of(db, "coin_transactions", "id")
    before["images"] = await rows_of(db, "images", "id")
    applied = await db.migrate()
    # 0001-0009 as they were, checksums and all: 0010 and what came after apply, nothing older.
    versions = [m.version for m in applied]
    assert versions[0] == 10 and versions == sorted(set(versions))
    return before


async def state(db: Database) -> dict[str, Any]:
    """What v2_recovered.json records, read from the upgraded schema: balances by member and
    server, jobs by prompt (status, cost, refunds, what is owed, their usage), budget totals."""
    wallets = await db.fetchall(
        "SELECT u.discord_id, w.guild_id, w.coins FROM wallets w JOIN users u ON u.id = w.user_id"
    )
    rows = await db.fetchall(
        "SELECT j.request, j.status, j.cost, j.refund_owed, g.status AS usage_status, "
        "g.coins AS usage_coins, g.cost_micros, g.images AS usage_images, "
        "(SELECT COUNT(*) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'REFUND') AS refunds "
        "FROM jobs j LEFT JOIN generation_usage g ON g.id = j.id"
    )
    jobs = {}
    for row in rows:
        usage = [row["usage_status"], int(row["usage_coins"]), int(row["cost_micros"])]
        jobs[str(json_object(row["request"])["prompt"])] = {
            "status": row["status"],
            "cost": int(row["cost"]),
            "refunded": int(row["refunds"]),
            "refund_owed": row["refund_owed"],
            "usage": [*usage, int(row["usage_images"])],
        }
    totals = await db.fetchall("SELECT scope, kind, period, used FROM budget_totals")
    return {
        "max_balance": MAX_BALANCE,
        "wallets": dict(sorted((f"{r[0]}@{r[1]}", int(r[2])) for r in wallets)),
        "jobs": dict(sorted(jobs.items())),
        "budget_totals": dict(sorted((f"{r[0]}|{r[1]}|{r[2]}", int(r[3])) for r in totals)),
    }


def is_extra(image: dict[str, Any]) -> bool:
    return "extra_of" in (image["metadata"] or {})


async def test_every_balance_ledger_row_and_image_survives(release_db: Database) -> None:
    db = release_db
    before = await upgrade(db)
    for table in UNTOUCHED:
        assert await rows_of(db, table) == before[table], table
    if isinstance(db, SQLiteDatabase):
        assert await db.fetchval("PRAGMA integrity_check") == "ok"
        assert await db.fetchall("PRAGMA foreign_key_check") == []
    old_images = before["images"]
    finished = {i for i, image in old_images.items() if image["status"] == "COMPLETED"}
    jobs = {i for i, image in old_images.items() if image["type"] == "GENERATED"
            and not is_extra(image)}  # fmt: skip

    # The ledger: every row, same values and order; a charge or refund names its job, an
    # image only while the image exists.
    ledger = await rows_of(db, "coin_transactions", "id")
    assert set(ledger) == set(before["coin_transactions"]) and len(ledger) == 25
    for row_id, old in before["coin_transactions"].items():
        new = ledger[row_id]
        assert {k: new[k] for k in old if k != "image_id"} == {
            k: v for k, v in old.items() if k != "image_id"
        }
        paid_for = old["kind"] in ("GENERATION", "REFUND") and old["image_id"] in jobs
        assert new["job_id"] == (old["image_id"] if paid_for else None)
        assert new["image_id"] == (old["image_id"] if old["image_id"] in finished else None)
    # The charge of the image its owner deleted stays on the books (it names nothing now).
    orphans = [r for r in ledger.values() if r["kind"] == "GENERATION" and r["job_id"] is None]
    assert len(orphans) == 1 and orphans[0]["delta"] == -40
    await assert_ledger_consistent(db)

    # Images: every finished one, every column as it was; the others live on as jobs.
    images = await rows_of(db, "images", "id")
    assert set(images) == finished and len(images) == 8
    for image_id in finished:
        assert images[image_id] == old_images[image_id]
    assert await state(db) == RECOVERED["before"]


async def test_each_generated_job_is_a_job_with_its_id_money_and_wallet(
    release_db: Database,
) -> None:
    db = release_db
    before = await upgrade(db)
    old_jobs = {i: image for i, image in before["images"].items()
                if image["type"] == "GENERATED" and not is_extra(image)}  # fmt: skip
    jobs = {job.id: job for job in await all_jobs(db)}
    assert set(jobs) == set(old_jobs) and len(jobs) == 12
    for job_id, old in old_jobs.items():
        job = jobs[job_id]
        assert (job.kind, job.user_id, job.wallet_id) == ("image", old["user_id"], old["wallet_id"])
        assert (job.status.value, job.cost) == (old["status"], old["coins_used"])
        assert job.guild_id == int(old["guild_id"]) and job.lease_owner == old["lease_owner"]
        assert job.created_at == from_iso(old["created_at"])
        assert job.updated_at == from_iso(old["updated_at"])
        metadata = old["metadata"]
        assert job.request["prompt"] == old["prompt"]
        assert job.request["model"] == metadata["model"]
        assert job.request["aspect_ratio"] == metadata["aspect_ratio"]
        assert job.request["context"] == metadata["context"]
        assert job.error == metadata.get("error")
        assert job.refund_owed == metadata.get("refund_owed")
    by_prompt = {job.request["prompt"]: job for job in jobs.values()}
    owed = by_prompt["a banana whose refund is owed"]
    assert owed.status is JobStatus.FAILED and owed.refund_owed == 100
    assert by_prompt["a banana by API"].request["context"]["via"] == "api"
    unfinished = {j.request["prompt"] for j in jobs.values() if not j.finished}
    assert unfinished == CRASH_LEFT
    assert {j.lease_owner for j in jobs.values() if not j.finished} == {
        "proc-dead-1",
        "proc-dead-2",
    }


async def test_an_answers_further_images_still_point_to_their_job(release_db: Database) -> None:
    db = release_db
    await upgrade(db)
    images = await rows_of(db, "images", "id")
    jobs = {job.id: job for job in await all_jobs(db)}
    extras = [image for image in images.values() if is_extra(image)]
    assert len(extras) == 2
    for extra in extras:
        job = jobs[extra["metadata"]["extra_of"]]
        assert job.status is JobStatus.COMPLETED and job.request["prompt"] == extra["prompt"]
        assert (job.user_id, job.wallet_id) == (extra["user_id"], extra["wallet_id"])
        assert job.guild_id == int(extra["guild_id"]) and extra["coins_used"] == 0
    # The job's result lists what it made, in order, as a job completed today does: so the
    # API's job resource shows the whole answer of an upgraded job.
    [answer] = {extra["metadata"]["extra_of"] for extra in extras}
    in_order = sorted(extras, key=lambda extra: int(extra["metadata"]["index"]))
    assert jobs[answer].result == {"image_ids": [answer, *(e["id"] for e in in_order)]}
    for job in jobs.values():
        if job.status is JobStatus.COMPLETED and job.id != answer:
            assert job.result == {"image_ids": [job.id]}
        if job.status is not JobStatus.COMPLETED:
            assert job.result == {}


async def test_failed_jobs_are_never_refunded_again(release_db: Database) -> None:
    db = release_db
    await upgrade(db)
    failed = [job for job in await all_jobs(db) if job.status is JobStatus.FAILED]
    assert len(failed) == 3
    balances = (await state(db))["wallets"]
    async with twin(db) as other:
        racers = [JobRepository(db, max_balance=MAX_BALANCE), JobRepository(other)] * 2
        for job in failed:
            for expired in (False, True):
                outcomes = await asyncio.gather(
                    *(r.fail_and_refund(job.id, "again", only_if_expired=expired) for r in racers)
                )
                assert outcomes == [None] * len(racers)
    assert (await state(db))["wallets"] == balances
    # Behind the status guard, the database refuses a second refund of a job by itself.
    refunded = next(job for job in failed if job.refund_owed is None and job.cost)
    row = await db.fetchone(
        "SELECT wallet_id, user_id FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'",
        (refunded.id,),
    )
    assert row is not None
    with pytest.raises(Exception, match=r"(?i)unique"):
        await db.execute(
            "INSERT INTO coin_transactions (id, wallet_id, user_id, delta, balance_after, kind, "
            "created_at, job_id) VALUES ('again', ?, ?, 40, 1, 'REFUND', 'now', ?)",
            (row[0], row[1], refunded.id),
        )
    await assert_ledger_consistent(db)


async def test_what_a_crash_left_is_refunded_once_as_the_release_would(
    release_db: Database, tmp_path: Path
) -> None:
    """Two processes of this code start at once on the upgraded database: their recoveries
    race, each crash-left job is failed and refunded exactly once (an owed refund at the cap
    recorded, a free job refunded nothing), the dead processes' half-written objects are
    deleted, and every balance, job, usage row and budget total is what the release's own
    recovery made of the same database."""
    db = release_db
    await upgrade(db)
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    half_written = sorted((await LeaseRepository(db).sweep_work()).dead_intents)
    assert len(half_written) == 2  # the answer of the job whose process died storing it
    for key in half_written:
        await store.put(key, b"partial", "image/png")
    assert {j.request["prompt"] for j in await JobRepository(db).expired()} == CRASH_LEFT

    async with twin(db) as other:
        engines = [
            JobEngine(db=each, store=store, max_concurrent=2, max_jobs_per_user=3,
                      max_balance=MAX_BALANCE)
            for each in (db, other)
        ]  # fmt: skip
        first, second = await asyncio.gather(*(engine.recover() for engine in engines))
        refunds = first + second
        assert sorted(r.job.request["prompt"] for r in refunds) == sorted(CRASH_LEFT)
        assert await engines[0].recover() == [] and await engines[1].recover() == []
    by_prompt = {r.job.request["prompt"]: r for r in refunds}
    assert by_prompt["a banana queued at the cap"].owed == 100
    assert by_prompt["a banana queued at the cap"].refunded == 0
    assert by_prompt["a free banana left running"].refunded == 0
    assert by_prompt["a banana waiting for the API"].refunded == 40
    assert all(r.job.status is JobStatus.FAILED for r in refunds)

    assert await state(db) == RECOVERED["after"]
    assert await JobRepository(db).list_unfinished() == []
    assert await db.fetchval("SELECT COUNT(*) FROM object_intents") == 0
    assert [await store.exists(key) for key in half_written] == [False, False]
    assert await db.fetchval("SELECT COUNT(*) FROM bot_processes") == 0
    usage = UsageRepository(db)
    for cap in (
        Cap(CapKind.USD_PER_MONTH, 1, "2026-12"),
        Cap(CapKind.IMAGES_PER_DAY, 1, "2026-12-06", 900000000000000001),
        Cap(CapKind.USD_PER_MONTH, 1, "2026-12", 900000000000000002),
    ):
        assert await usage.level(cap) == await usage.recount(cap)
    await assert_ledger_consistent(db)
