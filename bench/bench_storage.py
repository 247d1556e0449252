"""Benchmark the storage layer against real SQLite files and a real (moto) S3. Figures only.

    python -m bench.bench_storage

1. Debits per second through `WalletRepository.debit` (sequential, and 50 concurrent tasks)
   beside stdlib `sqlite3` running the same guarded UPDATE + ledger INSERT in
   `BEGIN IMMEDIATE ... COMMIT`, each on a fresh database file. Aim: repository/raw >= 0.5.
2. Gallery page latency (p50/p99) through `ImageRepository.list_by_user` at 1,000,000 images
   (100,000 for one user): first page, a page 50,000 rows deep by keyset, and the same depth by
   OFFSET through the same reader connection; also with the type filter. Aim: keyset p99 < 5 ms.
3. Object store throughput: 1 MiB objects put then read back on `LocalObjectStore` and on
   `S3ObjectStore` against moto's `ThreadedMotoServer`, sequential and 8 concurrent tasks.
4. PostgreSQL beside SQLite through the same repositories: debits/s and gallery page p99
   (bench/bench_backends.py; skipped without the PostgreSQL server binaries).

Nothing here asserts on time. Temporary files are removed; figures also go to
`bench/results/storage.json`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import platform
import queue
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bench_backends import bench_backends
from bench.common import moto_s3_store, percentile
from storage.cursors import decode_cursor, encode_cursor
from storage.db import Database
from storage.images import _IMAGE_COLUMNS, ImageRepository
from storage.models import ImageStatus, ImageType, TransactionKind
from storage.objects import LocalObjectStore, ObjectStore
from storage.sqlite import SQLiteDatabase
from storage.timeutil import utcnow_iso
from storage.users import UserRepository
from storage.wallets import WalletRepository

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "storage.json"
MiB = 1024 * 1024

# Section 1: debits.
DEBITS = 4000
DEBIT_TASKS = 50

# Section 2: gallery.
TOTAL_IMAGES = 1_000_000
MAIN_USER_IMAGES = 100_000
OTHER_USERS = 900
GENERATED_SHARE = 0.7
LOAD_CHUNK = 100_000
PAGE_SIZE = 9
DEPTH = 50_000
REPEATS = 200
WARMUP = 5
BASE_TIME = datetime(2026, 1, 1)  # naive UTC
STEP = timedelta(seconds=7, microseconds=345_678)  # 1M steps span about 85 days

# Section 3: objects.
OBJECTS = 100
OBJECT_MIB = 1  # size of each object
OBJECT_TASKS = 8

DEBIT_SQL = (
    "UPDATE wallets SET coins = coins - ?, updated_at = ? WHERE id = ? AND coins >= ? "
    "RETURNING coins, user_id"
)
LEDGER_SQL = (
    "INSERT INTO coin_transactions (id, wallet_id, user_id, delta, balance_after, kind, "
    "image_id, actor_id, reason, created_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
USER_SQL = (
    "INSERT INTO users (id, discord_id, display_name, roles, language, created_at, "
    "updated_at) VALUES (?, ?, ?, '[\"USER\"]', 'en', ?, ?)"
)
IMAGE_SQL = f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({', '.join('?' * 17)})"
# Every benchmark image is in one server (the gallery of a member in a server).
GUILD_ID = "900000000000000001"
PROMPTS = (
    "a banana wearing sunglasses on a beach at sunset, photorealistic",
    "isometric pixel art of a cosy library with a cat asleep on the desk",
    "watercolour fox in a snowy forest, soft light, children's book style",
    "a retro-futuristic city skyline at night with neon reflections in the rain",
)
IMAGE_METADATA = '{"width":1024,"height":1024,"mime_type":"image/png","model":"nano-banana"}'


# Shared helpers ---------------------------------------------------------------------------


def machine_line() -> str:
    """One line naming the machine the figures come from."""
    return (
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print an aligned table: first column left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    print(f"\n{title}")
    print(line(headers))
    print("-" * len(line(headers)))
    for row in rows:
        print(line(row))


async def migrated_database(path: Path) -> Database:
    """Open and migrate a database file; the caller closes it."""
    db = SQLiteDatabase(path)
    await db.connect()
    await db.migrate()
    return db


def raw_connection(path: Path) -> sqlite3.Connection:
    """A stdlib connection with the pragmas `Database` uses, in autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


