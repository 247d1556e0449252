"""Benchmark operating the bot: what a scrape of /metrics costs, and what a backup and a
restore of a storm-sized deployment take. Figures only.

    python -m bench.bench_operations

1. The reliability storm (160 operations, one process on SQLite, no kill) with /metrics on a
   port of its own, scraped every 0.25 s all along, and `python -m bot backup` run half-way:
   scrape latency (p50/p95/max, over HTTP, database reads included), the backup's time and
   size, and the restore of that backup into an empty deployment.
2. The deployment figures of a scrape (the database reads) at 1,000,000 images (the gallery
   database of bench_storage): p50/p95 of `Metrics.render`.

Nothing here asserts on time; figures also go to `bench/results/operations.json`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_storage import build_gallery
from bench.common import percentile
from bot.config import load_settings
from bot.operations import restore
from bot.services.backup import MANIFEST
from bot.services.metrics import Metrics, Sources
from storage.sqlite import SQLiteDatabase
from tests.reliability import scenario

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "operations.json"
SCRAPES = 50


async def storm_figures(workdir: Path) -> dict[str, Any]:
    dest = workdir / "backup"
    backup_seconds: list[float] = []

    async def during(env: dict[str, str]) -> None:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "backup", str(dest), env=env, cwd=str(scenario.ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        backup_seconds.append(time.perf_counter() - started)
        assert process.returncode == 0, err.decode()
        print(out.decode().strip().splitlines()[-1])

    live = workdir / "live"
    live.mkdir(parents=True)
    figures = await scenario.run(live, operations=160, seed=7, kills=0, metrics=True,
                                 during=during)  # fmt: skip
    scrape_seconds = figures.scrape_seconds
    manifest = json.loads((dest / MANIFEST).read_text())
    size = sum(f["size"] for f in [manifest["database"], *manifest["objects"]["files"]])
    target = load_settings(discord_token="t", database_path=workdir / "new" / "bot.db",
                           local_storage_dir=workdir / "new" / "objects")  # fmt: skip
    started = time.perf_counter()
    assert await restore(target, dest) == 0
    restore_seconds = time.perf_counter() - started
    result = {
        "storm_seconds": round(figures.seconds, 1),
        "images": manifest["database"]["images"],
        "objects": manifest["objects"]["count"],
        "backup_bytes": size,
        "backup_seconds": round(backup_seconds[0], 2),
        "restore_seconds": round(restore_seconds, 2),
        "scrapes": len(scrape_seconds),
        "scrape_ms_p50": round(percentile(scrape_seconds, 50) * 1000, 1),
        "scrape_ms_p95": round(percentile(scrape_seconds, 95) * 1000, 1),
        "scrape_ms_max": round(max(scrape_seconds) * 1000, 1),
    }
    print(
        f"\n1. Storm of 160 operations: {result['images']} images, {result['objects']} objects; "
        f"backup {size / 1e6:.1f} MB in {result['backup_seconds']} s (CLI, process start "
        f"included), restore {result['restore_seconds']} s; {result['scrapes']} scrapes of "
        f"/metrics: p50 {result['scrape_ms_p50']} ms, p95 {result['scrape_ms_p95']} ms, "
        f"max {result['scrape_ms_max']} ms"
    )
    return result


async def big_database_figures(workdir: Path) -> dict[str, Any]:
    gallery = await build_gallery(workdir)
    metrics = Metrics()
    async with SQLiteDatabase(gallery.path) as db:
        metrics.watch(Sources(database=db))
        await metrics.render()  # warm the page cache
        seconds = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            await metrics.render()
            seconds.append(time.perf_counter() - started)
    result = {
        "images": gallery.images,
        "render_ms_p50": round(percentile(seconds, 50) * 1000, 1),
        "render_ms_p95": round(percentile(seconds, 95) * 1000, 1),
    }
    print(
        f"\n2. A scrape's database reads at {gallery.images:,} images: p50 "
        f"{result['render_ms_p50']} ms, p95 {result['render_ms_p95']} ms"
    )
    return result


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        storm = await storm_figures(Path(folder) / "storm")
    with tempfile.TemporaryDirectory() as folder:
        big = await big_database_figures(Path(folder))
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps({"storm": storm, "million_images": big}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
