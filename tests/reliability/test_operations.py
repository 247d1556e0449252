"""Operating a bot under a storm: /metrics scraped all along agrees with the database at the
end (jobs completed, refunds, spend), and a backup taken half-way (the real `python -m bot
backup`, beside the running process) restores into an empty deployment with every wallet's
invariant holding and every image readable. On SQLite with a local folder, and on PostgreSQL
with S3 (moto)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.operations import restore
from bot.services.backup import MANIFEST, find_pg_tool
from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from storage.open import open_database
from tests.ops.restored import assert_restored
from tests.reliability.scenario import ROOT, Figures, run
from tests.reliability.scrape import total
from tests.reliability.test_reliability import assert_sound

S3 = {"S3_ACCESS_KEY_ID": "test-key", "S3_SECRET_ACCESS_KEY": "test-secret"}


def assert_metrics_agree(figures: Figures) -> None:
    """The counters of the last scrape (summed over the processes) are the database's."""
    m, db = figures.metrics, figures.database_counts
    assert figures.scrapes >= 10, figures.summary()
    assert total(m, "nanobanana_jobs_finished_total", outcome="completed") == db["jobs_completed"]
    assert total(m, "nanobanana_refunds_total") == db["refunds"] > 0
    assert total(m, "nanobanana_refunded_coins_total") == db["refunded_coins"]
    assert total(m, "nanobanana_spend_usd_total") == pytest.approx(db["spend_usd"], abs=1e-6)
    assert db["spend_usd"] > 0
    # The deployment's own figures, read from the database at the scrape.
    assert total(m, "nanobanana_deployment_refunds_total") == db["refunds"]
    assert total(m, "nanobanana_deployment_jobs", state="COMPLETED") == db["completed_rows"]
    assert total(m, "nanobanana_deployment_jobs", state="PENDING") == 0
    assert total(m, "nanobanana_interactions_total") > 0
    assert total(m, "nanobanana_first_answer_seconds_count") == total(
        m, "nanobanana_interactions_total"
    )
    assert total(m, "nanobanana_api_requests_total", status="200") > 0


async def backup_beside(env: dict[str, str], dest: Path) -> None:
    """`python -m bot backup DEST` in its own process, with the bot's settings."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "backup", str(dest), env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "backup " in out.decode()


async def test_storm_on_sqlite_metrics_agree_and_its_backup_restores(tmp_path: Path) -> None:
    dest = tmp_path / "backup"

    async def during(env: dict[str, str]) -> None:
        await backup_beside(env, dest)

    (tmp_path / "live").mkdir()
    figures = await run(tmp_path / "live", operations=96, seed=5, kills=0, metrics=True,
                        during=during)  # fmt: skip
    print(figures.summary())
    assert_sound(figures)
    assert_metrics_agree(figures)
    settings = load_settings(
        discord_token="t", database_path=tmp_path / "new" / "bot.db",
        local_storage_dir=tmp_path / "new" / "objects",
    )  # fmt: skip
    await assert_restores(dest, settings, LocalObjectStore(settings.local_storage_dir))


async def test_storm_on_postgresql_and_s3_metrics_agree_and_its_backup_restores(
    tmp_path: Path, pg_url: str, pg_server: object, moto_server: str, s3_store: S3ObjectStore
) -> None:
    if find_pg_tool("pg_dump") is None or find_pg_tool("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not found: apt-get install postgresql-client-15")
    from tests.conftest import fresh_database

    dest = tmp_path / "backup"

    async def during(env: dict[str, str]) -> None:
        await backup_beside(env, dest)

    storage = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": moto_server,
               "S3_BUCKET": s3_store.bucket, **S3}  # fmt: skip
    (tmp_path / "live").mkdir()
    figures = await run(
        tmp_path / "live", operations=64, seed=6, kills=0, metrics=True, during=during,
        database_url=pg_url, storage_env=storage, store=s3_store,
    )  # fmt: skip
    print(figures.summary())
    assert_sound(figures)
    assert_metrics_agree(figures)
    bucket = S3ObjectStore(bucket="restored", endpoint_url=moto_server, region="us-east-1",
                           access_key_id="test-key", secret_access_key="test-secret")  # fmt: skip
    await bucket.open()
    try:
        await bucket.ensure_bucket()
        async with fresh_database(pg_server) as new_url:  # type: ignore[arg-type]
            settings = load_settings(
                discord_token="t", database_url=new_url,
                **{k.lower(): v for k, v in {**storage, "S3_BUCKET": "restored"}.items()},
            )  # fmt: skip
            await assert_restores(dest, settings, bucket)
    finally:
        await bucket.close()


async def assert_restores(dest: Path, settings: object, store: ObjectStore) -> None:
    from bot.config import Settings

    assert isinstance(settings, Settings)
    manifest = json.loads((dest / MANIFEST).read_text())
    assert await restore(settings, dest) == 0
    async with open_database(url=settings.postgres_url, path=settings.database_path) as db:
        found = await assert_restored(db, store)
        assert found["images"] == manifest["database"]["images"] - len(
            manifest["deleted_during_backup"]
        )
        assert found["objects_checked"] > 0
        print("restored:", found, "objects in backup:", manifest["objects"]["count"])