# Section 1: debits ------------------------------------------------------------------------


@dataclass(frozen=True)
class DebitRow:
    """Debits per second for one way of doing them."""

    label: str
    debits: int
    tasks: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.debits / self.seconds


async def funded_wallets(path: Path, count: int) -> tuple[Database, WalletRepository, list[str]]:
    """A fresh migrated database with `count` wallets rich enough for every debit."""
    db = await migrated_database(path)
    users, wallets = UserRepository(db), WalletRepository(db)
    ids = []
    for _ in range(count):
        user = await users.create()
        ids.append((await wallets.open(user.id, None, starter_coins=10**12)).wallet.id)
    return db, wallets, ids


async def repository_debits(path: Path, debits: int, tasks: int) -> DebitRow:
    """`debits` calls to `WalletRepository.debit`, split over `tasks` concurrent tasks."""
    db, wallets, ids = await funded_wallets(path, tasks)
    per_task = debits // tasks

    async def run(wallet_id: str) -> None:
        for _ in range(per_task):
            await wallets.debit(wallet_id, 1, kind=TransactionKind.GENERATION, reason="bench")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(run(wallet_id) for wallet_id in ids))
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    return DebitRow("WalletRepository.debit", per_task * tasks, tasks, elapsed)


async def raw_debits(path: Path, debits: int) -> DebitRow:
    """The same statements as `ledger.debit` through stdlib sqlite3, one transaction each."""
    db, _wallets, ids = await funded_wallets(path, 1)
    await db.close()
    wallet_id = ids[0]
    conn = raw_connection(path)
    try:
        started = time.perf_counter()
        for _ in range(debits):
            now = utcnow_iso()
            conn.execute("BEGIN IMMEDIATE")
            balance, user_id = conn.execute(DEBIT_SQL, (1, now, wallet_id, 1)).fetchone()
            conn.execute(
                LEDGER_SQL,
                (str(uuid.uuid4()), wallet_id, user_id, -1, balance, "GENERATION", None, None,
                 "bench", now, None),
            )  # fmt: skip
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return DebitRow("stdlib sqlite3 (same SQL)", debits, 1, elapsed)


async def round_trip_us(path: Path, calls: int) -> tuple[float, float]:
    """Microseconds per `Database.fetchval("SELECT 1")` and per stdlib `SELECT 1`.

    The first is one trip to the reader connection's thread, so it shows what a trip to that
    thread costs compared with the SQL itself.
    """
    db = await migrated_database(path)
    try:
        samples = await timed(lambda: db.fetchval("SELECT 1"), calls)
    finally:
        await db.close()
    conn = raw_connection(path)
    try:
        raw = timed_sync(lambda: conn.execute("SELECT 1").fetchone(), calls)
    finally:
        conn.close()
    return statistics.mean(samples) * 1000, statistics.mean(raw) * 1000


async def bench_debits(workdir: Path) -> dict[str, Any]:
    """Section 1: print and return debit rates and the repository/raw ratios."""
    raw = await raw_debits(workdir / "debit-raw.db", DEBITS)
    sequential = await repository_debits(workdir / "debit-seq.db", DEBITS, 1)
    concurrent = await repository_debits(workdir / "debit-conc.db", DEBITS, DEBIT_TASKS)
    aio_us, raw_us = await round_trip_us(workdir / "round-trip.db", DEBITS)
    rows = [raw, sequential, concurrent]
    print_table(
        f"1. Debits (guarded UPDATE + ledger INSERT per transaction), fresh DB file each, "
        f"{DEBITS} debits. Aim: ratio >= 0.5",
        ["path", "tasks", "debits", "seconds", "debits/s", "ratio vs raw"],
        [
            [
                r.label,
                str(r.tasks),
                str(r.debits),
                f"{r.seconds:.2f}",
                f"{r.per_second:,.0f}",
                f"{r.per_second / raw.per_second:.2f}",
            ]
            for r in rows
        ],
    )
    print(
        f"Round trip for comparison: Database.fetchval('SELECT 1') {aio_us:.0f} us "
        f"(one trip to the reader thread) vs stdlib sqlite3 {raw_us:.1f} us. "
        "A debit is one such trip; concurrent debits share trips and commits (group commit)."
    )
    return {
        "rows": [{**asdict(r), "per_second": r.per_second} for r in rows],
        "select1_round_trip_us": {"database_fetchval": aio_us, "stdlib": raw_us},
        "ratio_sequential": sequential.per_second / raw.per_second,
        "ratio_concurrent": concurrent.per_second / raw.per_second,
    }


