"""What the bot benchmarks share: the bot and the fake API in processes of their own (or, for
comparison, in the benchmark's own process), RSS and CPU of the bot's process sampled from
outside, and a fake Discord world.

The driver (the benchmark's process) runs the fake Discord itself: it sends the interactions
and keeps every stamp. `time.monotonic()` is one clock for every process on Linux, so the
bot's step marks, the fake API's arrival times and the fake Discord's stamps line up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import psutil

from bench.bot_process import LoopLag, gallery_timing
from bot.app import NanoBananaBot
from bot.config import Settings, load_settings
from storage.cursors import encode_cursor
from storage.sqlite import SQLiteDatabase
from storage.timeutil import to_iso, utcnow
from tests.fakes.discord_server import FakeDiscord, running_bot
from tests.fakes.nanobanana_server import FakeNanobanana

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 180.0


# ------------------------------------------------------------------------------ the fake API


class FakeAPI(Protocol):
    @property
    def base_url(self) -> str: ...

    async def requests(self) -> list[dict[str, Any]]: ...

    async def clear(self) -> None: ...


@dataclass
class InProcessAPI:
    """FakeNanobanana in the driver's own loop (the old, mixed measurement)."""

    fake: FakeNanobanana

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    async def requests(self) -> list[dict[str, Any]]:
        return [
            {"prompt": r.prompt, "received_monotonic": r.received_monotonic,
             "handler_seconds": r.handler_seconds, "status": r.status}
            for r in self.fake.requests
        ]  # fmt: skip

    async def clear(self) -> None:
        self.fake.requests.clear()


@dataclass
class ProcessAPI:
    """`python -m tests.fakes.nanobanana_server` in a process of its own."""

    base_url: str
    process: asyncio.subprocess.Process
    http: aiohttp.ClientSession

    async def requests(self) -> list[dict[str, Any]]:
        async with self.http.get(f"{self.base_url}/_fake/requests") as response:
            rows: list[dict[str, Any]] = await response.json()
            return rows

    async def clear(self) -> None:
        async with self.http.delete(f"{self.base_url}/_fake/requests"):
            pass


@contextlib.asynccontextmanager
async def fake_api(*, latency: float, image_size: int, in_process: bool) -> AsyncIterator[FakeAPI]:
    if in_process:
        async with FakeNanobanana(image_size=image_size, latency=latency) as fake:
            yield InProcessAPI(fake)
        return
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.nanobanana_server", "--port", "0",
        "--latency", str(latency), "--image-size", str(image_size),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        async with aiohttp.ClientSession() as http:
            yield ProcessAPI(url, process, http)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()


async def probe_api(base_url: str, count: int = 5) -> list[float]:
    """The fake API's real answer time, from a client: `count` calls one after another,
    request sent to the whole body read (its L, plus building and sending ~7 MB)."""
    url = f"{base_url}/v1beta/models/gemini-nano-banana-2.1:generateContent"
    body = {"contents": [{"parts": [{"text": "probe"}]}],
            "generationConfig": {"responseModalities": ["IMAGE"]}}  # fmt: skip
    times = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            started = time.monotonic()
            async with http.post(url, json=body, headers={"x-goog-api-key": "probe"}) as answer:
                await answer.read()
            times.append(time.monotonic() - started)
    return times


# ------------------------------------------------------------------------------ the bot


class BotHandle(Protocol):
    pid: int

    async def marks(self) -> list[dict[str, Any]]: ...

    async def lag_start(self) -> None: ...

    async def lag(self) -> list[float]: ...

    async def stats(self) -> dict[str, Any]: ...

    async def gallery(self, body: Mapping[str, Any]) -> dict[str, Any]: ...


