"""SQLite beside PostgreSQL through the same repositories, in one run. Figures only.

    python -m bench.bench_backends          (also section 4 of python -m bench.bench_storage)

1. Debits per second through `WalletRepository.debit`: one task awaiting each debit, and 50
   concurrent tasks, on a fresh database of each backend.
2. Gallery page latency (p50/p99) through `ImageRepository.list_by_user` at GALLERY_IMAGES
   images (a quarter of them one member's): the first page, and a page DEPTH rows deep by
   keyset (and by OFFSET, for contrast).

SQLite runs as the bot runs it (WAL, synchronous=NORMAL: a commit is not flushed to disk until
a checkpoint). PostgreSQL is a throwaway local server (needs the server binaries, as the tests
do) with its durable defaults (fsync, each commit flushed), and again with
`synchronous_commit=off`, the setting closest to SQLite's NORMAL. Both talk to the bot over
loopback on the same 2 cores, so the PostgreSQL figures include its client/server round trips.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import percentile
from storage.db import Database
from storage.images import _IMAGE_COLUMNS, ImageRepository
from storage.models import ImageType, TransactionKind
from storage.postgres import PostgresDatabase, PostgresTransaction
from storage.sqlite import SQLiteDatabase
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.pg_server import PostgresServer, PostgresUnavailable

DEBITS = 4000
TASKS = (1, 50)
GALLERY_IMAGES = 200_000
MAIN_EVERY = 4  # every 4th image is the main member's
DEPTH = 20_000
PAGE = 9
REPEATS = 200
WARMUP = 5
GUILD = "900000000000000001"
COLUMNS = [c.strip() for c in _IMAGE_COLUMNS.split(",")]


async def debits_per_second(db: Database, tasks: int) -> float:
    users, wallets = UserRepository(db), WalletRepository(db)
    ids = []
    for _ in range(tasks):
        user = await users.create()
        ids.append((await wallets.open(user.id, None, starter_coins=10**12)).wallet.id)
    per_task = DEBITS // tasks

    async def run(wallet_id: str) -> None:
        for _ in range(per_task):
            await wallets.debit(wallet_id, 1, kind=TransactionKind.GENERATION, reason="bench")

    started = time.perf_counter()
    await asyncio.gather(*(run(w) for w in ids))
    return per_task * tasks / (time.perf_counter() - started)


def gallery_rows(main_user: str, others: list[str]) -> list[tuple[Any, ...]]:
    rng = random.Random(7)
    rows = []
    for n in range(GALLERY_IMAGES):
        user = main_user if n % MAIN_EVERY == 0 else others[n % len(others)]
        stamp = f"2026-01-{1 + n // 10_000:02d}T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:" \
                f"{n % 60:02d}.{n % 1_000_000:06d}Z"  # fmt: skip
        key = f"images/{user}/{n}-banana.png"
        rows.append((
            str(uuid.UUID(int=rng.getrandbits(128), version=4)), user, "GENERATED",
            "COMPLETED", f"image {n}", None, "a banana", key, None, f"thumbnails/{key}", None,
            '{"width":1024,"height":1024}', 4, stamp, stamp, GUILD, None,
        ))  # fmt: skip
    return rows


async def load_gallery(db: Database, rows: list[tuple[Any, ...]], users: list[str]) -> None:
    """Bulk-load users and images: executemany on SQLite, COPY on PostgreSQL."""
    user_rows = [(u, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z") for u in users]

    async def load(tx: Any) -> None:
        if isinstance(tx, PostgresTransaction):
            await tx.connection.copy_records_to_table(
                "users", records=user_rows, columns=["id", "created_at", "updated_at"]
            )
            await tx.connection.copy_records_to_table("images", records=rows, columns=COLUMNS)
            return
        await tx.executemany(
            "INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?)", user_rows
        )
        await tx.executemany(
            f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({', '.join('?' * 17)})", rows
        )

    await db.write(load)
    await db.execute("ANALYZE")


async def timed(call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def gallery_latency(db: Database, main_user: str) -> dict[str, tuple[float, float]]:
    repo = ImageRepository(db)
    cursor = None
    page = None
    # Walk to DEPTH the way a member does (each page's cursor), then time that page.
    row = await db.fetchone(
        "SELECT created_at, id FROM images WHERE user_id = ? AND status = 'COMPLETED' "
        "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
        (main_user, DEPTH - 1),
    )
    assert row is not None
    from storage.cursors import encode_cursor

    cursor = encode_cursor(row["created_at"], row["id"])
    page = await repo.list_by_user(main_user, limit=PAGE, cursor=cursor)
    assert len(page.items) == PAGE
    offset_sql = (
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE user_id = ? AND status = 'COMPLETED' "
        "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    )
    cases = {
        "first page (keyset)": await timed(lambda: repo.list_by_user(main_user, limit=PAGE)),
        f"{DEPTH:,} deep (keyset)": await timed(
            lambda: repo.list_by_user(main_user, limit=PAGE, cursor=cursor)
        ),
        f"{DEPTH:,} deep, type filter (keyset)": await timed(
            lambda: repo.list_by_user(main_user, ImageType.GENERATED, limit=PAGE, cursor=cursor)
        ),
        f"{DEPTH:,} deep (OFFSET, contrast)": await timed(
            lambda: db.fetchall(offset_sql, (main_user, PAGE + 1, DEPTH))
        ),
    }
    return {k: (percentile(v, 50), percentile(v, 99)) for k, v in cases.items()}


async def bench_backends(workdir: Path) -> dict[str, Any]:
    """Print and return debits/s and gallery percentiles for each backend."""
    try:
        server = PostgresServer.start(durable=True)
    except PostgresUnavailable as error:
        print(f"\n4. PostgreSQL beside SQLite: skipped ({error})")
        return {"skipped": str(error)}
    results: dict[str, Any] = {"debits": {}, "gallery": {}}
    try:
        backends: list[tuple[str, Callable[[str], Database]]] = [
            ("SQLite (WAL, synchronous=NORMAL)", lambda n: SQLiteDatabase(workdir / f"{n}.db")),
            ("PostgreSQL 15 (defaults: fsync, synchronous_commit=on)",
             lambda n: PostgresDatabase(server.url(n))),
            ("PostgreSQL 15 (synchronous_commit=off)",
             lambda n: PostgresDatabase(server.url(n) + "&synchronous_commit=off")),
        ]  # fmt: skip
        for label, make in backends:
            for tasks in TASKS:
                name = f"debits_{abs(hash((label, tasks))) % 10**8}"
                if isinstance(make(name), PostgresDatabase):
                    await server.create_database(name)
                async with make(name) as db:
                    await db.migrate()
                    results["debits"][f"{label}|{tasks}"] = await debits_per_second(db, tasks)
        users = [str(uuid.uuid4()) for _ in range(101)]
        rows = gallery_rows(users[0], users[1:])
        for label, make in backends[:2]:
            name = f"gallery_{abs(hash(label)) % 10**8}"
            if isinstance(make(name), PostgresDatabase):
                await server.create_database(name)
            async with make(name) as db:
                await db.migrate()
                started = time.perf_counter()
                await load_gallery(db, rows, users)
                print(f"loaded {GALLERY_IMAGES:,} images into {label.split(' (')[0]} in "
                      f"{time.perf_counter() - started:.0f} s")  # fmt: skip
                results["gallery"][label] = await gallery_latency(db, users[0])
    finally:
        server.stop()
    print(f"\n4. PostgreSQL beside SQLite, same repositories ({DEBITS} debits; gallery of "
          f"{GALLERY_IMAGES:,} images, {GALLERY_IMAGES // MAIN_EVERY:,} of them one member's, "
          f"{REPEATS} reads per case)")  # fmt: skip
    print(f"{'backend':58} {'1 task':>10} {'50 tasks':>10}   debits/s")
    for label, _ in backends:
        one, many = (results["debits"][f"{label}|{t}"] for t in TASKS)
        print(f"{label:58} {one:10,.0f} {many:10,.0f}")
    for label, cases in results["gallery"].items():
        print(f"\ngallery on {label}: p50 / p99 ms")
        for case, (p50, p99) in cases.items():
            print(f"  {case:40} {p50:7.2f} / {p99:7.2f}")
    return results


async def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-backends-"))
    try:
        await bench_backends(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