# Section 2: gallery -----------------------------------------------------------------------


@dataclass(frozen=True)
class Gallery:
    """The bulk-loaded gallery database and what the measurements need from it."""

    path: Path
    main_user: str
    images: int
    main_images: int
    load_seconds: float
    analyze_seconds: float


def uuid4_text(rng: random.Random) -> str:
    """A random version-4 UUID string, about twice as fast as `str(uuid.uuid4())`."""
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def iso_text(moment: datetime) -> str:
    """`storage.timeutil.to_iso` for a naive UTC datetime, without the slower strftime."""
    return moment.isoformat(timespec="microseconds") + "Z"


def image_rows(
    main_user: str, others: Sequence[str], total: int, main_every: int
) -> Iterator[tuple[Any, ...]]:
    """Image rows, oldest first; every `main_every`-th belongs to the main user."""
    rng = random.Random(42)
    moment = BASE_TIME
    for n in range(total):
        user_id = main_user if n % main_every == 0 else others[n % len(others)]
        created = iso_text(moment)
        moment += STEP
        generated = rng.random() < GENERATED_SHARE
        epoch_ms = n * 7345  # any increasing value: the key only needs to look real
        key = f"images/{user_id}/{epoch_ms}-banana-{n:06x}.png"
        yield (
            uuid4_text(rng),
            user_id,
            "GENERATED" if generated else "UPLOADED",
            "COMPLETED",
            f"image {n}",
            None,
            PROMPTS[n % len(PROMPTS)] if generated else None,
            key,
            f"https://cdn.example.test/{key}",
            f"thumbnails/{key}",
            f"https://cdn.example.test/thumbnails/{key}",
            IMAGE_METADATA,
            4 if generated else 0,
            created,
            created,
            GUILD_ID,
            None,
        )


def produce_chunks(rows: Iterator[tuple[Any, ...]], out: queue.Queue[list[Any] | None]) -> None:
    """Put lists of LOAD_CHUNK rows on `out`, then None (runs in its own thread)."""
    try:
        while chunk := list(itertools.islice(rows, LOAD_CHUNK)):
            out.put(chunk)
    finally:
        out.put(None)


def bulk_load(path: Path, main_user: str, others: Sequence[str]) -> tuple[int, int]:
    """Insert users and images with executemany in big transactions; returns (images, main).

    Rows are generated in a second thread while this one inserts (sqlite3 releases the GIL
    inside SQLite), so the two cores overlap.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    # Loading only: no fsyncs, the rollback journal in memory instead of the WAL (so pages
    # are written once, not to the WAL and again at checkpoint), a big page cache.
    conn.execute("PRAGMA journal_mode=MEMORY")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")  # 1 GiB
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        now = iso_text(BASE_TIME)
        users = [
            (u, str(10**17 + n), f"user {n}", now, now) for n, u in enumerate([main_user, *others])
        ]
        conn.execute("BEGIN")
        conn.executemany(USER_SQL, users)
        conn.execute("COMMIT")
        chunks: queue.Queue[list[Any] | None] = queue.Queue(maxsize=2)
        rows = image_rows(main_user, others, TOTAL_IMAGES, TOTAL_IMAGES // MAIN_USER_IMAGES)
        producer = threading.Thread(target=produce_chunks, args=(rows, chunks), daemon=True)
        producer.start()
        while (chunk := chunks.get()) is not None:
            conn.execute("BEGIN")
            conn.executemany(IMAGE_SQL, chunk)
            conn.execute("COMMIT")
        producer.join()
        # The gallery counters, as the repository keeps them (0006_gallery_counters).
        conn.execute(
            "INSERT INTO gallery_counts (user_id, guild_id, type, count) "
            "SELECT user_id, COALESCE(guild_id, ''), type, COUNT(*) FROM images "
            "WHERE status = 'COMPLETED' GROUP BY 1, 2, 3"
        )
        conn.execute("PRAGMA journal_mode=WAL")  # as Database leaves it
        images, main = conn.execute(
            "SELECT COUNT(*), SUM(user_id = ?) FROM images", (main_user,)
        ).fetchone()
    finally:
        conn.close()
    return int(images), int(main)


def analyze(path: Path) -> None:
    """Gather planner statistics, as a maintained production database would have."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def build_gallery(workdir: Path) -> Gallery:
    """Create the schema through `Database`, then bulk load 1M images with stdlib sqlite3."""
    path = workdir / "gallery.db"
    db = await migrated_database(path)
    await db.close()
    main_user = str(uuid.uuid4())
    others = [str(uuid.uuid4()) for _ in range(OTHER_USERS)]
    started = time.perf_counter()
    images, main = await asyncio.to_thread(bulk_load, path, main_user, others)
    loaded = time.perf_counter()
    await asyncio.to_thread(analyze, path)
    analyzed = time.perf_counter()
    size_mib = path.stat().st_size / MiB
    print(
        f"\n2. Gallery: loaded {images:,} images ({main:,} for one user, the rest over "
        f"{OTHER_USERS} users) in {loaded - started:.1f} s, ANALYZE {analyzed - loaded:.1f} s, "
        f"file {size_mib:,.0f} MiB"
    )
    return Gallery(path, main_user, images, main, loaded - started, analyzed - loaded)


