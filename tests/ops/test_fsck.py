"""`python -m bot fsck [--repair]`: each planted fault (a missing object, an orphan, a missing
and a broken thumbnail, a stranded job, a ledger that doesn't add up, a refund that isn't once)
is found; `--repair` fixes what is safe exactly once, and a second run changes nothing. On
SQLite and PostgreSQL (the `db` fixture), with a local folder and S3 through moto."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image as PILImage

from bot.services.fsck import Check, FsckReport, run_fsck
from storage.db import Database
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobStatus
from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore, image_key, thumbnail_key
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

GUILD = 4242


def png(colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(params=("local", "s3"))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        local = LocalObjectStore(tmp_path / "objects")
        await local.open()
        yield local
    else:
        # A bucket of its own on the session's moto server (over HTTP).
        moto_server: str = request.getfixturevalue("moto_server")
        s3 = S3ObjectStore(
            bucket=f"fsck-{uuid.uuid4().hex[:12]}", endpoint_url=moto_server,
            access_key_id="test-key", secret_access_key="test-secret", region="us-east-1",
        )  # fmt: skip
        await s3.open()
        await s3.ensure_bucket()
        try:
            yield s3
        finally:
            await s3.close()


@dataclass
class World:
    """What the planted faults are about."""

    missing: str  # an image's object key, deleted
    orphan: str  # an object no row names
    no_thumb: str  # image id whose thumbnail object was deleted
    broken_thumb: str  # image id whose thumbnail holds garbage
    broken_key: str  # that thumbnail's key
    stranded: str  # job id of a process that died
    drifted: str  # wallet id whose balance was changed without a ledger row
    healthy: str  # image id nothing is wrong with


async def upload(db: Database, store: ObjectStore, user_id: str, wallet_id: str, name: str) -> str:
    key = image_key(user_id, name, "png")
    thumb = thumbnail_key(key)
    await store.put(key, png(), "image/png")
    await store.put(thumb, png("green"), "image/webp")
    image, _ = await ImageRepository(db).create_upload(
        user_id=user_id, wallet_id=wallet_id, cost=0, guild_id=GUILD, title=name,
        stored=StoredObject(key, None, thumb, None), metadata={"format": "png"},
    )  # fmt: skip
    return image.id


async def plant(db: Database, store: ObjectStore) -> World:
    alice, wallet = await member(db, 1001, coins=500, guild_id=GUILD)
    bob, bob_wallet = await member(db, 1002, coins=300, guild_id=GUILD)
    healthy = await upload(db, store, alice.id, wallet.id, "fine")
    gone = await upload(db, store, alice.id, wallet.id, "gone")
    missing = str(await db.fetchval("SELECT storage_key FROM images WHERE id = ?", (gone,)))
    await store.delete(missing)
    no_thumb = await upload(db, store, bob.id, bob_wallet.id, "thumbless")
    await store.delete(str(await db.fetchval(
        "SELECT thumbnail_key FROM images WHERE id = ?", (no_thumb,))))  # fmt: skip
    broken = await upload(db, store, bob.id, bob_wallet.id, "broken")
    broken_key = str(await db.fetchval("SELECT thumbnail_key FROM images WHERE id = ?", (broken,)))
    await store.put(broken_key, b"not a webp", "image/webp")
    orphan = image_key(alice.id, "left-behind", "png")
    await store.put(orphan, png("red"), "image/png")
    job = await paid_job(db, alice, wallet, 100, guild_id=GUILD, lease_owner="dead-process")
    await db.execute("UPDATE wallets SET coins = coins + 7 WHERE id = ?", (bob_wallet.id,))
    return World(missing, orphan, no_thumb, broken, broken_key, job.id, bob_wallet.id, healthy)


def found(report: FsckReport, check: Check) -> list[str]:
    return [f.subject for f in report.problems if f.check is check]


async def test_fsck_finds_each_fault_and_repair_fixes_each_once(
    db: Database, store: ObjectStore
) -> None:
    world = await plant(db, store)
    objects_before = sorted(await store.list())
    checked = await run_fsck(db, store, grace=timedelta(0))
    assert found(checked, Check.MISSING) == [world.missing]
    assert found(checked, Check.ORPHAN) == [world.orphan]
    assert sorted(found(checked, Check.THUMBNAIL)) == sorted([world.no_thumb, world.broken_thumb])
    assert found(checked, Check.STRANDED) == [f"job {world.stranded}"]
    assert found(checked, Check.LEDGER) == [f"wallet {world.drifted}"]
    assert checked.exit_code == 1 and not checked.repaired
    assert any("+7" in line and world.drifted in line for line in checked.lines())
    # A check alone changes nothing.
    assert sorted(await store.list()) == objects_before
    job = await db.fetchval("SELECT status FROM jobs WHERE id = ?", (world.stranded,))
    assert job == JobStatus.PENDING.value

    repaired = await run_fsck(db, store, repair=True, grace=timedelta(0))
    done = {f.check: f.repaired for f in repaired.repaired}
    assert set(done) == {Check.ORPHAN, Check.THUMBNAIL, Check.STRANDED, Check.LEDGER}
    assert len(repaired.repaired) == 5  # two thumbnails
    assert [f.subject for f in repaired.left] == [world.missing]  # bytes gone: only a backup
    assert repaired.exit_code == 1
    assert world.orphan not in await store.list()
    for image_id in (world.no_thumb, world.broken_thumb):
        key = str(await db.fetchval("SELECT thumbnail_key FROM images WHERE id = ?", (image_id,)))
        with PILImage.open(io.BytesIO(await store.get(key))) as thumb:
            assert thumb.format == "WEBP" and max(thumb.size) <= 256
    # The broken thumbnail's object went with its row's repair (no new orphan): the orphan
    # out, the missing thumbnail in.
    assert world.broken_key not in await store.list()
    assert len(await store.list()) == len(objects_before)
    refunds = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE job_id = ? AND kind = 'REFUND'",
        (world.stranded,),
    )
    assert refunds == 1
    assert await db.fetchval("SELECT status FROM jobs WHERE id = ?", (world.stranded,)) == "FAILED"
    adjustment = await db.fetchone(
        "SELECT delta, balance_after, reason FROM coin_transactions WHERE wallet_id = ? "
        "AND kind = 'ADJUSTMENT'",
        (world.drifted,),
    )
    assert adjustment is not None and (adjustment[0], adjustment[1]) == (7, 307)
    await assert_ledger_consistent(db)

    # Twice: nothing changes, nothing more is repaired.
    rows_before = await _snapshot(db)
    objects_now = sorted(await store.list())
    again = await run_fsck(db, store, repair=True, grace=timedelta(0))
    assert not again.repaired
    assert [f.subject for f in again.problems] == [world.missing]
    assert await _snapshot(db) == rows_before
    assert sorted(await store.list()) == objects_now


async def test_young_orphans_and_running_jobs_are_left_alone(db: Database, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    alice, wallet = await member(db, 1001, coins=500, guild_id=GUILD)
    young = image_key(alice.id, "just-written", "png")
    await store.put(young, png(), "image/png")
    # A live process's job (its lease runs).
    await db.execute(
        "INSERT INTO bot_processes (id, name, started_at, lease_until) "
        "VALUES ('live', 'test', '2026-01-01T00:00:00.000000Z', '2999-01-01T00:00:00.000000Z')"
    )
    running = await paid_job(db, alice, wallet, 100, lease_owner="live")
    report = await run_fsck(db, store, repair=True)  # the default grace: a day
    assert report.exit_code == 0 and not report.problems
    assert young in await store.list()
    assert await db.fetchval("SELECT status FROM jobs WHERE id = ?", (running.id,)) == "PENDING"
    lines = "\n".join(report.lines())
    assert "younger than the grace period" in lines and "its process is running" in lines
    assert lines.endswith("fsck: everything agrees")


async def test_refunds_that_are_not_exactly_once_are_reported(db: Database, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    alice, wallet = await member(db, 1001, coins=500)
    job = await paid_job(db, alice, wallet, 100, lease_owner="gone")
    # A job marked FAILED by hand, behind the repository's back: never refunded.
    await db.execute("UPDATE jobs SET status = 'FAILED' WHERE id = ?", (job.id,))
    report = await run_fsck(db, store, repair=True)
    assert [(f.check, f.subject) for f in report.left] == [(Check.REFUND, f"job {job.id}")]
    assert "never refunded" in report.left[0].detail
    assert report.exit_code == 1


async def _snapshot(db: Database) -> list[object]:
    tables = ("images", "jobs", "coin_transactions", "wallets")
    found: list[object] = []
    for table in tables:
        rows = await db.fetchall(f"SELECT * FROM {table} ORDER BY id")
        # Row.keys(): sqlite3.Row iterates its values, asyncpg's Record its values too.
        found.append([[row[k] for k in row.keys()] for row in rows])  # noqa: SIM118
    return found


async def test_the_command_prints_lines_and_an_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.__main__ import main
    from storage.sqlite import SQLiteDatabase

    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "bot.db"))
    monkeypatch.setenv("LOCAL_STORAGE_DIR", str(tmp_path / "objects"))
    monkeypatch.setenv("DISCORD_TOKEN", "fake-token")
    async with SQLiteDatabase(tmp_path / "bot.db") as db:
        await db.migrate()
        alice, wallet = await member(db, 1001, coins=500)
        await paid_job(db, alice, wallet, 100, lease_owner="dead")
    # main() runs its own event loop: in a thread, away from the test's.
    assert await asyncio.to_thread(main, ["fsck"]) == 1
    out = capsys.readouterr().out
    assert "STRANDED JOB" in out and "--repair" in out
    assert await asyncio.to_thread(main, ["fsck", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "repaired: failed and 100 coins refunded" in out and "1 repaired, 0 left" in out
    assert await asyncio.to_thread(main, ["fsck"]) == 0
    assert "everything agrees" in capsys.readouterr().out


async def test_library_images_are_checked_kept_and_their_orphans_found(
    db: Database, tmp_path: Path
) -> None:
    """The character library's and style presets' images (characters/, styles/): a saved
    one is kept, one its row names but the store lost is reported, and an old object under
    those prefixes that no row names is an orphan (young ones wait for the grace period)."""
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    alice, _ = await member(db, 1001, coins=500, guild_id=GUILD)
    kept = f"characters/{GUILD}/c1/1.png"
    lost = f"characters/{GUILD}/c1/2.png"
    style = f"styles/{GUILD}/s1/1.png"
    stray = f"styles/{GUILD}/gone/1.png"
    for key in (kept, style, stray):
        await store.put(key, png(), "image/png")
    await db.execute(
        "INSERT INTO characters (id, guild_id, owner_id, created_by, name, name_key, refs, "
        "created_at) VALUES ('c1', ?, ?, ?, 'Zara', 'zara', ?, '2026-12-01T00:00:00Z')",
        (str(GUILD), alice.id, alice.id,
         f'[{{"key": "{kept}", "mime_type": "image/png"}}, '
         f'{{"key": "{lost}", "mime_type": "image/png"}}]'),
    )  # fmt: skip
    await db.execute(
        "INSERT INTO style_presets (id, guild_id, name, suffix, reference_keys, created_by, "
        "created_at) VALUES ('s1', ?, 'Ink', 'in ink', ?, ?, '2026-12-01T00:00:00Z')",
        (str(GUILD), f'["{style}"]', alice.id),
    )
    young = await run_fsck(db, store, repair=True)  # the default grace: a day
    assert [(f.check, f.subject) for f in young.left] == [(Check.MISSING, lost)]
    assert {kept, style, stray} <= set(await store.list())
    old = await run_fsck(db, store, repair=True, grace=timedelta(0))
    assert stray not in await store.list() and {kept, style} <= set(await store.list())
    assert [(f.check, f.subject) for f in old.left] == [(Check.MISSING, lost)]