def bot_environment(settings: Mapping[str, Any]) -> dict[str, str]:
    """Settings as the environment variables `python -m bot` reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "GEMINI_"))}
    for name, value in settings.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        env[name.upper()] = str(value)
    return env


@dataclass
class ProcessBot:
    """`python -m bench.bot_process`: the bot alone in its own process."""

    process: asyncio.subprocess.Process
    control: str
    http: aiohttp.ClientSession
    pid: int = 0

    async def _get(self, path: str) -> Any:
        async with self.http.get(f"{self.control}{path}") as response:
            return await response.json()

    async def marks(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self._get("/marks")
        return rows

    async def lag_start(self) -> None:
        async with self.http.post(f"{self.control}/lag"):
            pass

    async def lag(self) -> list[float]:
        samples: list[float] = await self._get("/lag")
        return samples

    async def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = await self._get("/stats")
        return found

    async def gallery(self, body: Mapping[str, Any]) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=600)
        async with self.http.post(f"{self.control}/gallery", json=body, timeout=timeout) as r:
            found: dict[str, Any] = await r.json()
            return found


@dataclass
class InProcessBot:
    """The bot in the driver's own loop, as bench_bot measured it before (`--in-process`)."""

    bot: NanoBananaBot
    lagger: LoopLag = field(default_factory=LoopLag)
    pid: int = field(default_factory=os.getpid)
    _task: asyncio.Task[None] | None = None

    async def marks(self) -> list[dict[str, Any]]:
        return [{"id": i, "prompt": p, "marks": m} for i, p, m in self.bot.generation.recent_marks]

    async def lag_start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.lagger.run())
        self.lagger.samples = []

    async def lag(self) -> list[float]:
        return list(self.lagger.samples)

    async def stats(self) -> dict[str, Any]:
        return {"images_refused": self.bot.imagework.refused,
                "limits_refused": self.bot.limits.refused,
                "jobs_running": self.bot.generation.running,
                "jobs_waiting": self.bot.generation.queue_length}  # fmt: skip

    async def gallery(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await gallery_timing(self.bot, dict(body))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord,
    settings: Mapping[str, Any],
    *,
    in_process: bool,
    loop: str = "auto",
    orjson: bool = True,
) -> AsyncIterator[BotHandle]:
    """The bot with these settings, logged in to `fake` and ready, until the block ends."""
    if in_process:
        bot = NanoBananaBot(load_settings(_env_file=None, **settings), guild_ready_timeout=0)
        async with running_bot(fake, bot, timeout=READY_TIMEOUT):
            handle = InProcessBot(bot)
            try:
                yield handle
            finally:
                handle.stop()
        return
    args = ["--discord", fake.base_url, "--loop", loop, *([] if orjson else ["--no-orjson"])]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bot_process", *args, cwd=ROOT,
        env=bot_environment(settings), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            control = ""
            while True:
                line = (await process.stdout.readline()).decode().strip()
                if not line and process.returncode is not None:
                    raise RuntimeError("the bot process ended before it was ready")
                if line.startswith("CONTROL "):
                    control = line.split(" ", 1)[1]
                if line == "READY":
                    break
        async with aiohttp.ClientSession() as http:
            yield ProcessBot(process, control, http, pid=process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


# ------------------------------------------------------------------------------ measuring


class ProcessSampler:
    """RSS of a process (and, separately, of its children: the image pool) every 50 ms, on a
    thread of the driver: nothing runs inside the bot for it."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_mib = 0.0
        self.peak_children_mib = 0.0
        self.first_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss(self) -> tuple[float, float]:
        own = float(self.process.memory_info().rss) / MiB
        children = 0.0
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                children += float(child.memory_info().rss) / MiB
        return own, children

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            own, children = self.rss()
            self.peak_mib = max(self.peak_mib, own)
            self.peak_children_mib = max(self.peak_children_mib, children)

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ProcessSampler:
        self.first_mib = self.rss()[0]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far."""
    process = psutil.Process(pid)
    total = sum(process.cpu_times()[:2])
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return float(total)


def machine_load() -> str:
    """The 1-, 5- and 15-minute load averages, as `uptime` shows them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# ------------------------------------------------------------------------------ settings


def base_settings(
    folder: Path, discord: FakeDiscord, api_url: str, guild_id: int
) -> dict[str, Any]:
    """Settings of a benchmark bot: its own database and objects; coins never limit; rates
    high enough that only the scenario's own rules decide."""
    return {
        "discord_token": "fake-bot-token",
        "discord_guild_ids": [guild_id],
        "database_path": str(folder / "bot.db"),
        "storage_backend": "local",
        "local_storage_dir": str(folder / "objects"),
        "gemini_api_key": "bench-key",
        "web_port": 0,
        "nanobanana_base_url": api_url,
        "nanobanana_max_attempts": 1,
        "nanobanana_timeout": 120,
        "starter_coins": 100_000,
        "log_level": "WARNING",
    }


def default(name: str) -> Any:
    """A setting's default (Settings' own)."""
    return Settings.model_fields[name].default


# ------------------------------------------------------------------------------ a big gallery


async def seed_gallery(
    folder: Path,
    collector_discord_id: int,
    guild_id: int,
    *,
    total: int,
    collector: int,
    tiles: list[tuple[bytes, bytes]],
) -> tuple[str, list[str]]:
    """A bot database (migrated) with `total` finished images, `collector` of them the
    collector's in `guild_id`, the rest spread over other members (100 each), the gallery
    counters to match, and 9 real objects the rows point to. Returns the collector's user id
    and the keyset cursors of their pages after 1,000 and after 50,000 rows (or half)."""
    database = SQLiteDatabase(folder / "bot.db")
    await database.connect()
    await database.migrate()
    await database.close()
    objects = folder / "objects"
    keys = []
    for n, (png, thumb) in enumerate(tiles):
        key, thumb_key = f"images/bench/{n}.png", f"thumbnails/bench/{n}.webp"
        for k, data in ((key, png), (thumb_key, thumb)):
            path = objects / k
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        keys.append((key, thumb_key))
    now = to_iso(utcnow())
    start = utcnow() - timedelta(days=60)
    metadata = json.dumps({"mime_type": "image/png", "width": 320, "height": 320})
    conn = sqlite3.connect(folder / "bot.db")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        owner = str(uuid.uuid4())
        users = [(owner, collector_discord_id)]
        others = max(0, (total - collector + 99) // 100)
        users += [(str(uuid.uuid4()), 900_000_000_000_000_000 + n) for n in range(others)]
        conn.executemany(
            "INSERT INTO users (id, discord_id, display_name, roles, language, created_at, "
            "updated_at) VALUES (?, ?, 'bench', '[\"USER\"]', 'en', ?, ?)",
            [(uid, did, now, now) for uid, did in users],
        )
        sql = (
            "INSERT INTO images (id, user_id, guild_id, type, status, prompt, storage_key, "
            "thumbnail_key, metadata, coins_used, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'COMPLETED', ?, ?, ?, ?, 100, ?, ?)"
        )
        counts: dict[tuple[str, str], int] = {}
        batch: list[tuple[Any, ...]] = []
        step = max(1, total // max(1, collector))
        owned = 0
        for i in range(total):
            if (i % step == 0 and owned < collector) or others == 0:
                user_id, owned = owner, owned + 1
            else:
                user_id = users[1 + i % others][0]
            kind = "GENERATED"
            counts[(user_id, kind)] = counts.get((user_id, kind), 0) + 1
            stamp = to_iso(start + timedelta(milliseconds=5 * i))
            key, thumb_key = keys[i % len(keys)]
            batch.append((str(uuid.uuid4()), user_id, str(guild_id), kind, f"image {i}", key,
                          thumb_key, metadata, stamp, stamp))  # fmt: skip
            if len(batch) >= 50_000:
                conn.executemany(sql, batch)
                batch = []
        if batch:
            conn.executemany(sql, batch)
        conn.executemany(
            "INSERT INTO gallery_counts (user_id, guild_id, type, count) VALUES (?, ?, ?, ?)",
            [(uid, str(guild_id), kind, n) for (uid, kind), n in counts.items()],
        )
        conn.commit()
        depth_rows = [1000, min(50_000, counts.get((owner, "GENERATED"), 0) // 2)]
        cursors = []
        for depth in depth_rows:
            row = conn.execute(
                "SELECT created_at, id FROM images WHERE user_id = ? AND guild_id = ? AND "
                "status = 'COMPLETED' ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
                (owner, str(guild_id), max(0, depth - 1)),
            ).fetchone()
            cursors.append(encode_cursor(row[0], row[1]))
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return owner, cursors