def keyset_sql(with_type: bool) -> str:
    """The SQL `ImageRepository._page` builds for a later page of `list_by_user`."""
    type_clause = " AND type = ?" if with_type else ""
    return (
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE user_id = ?{type_clause} AND status = ? "
        "AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
    )


def offset_sql(with_type: bool) -> str:
    """The OFFSET equivalent: same filter and order, `limit + 1` rows as the repository asks."""
    type_clause = " AND type = ?" if with_type else ""
    return (
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE user_id = ?{type_clause} AND status = ? "
        "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    )


def filter_params(user_id: str, image_type: ImageType | None) -> list[Any]:
    """Parameters for the WHERE clause in the order the SQL above expects them."""
    params: list[Any] = [user_id]
    if image_type is not None:
        params.append(image_type.value)
    params.append(ImageStatus.COMPLETED.value)
    return params


async def timed(call: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    """Milliseconds per call, after a few untimed warm-up calls."""
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def timed_sync(call: Callable[[], Any], repeats: int) -> list[float]:
    """`timed` for a blocking call."""
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def depth_cursor(db: Database, user_id: str, image_type: ImageType | None) -> str:
    """The cursor a reader holds after paging through DEPTH rows (encoded as the repo does)."""
    row = await db.fetchone(
        f"SELECT created_at, id FROM ({offset_sql(image_type is not None)})",
        (*filter_params(user_id, image_type), 1, DEPTH - 1),
    )
    if row is None:
        raise RuntimeError(f"fewer than {DEPTH} rows for the deep page")
    return encode_cursor(row["created_at"], row["id"])


async def gallery_cases(
    db: Database, gallery: Gallery, image_type: ImageType | None
) -> list[tuple[str, list[float]]]:
    """Latency samples for first page, deep keyset page, deep OFFSET page, raw keyset SQL."""
    repo = ImageRepository(db)
    user_id = gallery.main_user
    cursor = await depth_cursor(db, user_id, image_type)
    params = filter_params(user_id, image_type)
    deep_keyset = await repo.list_by_user(user_id, image_type, limit=PAGE_SIZE, cursor=cursor)
    deep_offset = await db.fetchall(
        offset_sql(image_type is not None), (*params, PAGE_SIZE + 1, DEPTH)
    )
    if [i.id for i in deep_keyset.items] != [r["id"] for r in deep_offset[:PAGE_SIZE]]:
        raise RuntimeError("keyset and OFFSET disagree on the deep page")

    first = await timed(lambda: repo.list_by_user(user_id, image_type, limit=PAGE_SIZE), REPEATS)
    keyset = await timed(
        lambda: repo.list_by_user(user_id, image_type, limit=PAGE_SIZE, cursor=cursor), REPEATS
    )
    offset = await timed(
        lambda: db.fetchall(offset_sql(image_type is not None), (*params, PAGE_SIZE + 1, DEPTH)),
        REPEATS,
    )
    guild = int(GUILD_ID)
    total = await timed(lambda: repo.count_by_user(user_id, image_type, guild_id=guild), REPEATS)

    async def view_page() -> None:
        # What a gallery page shows: its rows (keyset) and the member's total in the server.
        await repo.list_by_user(user_id, image_type, limit=PAGE_SIZE, cursor=cursor,
                                guild_id=guild)  # fmt: skip
        await repo.count_by_user(user_id, image_type, guild_id=guild)

    page = await timed(view_page, REPEATS)
    where = "user_id = ? AND guild_id = ? AND status = 'COMPLETED'" + (
        " AND type = ?" if image_type is not None else ""
    )
    count_params = [user_id, GUILD_ID, *([image_type.value] if image_type else [])]
    counted = await timed(
        lambda: db.fetchval(f"SELECT COUNT(*) FROM images WHERE {where}", count_params),
        max(10, REPEATS // 10),
    )
    raw = sqlite3.connect(gallery.path)
    try:
        last = decode_cursor(cursor)
        raw_keyset = timed_sync(
            lambda: raw.execute(
                keyset_sql(image_type is not None), (*params, *last, PAGE_SIZE + 1)
            ).fetchall(),
            REPEATS,
        )
    finally:
        raw.close()
    depth = f"{DEPTH:,} deep"
    return [
        ("first page, list_by_user", first),
        (f"{depth}, list_by_user keyset", keyset),
        (f"{depth}, OFFSET via db.fetchall", offset),
        (f"{depth}, keyset SQL in stdlib sqlite3", raw_keyset),
        ("total, count_by_user (gallery counters)", total),
        (f"{depth}: rows + total, as the view shows a page", page),
        ("total by COUNT(*) (before the counters)", counted),
    ]


async def print_query_plans(db: Database, user_id: str) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of the keyset queries, so a reader sees which index is used."""
    plans: dict[str, list[str]] = {}
    for with_type in (False, True):
        params = filter_params(user_id, ImageType.GENERATED if with_type else None)
        rows = await db.fetchall(
            f"EXPLAIN QUERY PLAN {keyset_sql(with_type)}",
            (*params, "2026-02-01T00:00:00.000000Z", "", PAGE_SIZE + 1),
        )
        label = "keyset, type=GENERATED" if with_type else "keyset"
        plans[label] = [str(r["detail"]) for r in rows]
        print(f"EXPLAIN QUERY PLAN ({label}): " + "; ".join(plans[label]))
    return plans


async def bench_gallery(workdir: Path) -> dict[str, Any]:
    """Section 2: build the gallery, print plans and latency percentiles."""
    gallery = await build_gallery(workdir)
    db = SQLiteDatabase(gallery.path)
    await db.connect()
    try:
        plans = await print_query_plans(db, gallery.main_user)
        results: list[dict[str, Any]] = []
        for image_type in (None, ImageType.GENERATED):
            for label, samples in await gallery_cases(db, gallery, image_type):
                results.append(
                    {
                        "case": label,
                        "filter": f"type={image_type.value}" if image_type else "all types",
                        "repeats": len(samples),
                        "p50_ms": percentile(samples, 50),
                        "p99_ms": percentile(samples, 99),
                    }
                )
    finally:
        await db.close()
    print_table(
        f"Page latency, limit={PAGE_SIZE} (the repository fetches {PAGE_SIZE + 1}), "
        f"{REPEATS} repeats each (COUNT(*): {max(10, REPEATS // 10)}). Aim: a page (rows + "
        "total) p99 < 5 ms",
        ["case", "filter", "p50 ms", "p99 ms"],
        [[r["case"], r["filter"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}"] for r in results],
    )
    return {
        "images": gallery.images,
        "main_user_images": gallery.main_images,
        "load_seconds": gallery.load_seconds,
        "analyze_seconds": gallery.analyze_seconds,
        "query_plans": plans,
        "latency": results,
    }


# Section 3: objects -----------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRow:
    """Put or get throughput of one store at one concurrency."""

    store: str
    operation: str
    tasks: int
    objects: int
    seconds: float

    @property
    def ops_per_second(self) -> float:
        return self.objects / self.seconds

    @property
    def mib_per_second(self) -> float:
        return self.objects * OBJECT_MIB / self.seconds


async def run_limited(calls: Sequence[Callable[[], Awaitable[Any]]], tasks: int) -> float:
    """Run the calls with at most `tasks` in flight; returns the wall time in seconds."""
    semaphore = asyncio.Semaphore(tasks)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with semaphore:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return time.perf_counter() - started


async def store_throughput(
    name: str, store: ObjectStore, payloads: Sequence[bytes], tasks: int
) -> list[ObjectRow]:
    """Put every payload, then read each back (checked), then delete them untimed."""
    prefix = f"bench/{tasks}-{uuid.uuid4().hex[:8]}"
    keys = [f"{prefix}/{n:04d}.bin" for n in range(len(payloads))]
    received: dict[str, bytes] = {}

    def putter(key: str, data: bytes) -> Callable[[], Awaitable[None]]:
        return lambda: store.put(key, data, "application/octet-stream")

    def getter(key: str) -> Callable[[], Awaitable[None]]:
        async def get() -> None:
            received[key] = await store.get(key)

        return get

    put_seconds = await run_limited(
        [putter(k, d) for k, d in zip(keys, payloads, strict=True)], tasks
    )
    get_seconds = await run_limited([getter(k) for k in keys], tasks)
    if any(received[k] != d for k, d in zip(keys, payloads, strict=True)):
        raise RuntimeError(f"{name}: an object read back differs from what was written")
    await asyncio.gather(*(store.delete(k) for k in keys))
    return [
        ObjectRow(name, "put", tasks, len(keys), put_seconds),
        ObjectRow(name, "get", tasks, len(keys), get_seconds),
    ]


async def local_rows(workdir: Path, payloads: Sequence[bytes]) -> list[ObjectRow]:
    """LocalObjectStore in a temporary folder (fsync on every put, as in production)."""
    store = LocalObjectStore(workdir / "objects")
    await store.open()
    rows: list[ObjectRow] = []
    for tasks in (1, OBJECT_TASKS):
        rows += await store_throughput("LocalObjectStore", store, payloads, tasks)
    await store.close()
    return rows


async def s3_rows(payloads: Sequence[bytes]) -> list[ObjectRow]:
    """S3ObjectStore against moto's threaded server on 127.0.0.1 (same process, same GIL)."""
    async with moto_s3_store() as store:
        await store.put("bench/warm-up.bin", b"x", "application/octet-stream")
        rows: list[ObjectRow] = []
        for tasks in (1, OBJECT_TASKS):
            rows += await store_throughput("S3ObjectStore (moto)", store, payloads, tasks)
    return rows


async def bench_objects(workdir: Path) -> dict[str, Any]:
    """Section 3: print and return object store throughput."""
    payloads = [random.randbytes(OBJECT_MIB * MiB) for _ in range(OBJECTS)]
    rows = await local_rows(workdir, payloads) + await s3_rows(payloads)
    print_table(
        f"3. Object stores: {OBJECTS} random 1 MiB objects put, then read back",
        ["store", "op", "tasks", "objects", "seconds", "ops/s", "MiB/s"],
        [
            [
                r.store,
                r.operation,
                str(r.tasks),
                str(r.objects),
                f"{r.seconds:.2f}",
                f"{r.ops_per_second:,.1f}",
                f"{r.mib_per_second:,.1f}",
            ]
            for r in rows
        ],
    )
    return {
        "rows": [
            {**asdict(r), "ops_per_second": r.ops_per_second, "mib_per_second": r.mib_per_second}
            for r in rows
        ]
    }


# Main -------------------------------------------------------------------------------------


def write_results(results: dict[str, Any]) -> None:
    """Save the figures as JSON next to the other benchmarks' results."""
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


async def main() -> None:
    """Run the three sections in a temporary folder that is removed afterwards."""
    started = time.perf_counter()
    print("Storage benchmark (figures only, no assertions on time)")
    print(machine_line())
    workdir = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        results: dict[str, Any] = {
            "machine": {
                "cpu_count": os.cpu_count(),
                "python": sys.version.split()[0],
                "sqlite": sqlite3.sqlite_version,
                "platform": platform.platform(),
            },
            "debits": await bench_debits(workdir),
            "gallery": await bench_gallery(workdir),
            "objects": await bench_objects(workdir),
            "backends": await bench_backends(workdir),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_seconds"] = time.perf_counter() - started
    write_results(results)
    print(f"\nTotal {results['total_seconds']:.0f} s; figures written to {RESULTS_PATH}")


if __name__ == "__main__":
    asyncio.run(main())
