"""Backups of a running bot and their restore: the round trip on both databases and both kinds
of object store, a damaged backup and a deployment in use refused with one clear line, and
scheduled backups made by one process at a time, with retention."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.operations import backup, restore
from bot.services.backup import MANIFEST, BackupSchedule, DatabaseSource, take_backup
from bot.services.processes import ProcessLease
from storage.leases import LeaseRepository
from storage.objects import LocalObjectStore, S3ObjectStore
from storage.open import open_database
from storage.sqlite import SQLiteDatabase
from tests.cogs.conftest import Harness, make_harness, outcome, png
from tests.ops.restored import assert_restored, flip_a_byte
from tests.waiting import until


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Harness]:
    """A running bot with an image and an upload (SQLite, local folder)."""
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path / "live")
        await outcome(await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice))
        upload = await h.fake.slash("upload", {"image": h.fake.upload(png(), "u.png")},
                                    user=h.bob)  # fmt: skip
        await upload.wait_for(lambda r: any(not m.loading for m in r.messages), 15)
        # A character: its image lives under characters/, named by its row.
        saved = await h.fake.slash(
            "character save", {"name": "Zara", "image": h.fake.upload(png(), "z.png")},
            user=h.alice,
        )  # fmt: skip
        await saved.wait_original(timeout=15)
        await h.settle()
        yield h


def empty_deployment(tmp_path: Path, live: Settings, **overrides: object) -> Settings:
    return load_settings(**{
        **live.model_dump(), "database_path": tmp_path / "new" / "bot.db",
        "local_storage_dir": tmp_path / "new" / "objects", **overrides,
    })  # fmt: skip


async def test_a_backup_of_a_running_bot_restores_into_an_empty_deployment(
    running: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup"
    assert await backup(running.settings, dest) == 0
    manifest = json.loads((dest / MANIFEST).read_text())
    assert manifest["objects"]["count"] == len(await running.objects()) >= 3
    assert manifest["database"]["backend"] == "sqlite" and manifest["database"]["images"] == 2
    assert manifest["database"]["library"] == 1
    (character,) = [k for k in await running.objects() if k.startswith("characters/")]
    target = empty_deployment(tmp_path, running.settings)
    assert await restore(target, dest) == 0
    assert "restored the sqlite database" in capsys.readouterr().out
    async with SQLiteDatabase(target.database_path) as db:
        found = await assert_restored(db, LocalObjectStore(target.local_storage_dir))
        assert found == {"images": 2, "objects_checked": 4}  # images and their thumbnails
        restored = LocalObjectStore(target.local_storage_dir)
        assert await restored.get(character) == await running.app.store.get(character)
        assert await db.fetchval(
            "SELECT COUNT(*) FROM coin_transactions"
        ) == await running.app.db.fetchval("SELECT COUNT(*) FROM coin_transactions")


async def test_a_damaged_backup_is_refused_with_one_line(
    running: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup"
    assert await backup(running.settings, dest) == 0
    target = empty_deployment(tmp_path, running.settings)
    manifest = json.loads((dest / MANIFEST).read_text())
    victim = dest / "objects" / manifest["objects"]["files"][0]["key"]
    flip_a_byte(victim)
    capsys.readouterr()
    assert await restore(target, dest) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "is damaged" in err and manifest["objects"]["files"][0]["key"] in err
    assert "nothing restored" in err
    assert not target.database_path.exists() and not any(target.local_storage_dir.rglob("*"))
    flip_a_byte(victim)  # mended
    victim.unlink()
    assert await restore(target, dest) == 1
    assert "is missing" in capsys.readouterr().err
    (dest / MANIFEST).write_text((dest / MANIFEST).read_text()[:-40])  # cut short
    assert await restore(target, dest) == 1
    assert "manifest.json can't be read" in capsys.readouterr().err
    assert await restore(target, tmp_path) == 1
    assert "is not a backup" in capsys.readouterr().err


async def test_restore_refuses_a_deployment_in_use(
    running: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup"
    assert await backup(running.settings, dest) == 0
    before = await running.counts()
    capsys.readouterr()
    assert await restore(running.settings, dest) == 1
    err = capsys.readouterr().err
    assert "the deployment is not empty" in err and "nothing restored" in err
    assert await running.counts() == before
    # An empty database but a folder of images: refused too.
    target = empty_deployment(tmp_path, running.settings,
                              local_storage_dir=running.settings.local_storage_dir)  # fmt: skip
    assert await restore(target, dest) == 1
    assert "object store already holds" in capsys.readouterr().err
    assert await backup(running.settings, dest) == 1  # a backup never overwrites one
    assert "not empty" in capsys.readouterr().err


async def test_postgresql_and_s3_round_trip(
    pg_url: str, pg_server: object, s3_store: object, moto_server: str, tmp_path: Path
) -> None:
    """pg_dump of a live database and an S3 bucket's objects, restored into a fresh database
    and an empty bucket (the SQLite copy path into PostgreSQL too)."""
    from tests.conftest import fresh_database

    async with AsyncExitStack() as stack:
        h = await make_harness(
            stack, tmp_path / "live", database_url=pg_url, storage_backend="s3",
            s3_endpoint_url=moto_server, s3_bucket="nanobanana-test", s3_access_key_id="k",
            s3_secret_access_key="secret-key-for-moto",
        )  # fmt: skip
        await outcome(await h.fake.slash("generate", {"prompt": "a banana"}, user=h.alice))
        await h.settle()
        dest = tmp_path / "backup"
        assert await backup(h.settings, dest) == 0
        manifest = json.loads((dest / MANIFEST).read_text())
        assert manifest["database"]["file"].endswith(".pgdump")
        assert "pg_dump" in manifest["database"]["tools"]
        new_url = await stack.enter_async_context(fresh_database(pg_server))  # type: ignore[arg-type]
        target = load_settings(**{**h.settings.model_dump(), "database_url": new_url,
                                  "s3_bucket": "restored"})  # fmt: skip
        # An empty bucket of its own (created as the owner would, in the provider's console).
        bucket = S3ObjectStore(
            bucket="restored", endpoint_url=moto_server, access_key_id="k",
            secret_access_key="secret-key-for-moto", region="us-east-1",
        )  # fmt: skip
        await bucket.open()
        await bucket.ensure_bucket()
        try:
            assert await restore(target, dest) == 0
            async with open_database(url=new_url) as db:
                found = await assert_restored(db, bucket)
            assert found["images"] == 1 and found["objects_checked"] == 2
        finally:
            await bucket.close()


async def test_scheduled_backups_one_process_at_a_time_and_kept_few(tmp_path: Path) -> None:
    async with SQLiteDatabase(tmp_path / "bot.db") as db:
        await db.migrate()
        store = LocalObjectStore(tmp_path / "objects")
        await store.put("images/u/1.png", b"png", "image/png")  # no row: left out of backups
        now = [datetime(2026, 12, 7, 12, tzinfo=UTC)]
        leases = LeaseRepository(db)
        first, second = ProcessLease(leases), ProcessLease(leases)
        await first.start()
        await second.start()
        source = DatabaseSource(db, sqlite_path=tmp_path / "bot.db")
        folder = tmp_path / "backups"

        def schedule(process: ProcessLease) -> BackupSchedule:
            return BackupSchedule(
                lambda dest: take_backup(source, store, dest), database=db,
                holding=process.holding, folder=folder, every_hours=6, keep=2,
                clock=lambda: now[0],
            )  # fmt: skip

        a, b = schedule(first), schedule(second)
        try:
            made = await a.run_once()
            assert made is not None and made.objects == 0
            assert await b.run_once() is None  # not due: the other process made it
            async with first.holding("scheduled-backup"):
                now[0] += timedelta(hours=6)
                assert await b.run_once() is None  # due, but another process is at it
            for _ in range(3):
                assert await b.run_once() is not None
                now[0] += timedelta(hours=6)
            kept = sorted(p.name for p in folder.iterdir())
            assert kept == ["nanobanana-20261208T000000Z", "nanobanana-20261208T060000Z"]
        finally:
            await first.close()
            await second.close()


async def test_the_bot_backs_itself_up_when_told_to(tmp_path: Path) -> None:
    """BACKUP_DIR + BACKUP_EVERY_HOURS: the first backup is made at start (none was yet), and
    the database remembers it for the next start."""
    folder = tmp_path / "backups"
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path, backup_dir=str(folder), backup_every_hours=24)
        await until(lambda: any(folder.glob("nanobanana-*/manifest.json")), "a backup")

        async def recorded() -> bool:
            return await h.app.db.get_state("last_backup_at") is not None

        await until(recorded, "the backup recorded")
        assert h.app.backups is not None and not await h.app.backups.due()
