"""Benchmark the whole bot end to end on loopback. Prints figures only; asserts nothing on time.

    python -m bench.bench_bot [--latency 0.5] [--concurrency 4] [--requests 200] [--users 50]
                              [--image-size 2048] [--gallery-images 10000] [--quick]

The real `NanoBananaBot` logs in to `FakeDiscord` through discord.py (as `tests/cogs` does),
generates through the real client against `FakeNanobanana` (fixed latency L), and stores in
SQLite files in a temporary folder plus a local object store, or S3 on moto's
`ThreadedMotoServer`. The fakes, moto and the bot all share this one process and event loop
(moto has its own thread), so every CPU, latency and memory figure includes the fakes' work.

1. Acknowledgement latency of a burst of `/generate` (N requests from U users, all sent at
   once, from first-time users): INTERACTION_CREATE sent -> first callback, p50/p99/max.
2. Pipeline efficiency: burst wall time (first send -> last image delivered) against the
   API-bound ideal `ceil(accepted / K) * L`; accepted and refused (per-user limit) counted.
3. Bot overhead per job (local storage and S3): worker start -> image delivered, minus the
   fake API's own handler time, split into before / around / after the API call.
4. Memory: RSS sampled every 50 ms during each burst, with baselines, and ru_maxrss.
5. Gallery of 10,000 images: `/gallery` to contact sheet, and a deep page (500) at service
   level and by a Next click.
6. Start-up: NanoBananaBot() -> ready, on a fresh database and on an existing one.

Figures also go to `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import logging
import math
import os
import platform
import resource
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from PIL import Image as PILImage

from bench.common import moto_s3_store, percentile
from bot import imaging
from bot.app import NanoBananaBot
from bot.config import Settings, load_settings
from bot.nanobanana import GeneratedImage, InputImage, Turn
from bot.services.gallery import PAGE_SIZE
from bot.services.generation import GenerationService, ImageGenerator, Job
from bot.services.permissions import Actor, Identity
from bot.services.types import User
from cogs.gallery import GalleryView
from storage.cursors import encode_cursor
from storage.timeutil import to_iso, utcnow
from tests.fakes.discord_models import CB_DEFERRED_MESSAGE, CB_MESSAGE
from tests.fakes.discord_server import (
    FakeDiscord,
    FakeGuild,
    FakeMessage,
    FakeUser,
    InteractionRecord,
    running_bot,
)
from tests.fakes.nanobanana_server import FakeNanobanana, image_dimensions, render_png_b64

MiB = 1024 * 1024
RESULTS_PATH = Path(__file__).parent / "results" / "latest.json"
ACK_DEADLINE = 3.0  # what Discord allows before an interaction fails
DEEP_PAGE = 500
REPEATS = 5
STARTUP_REPEATS = 3
SAMPLE_INTERVAL = 0.05


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Config:
    """What to run: the CLI flags, after `--quick`."""

    latency: float
    concurrency: int
    requests: int
    users: int
    image_size: int
    gallery_images: int
    quick: bool

    @property
    def deep_page(self) -> int:
        """Page 500, or the last full page of a smaller gallery."""
        return max(2, min(DEEP_PAGE, self.gallery_images // PAGE_SIZE))


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """The CLI; `--quick` replaces the defaults with small numbers for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, help="fake API latency L, s (default 0.5)")
    parser.add_argument("--concurrency", type=int, help="MAX_CONCURRENT_GENERATIONS K (4)")
    parser.add_argument("--requests", type=int, help="/generate requests in the burst (200)")
    parser.add_argument("--users", type=int, help="distinct users sending them (50)")
    parser.add_argument("--image-size", type=int, help="long side of generated images (2048)")
    parser.add_argument("--gallery-images", type=int, help="images in the big gallery (10000)")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = {
        "latency": 0.5,
        "concurrency": 4,
        "requests": 200,
        "users": 50,
        "image_size": 2048,
        "gallery_images": 10_000,
    }
    if args.quick:
        defaults.update(latency=0.05, requests=20, users=10, image_size=256, gallery_images=500)
    chosen = {name: getattr(args, name) for name in defaults}
    values = {name: default if chosen[name] is None else chosen[name]
              for name, default in defaults.items()}  # fmt: skip
    return Config(quick=args.quick, **values)


# ------------------------------------------------------------------------------ small helpers


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1000


def wall_to_monotonic(wall: float) -> float:
    """A `time.time()` stamp (the fake Discord's `edited_at`) on the `time.monotonic()` axis
    the fake's `sent_at` / `first_callback_at` use."""
    return wall - (time.time() - time.monotonic())


def rss_mib() -> float:
    """Current resident set size of this process."""
    return float(psutil.Process().memory_info().rss) / MiB


def maxrss_mib() -> float:
    """Peak RSS of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MiB if sys.platform == "darwin" else peak / 1024


def has_image(message: FakeMessage) -> bool:
    """Whether a message carries a generated image (as tests/cogs check it)."""
    return any(name.startswith("nanobanana-") for name in message.filenames)


def image_delivered_at(rec: InteractionRecord) -> float | None:
    """When the fake stored the edit that put the image on the original (monotonic)."""
    for snapshot in rec.edits:
        if has_image(snapshot) and snapshot.edited_at is not None:
            return wall_to_monotonic(snapshot.edited_at)
    return None


def job_failed(rec: InteractionRecord) -> bool:
    """A failed job deletes its public placeholder (and tells the user privately)."""
    return rec.original is not None and rec.original.deleted


class RssSampler:
    """Samples this process's RSS every 50 ms on a thread (a busy event loop can't delay it)."""

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self.samples = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        self.peak_mib = max(self.peak_mib, float(self._process.memory_info().rss) / MiB)
        self.samples += 1

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class LoopLag:
    """How late a 10 ms sleep wakes up on the event loop, sampled while in the block: the
    time every ready callback (bot and fakes alike) waits for the loop."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - before - self.interval))

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._run(), name="loop-lag")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) so far."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def fake_discord_bytes(fake: FakeDiscord) -> int:
    """Bytes of the attachments the fake Discord keeps (digests only by default, as here)."""
    files = {id(f): len(f.data) for m in fake.messages.values() for f in m.attachments}
    return sum(files.values())


# ------------------------------------------------------------------------------ instrumentation


@dataclass
class GenerateCall:
    """When the worker called the image client for one prompt, and when it returned."""

    called: float
    returned: float | None = None


class TimedGenerator:
    """Wraps the bot's image client to time each call (bench-only; no bot code changed)."""

    def __init__(self, inner: ImageGenerator) -> None:
        self.inner = inner
        self.model = inner.model
        self.calls: dict[str, GenerateCall] = {}

    async def generate(
        self,
        prompt: str,
        images: Sequence[InputImage] = (),
        aspect_ratio: str | None = None,
        *,
        image_size: str | None = None,
        model: str | None = None,
        history: Sequence[Turn] = (),
    ) -> GeneratedImage:
        call = self.calls[prompt] = GenerateCall(time.monotonic())
        try:
            return await self.inner.generate(
                prompt,
                images,
                aspect_ratio,
                image_size=image_size,
                model=model,
                history=history,
            )
        finally:
            call.returned = time.monotonic()


class JobRecorder:
    """Keeps every queued Job by prompt, for `Job.started_at` (when a worker began it)."""

    def __init__(self, service: GenerationService) -> None:
        self.jobs: dict[str, Job] = {}
        self._enqueue = service.enqueue
        service.enqueue = self.enqueue  # type: ignore[method-assign]

    async def enqueue(self, job: Job) -> int:
        self.jobs[job.request.prompt] = job
        return await self._enqueue(job)


# ------------------------------------------------------------------------------ the world


@dataclass
class World:
    """The fakes and the people in them."""

    fake: FakeDiscord
    api: FakeNanobanana
    guild: FakeGuild
    users: list[FakeUser]
    collector: FakeUser  # owns the big gallery
    root: Path


async def open_world(stack: AsyncExitStack, config: Config, root: Path) -> World:
    """Start FakeDiscord and FakeNanobanana with a guild of `config.users` members."""
    fake = await stack.enter_async_context(FakeDiscord())
    api = await stack.enter_async_context(
        FakeNanobanana(image_size=config.image_size, latency=config.latency)
    )
    guild = fake.add_guild("Bench Guild")
    users = [fake.add_user(f"user{n:03d}", guilds=[guild]) for n in range(config.users)]
    collector = fake.add_user("collector", guilds=[guild])
    # Render (and cache) the fake's answer now, so the first job doesn't pay for it.
    render_png_b64(*image_dimensions("1:1", config.image_size))
    return World(fake, api, guild, users, collector, root)


def bot_settings(world: World, folder: Path, config: Config) -> Settings:
    """Settings for one bot run: its own database and object folder; coins never limit."""
    defaults = Settings.model_fields
    return load_settings(
        _env_file=None,
        discord_token="fake-bot-token",
        discord_guild_ids=[world.guild.id],
        admin_user_ids=[],
        database_path=folder / "bot.db",
        storage_backend="local",
        local_storage_dir=folder / "objects",
        gemini_api_key="bench-key",
        web_port=0,
        nanobanana_base_url=world.api.base_url,
        nanobanana_max_attempts=1,
        nanobanana_timeout=120,
        starter_coins=100_000,
        max_concurrent_generations=config.concurrency,
        max_jobs_per_user=defaults["max_jobs_per_user"].default,
        log_level="WARNING",
    )


# ------------------------------------------------------------------------------ 1-4: the burst


@dataclass
class JobTiming:
    """One delivered job on the monotonic clock, with the fake API's handler time."""

    callback: float
    started: float
    api_called: float
    api_returned: float
    delivered: float
    handler: float
    edits: int

    @property
    def overhead(self) -> float:
        return self.delivered - self.started - self.handler

    @property
    def before_api(self) -> float:
        return self.api_called - self.started

    @property
    def client(self) -> float:
        return self.api_returned - self.api_called - self.handler

    @property
    def after_api(self) -> float:
        return self.delivered - self.api_returned

    @property
    def end_to_end(self) -> float:
        return self.delivered - self.callback


@dataclass
class BurstResult:
    """Figures of one burst (one storage backend)."""

    storage: str
    sent: int
    accepted: int
    refused: int
    other: int
    failed: int
    delivered: int
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    acks_over_3s: int
    late_acks: int  # answered after Discord's 3 s: 404 10062, the member saw a failure
    rate_limited: int  # 429s the fake answered during the burst
    wall_s: float
    ideal_s: float
    efficiency: float
    overhead_p50_ms: float
    overhead_p99_ms: float
    before_api_p50_ms: float
    client_p50_ms: float
    after_api_p50_ms: float
    after_api_p99_ms: float
    end_to_end_p50_s: float
    end_to_end_p99_s: float
    edits_per_job: float
    rest_calls: int
    cpu_cores: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    rss_before_mib: float
    rss_peak_mib: float
    fakes_hold_mib: float

    @property
    def rss_growth_mib(self) -> float:
        return self.rss_peak_mib - self.rss_before_mib


@dataclass
class Probes:
    """Process-level figures taken around one burst."""

    rest_calls: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    lags: list[float] = field(default_factory=list)
    rss_before: float = 0.0
    rss_peak: float = 0.0
    fakes_hold: float = 0.0
    rate_limited: int = 0


def classify(recs: Sequence[InteractionRecord]) -> tuple[list[InteractionRecord], int, int]:
    """(accepted, refused, other): accepted jobs deferred publicly; refusals are ephemeral
    messages (the per-user limit); anything else is counted as other."""
    accepted = [r for r in recs if r.callback_type == CB_DEFERRED_MESSAGE]
    refused = sum(1 for r in recs if r.callback_type == CB_MESSAGE and r.ephemeral)
    return accepted, refused, len(recs) - len(accepted) - refused


def job_timings(
    accepted: Sequence[tuple[str, InteractionRecord]],
    jobs: JobRecorder,
    timed: TimedGenerator,
    handler_by_prompt: dict[str, float],
) -> list[JobTiming]:
    """Timings of every delivered job (jobs missing any stamp are skipped)."""
    timings = []
    for prompt, rec in accepted:
        job = jobs.jobs.get(prompt)
        call = timed.calls.get(prompt)
        delivered = image_delivered_at(rec)
        callback = rec.first_callback_at
        if (
            job is None or job.started_at is None or call is None or call.returned is None
            or delivered is None or callback is None or prompt not in handler_by_prompt
        ):  # fmt: skip
            continue
        timings.append(
            JobTiming(
                callback=callback,
                started=job.started_at,
                api_called=call.called,
                api_returned=call.returned,
                delivered=delivered,
                handler=handler_by_prompt[prompt],
                edits=len(rec.edits),
            )
        )
    return timings


async def send_burst(world: World, prompts: Sequence[str]) -> list[InteractionRecord]:
    """All `/generate` at once, request n from user n mod U (round robin)."""
    users = world.users
    return list(
        await asyncio.gather(
            *(
                world.fake.slash("generate", {"prompt": prompt}, user=users[n % len(users)])
                for n, prompt in enumerate(prompts)
            )
        )
    )


async def run_burst(world: World, bot: NanoBananaBot, config: Config, label: str) -> BurstResult:
    """Send the burst, wait for every outcome, and compute the figures."""
    timed = TimedGenerator(bot.generation.generator)
    bot.generation.generator = timed
    jobs = JobRecorder(bot.generation)
    world.api.requests.clear()
    prompts = [f"bench {label} job {n:04d}" for n in range(config.requests)]
    patience = 120 + 20 * math.ceil(config.requests / config.concurrency) * config.latency
    probes = Probes(rss_before=rss_mib())
    rest_before, held_before = world.fake.request_count, fake_discord_bytes(world.fake)
    cpu_before, wall_before = cpu_seconds(), time.monotonic()
    with RssSampler() as sampler:
        async with LoopLag() as lag:
            hits_before = len(world.fake.ratelimits.hits)
            recs = await send_burst(world, prompts)
            # An answer, or Discord's refusal of a late one (the fake enforces the 3 s).
            await asyncio.gather(
                *(rec.wait_for(lambda r: r.callbacks or r.expired, timeout=patience)
                  for rec in recs)
            )  # fmt: skip
            accepted, refused, other = classify(recs)
            await asyncio.gather(
                *(
                    rec.wait_for(lambda r: image_delivered_at(r) is not None or job_failed(r),
                                 timeout=patience)
                    for rec in accepted
                )
            )  # fmt: skip
    probes.cpu_seconds = cpu_seconds() - cpu_before
    probes.wall_seconds = time.monotonic() - wall_before
    probes.rest_calls = world.fake.request_count - rest_before
    probes.rate_limited = len(world.fake.ratelimits.hits) - hits_before
    probes.lags, probes.rss_peak = lag.lags, sampler.peak_mib
    probes.fakes_hold = (fake_discord_bytes(world.fake) - held_before) / MiB
    if label == "s3":  # moto keeps every object in this process's memory
        probes.fakes_hold += await stored_image_bytes(bot) / MiB
    by_rec = {id(rec): prompt for prompt, rec in zip(prompts, recs, strict=True)}
    accepted_pairs = [(by_rec[id(rec)], rec) for rec in accepted]
    handler = {r.prompt or "": r.handler_seconds for r in world.api.requests}
    timings = job_timings(accepted_pairs, jobs, timed, handler)
    return summarize(label, config, recs, accepted, (refused, other), timings, probes)


async def stored_image_bytes(bot: NanoBananaBot) -> int:
    """Bytes of the completed images the bot stored (thumbnails, a few KiB each, left out)."""
    total = await bot.db.fetchval(
        "SELECT COALESCE(SUM(json_extract(metadata, '$.size')), 0) FROM images "
        "WHERE status = 'COMPLETED'"
    )
    return int(total)


def summarize(
    label: str,
    config: Config,
    recs: Sequence[InteractionRecord],
    accepted: Sequence[InteractionRecord],
    refused_other: tuple[int, int],
    timings: Sequence[JobTiming],
    probes: Probes,
) -> BurstResult:
    """Turn raw stamps into the burst's figures."""
    refused, other = refused_other
    acks = [rec.ack_latency for rec in recs if rec.ack_latency is not None]
    sent = [rec.sent_at for rec in recs if rec.sent_at is not None]
    delivered = [t.delivered for t in timings]
    wall = max(delivered) - min(sent) if delivered and sent else math.nan
    ideal = math.ceil(len(accepted) / config.concurrency) * config.latency
    overhead = [t.overhead for t in timings]
    after = [t.after_api for t in timings]
    e2e = [t.end_to_end for t in timings]
    return BurstResult(
        storage=label,
        sent=len(recs),
        accepted=len(accepted),
        refused=refused,
        other=other,
        failed=sum(1 for rec in accepted if job_failed(rec)),
        delivered=len(timings),
        ack_p50_ms=ms(percentile(acks, 50)),
        ack_p99_ms=ms(percentile(acks, 99)),
        ack_max_ms=ms(max(acks, default=math.nan)),
        acks_over_3s=sum(1 for a in acks if a > ACK_DEADLINE),
        late_acks=sum(1 for rec in recs if rec.expired and not rec.responded),
        rate_limited=probes.rate_limited,
        wall_s=wall,
        ideal_s=ideal,
        efficiency=wall / ideal if ideal else math.nan,
        overhead_p50_ms=ms(percentile(overhead, 50)),
        overhead_p99_ms=ms(percentile(overhead, 99)),
        before_api_p50_ms=ms(percentile([t.before_api for t in timings], 50)),
        client_p50_ms=ms(percentile([t.client for t in timings], 50)),
        after_api_p50_ms=ms(percentile(after, 50)),
        after_api_p99_ms=ms(percentile(after, 99)),
        end_to_end_p50_s=percentile(e2e, 50),
        end_to_end_p99_s=percentile(e2e, 99),
        edits_per_job=sum(t.edits for t in timings) / len(timings) if timings else math.nan,
        rest_calls=probes.rest_calls,
        cpu_cores=probes.cpu_seconds / probes.wall_seconds if probes.wall_seconds else math.nan,
        loop_lag_p99_ms=ms(percentile(probes.lags, 99)),
        loop_lag_max_ms=ms(max(probes.lags, default=math.nan)),
        rss_before_mib=probes.rss_before,
        rss_peak_mib=probes.rss_peak,
        fakes_hold_mib=probes.fakes_hold,
    )


@dataclass
class Memory:
    """RSS figures around the local burst (MiB)."""

    rss_at_start: float = 0.0
    rss_fakes_up: float = 0.0
    rss_bot_ready: float = 0.0
    rss_after_burst: float = 0.0
    ru_maxrss_after_burst: float = 0.0
    ru_maxrss_at_end: float = 0.0


# ------------------------------------------------------------------------------ 5: the gallery


@dataclass
class GalleryResult:
    """`/gallery` through Discord, and pages at service level (ms)."""

    images: int
    deep_page: int
    slash_p50_ms: float
    slash_max_ms: float
    slash_ack_p50_ms: float
    service_first_p50_ms: float
    service_deep_p50_ms: float
    service_deep_max_ms: float
    next_click_p50_ms: float | None
    next_click_max_ms: float | None
    seed_s: float


def tile(n: int) -> tuple[bytes, bytes]:
    """A small distinct PNG and its real WebP thumbnail."""
    colour = ((n * 70) % 256, (n * 130 + 60) % 256, (n * 200 + 30) % 256)
    buffer = io.BytesIO()
    PILImage.new("RGB", (320, 320), colour).save(buffer, "PNG")
    png = buffer.getvalue()
    return png, imaging.make_thumbnail(png, 256)


async def seed_gallery(bot: NanoBananaBot, owner_id: str, guild_id: int, count: int) -> None:
    """`count` COMPLETED images for one user in one server by raw SQL, cycling over 9 real
    objects."""
    keys = []
    for n in range(PAGE_SIZE):
        png, thumb = tile(n)
        key, thumb_key = f"images/bench-gallery/{n}.png", f"thumbnails/bench-gallery/{n}.webp"
        await bot.store.put(key, png, "image/png")
        await bot.store.put(thumb_key, thumb, "image/webp")
        keys.append((key, thumb_key))
    start = utcnow() - timedelta(days=30)
    metadata = json.dumps({"mime_type": "image/png", "width": 320, "height": 320})
    rows = []
    for i in range(count):
        stamp = to_iso(start + timedelta(milliseconds=i))
        key, thumb_key = keys[i % PAGE_SIZE]
        rows.append((str(uuid.uuid4()), owner_id, str(guild_id), f"gallery image {i}", key,
                     thumb_key, metadata, stamp, stamp))  # fmt: skip
    sql = (
        "INSERT INTO images (id, user_id, guild_id, type, status, prompt, storage_key, "
        "thumbnail_key, metadata, coins_used, created_at, updated_at) "
        "VALUES (?, ?, ?, 'GENERATED', 'COMPLETED', ?, ?, ?, ?, 100, ?, ?)"
    )
    await bot.db.write(lambda tx: tx.executemany(sql, rows))


async def page_cursors(
    bot: NanoBananaBot, owner_id: str, guild_id: int, pages: int
) -> list[str | None]:
    """cursors[i] produces page i + 1 (None for page 1), as GalleryView keeps them."""
    rows = await bot.db.fetchall(
        "SELECT created_at, id FROM images WHERE user_id = ? AND guild_id = ? "
        "AND status = 'COMPLETED' ORDER BY created_at DESC, id DESC LIMIT ?",
        (owner_id, str(guild_id), (pages - 1) * PAGE_SIZE),
    )
    cursors: list[str | None] = [None]
    for index in range(1, pages):
        row = rows[index * PAGE_SIZE - 1]
        cursors.append(encode_cursor(row["created_at"], row["id"]))
    return cursors


async def timed_async(action: Callable[[], Awaitable[object]]) -> float:
    """Seconds one awaited call takes."""
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def time_slash_gallery(world: World) -> tuple[float, float, FakeMessage]:
    """`/gallery` -> the contact sheet delivered: (seconds, ack seconds, message)."""
    rec = await world.fake.slash("gallery", {}, user=world.collector)
    message = await rec.wait_original(lambda m: "gallery.png" in m.filenames, timeout=60)
    assert rec.sent_at is not None and message.edited_at is not None
    return wall_to_monotonic(message.edited_at) - rec.sent_at, rec.ack_latency or 0.0, message


async def time_next_click(
    world: World, bot: NanoBananaBot, viewer: Actor, owner: User, message: FakeMessage,
    cursors: list[str | None],
) -> float | None:  # fmt: skip
    """Put every live GalleryView of the collector on the page before the deep page, then
    click Next on a gallery message; seconds from click sent to the updated page received
    (the callback is the edit). None if the view could not be found."""
    deep = len(cursors)
    # The class of the module the bot loaded (load_extension executes a fresh module object).
    view_class = bot.extensions["cogs.gallery"].GalleryView
    views: list[GalleryView] = [
        o for o in gc.get_objects()
        if isinstance(o, view_class) and o.viewer.discord_id == world.collector.id
    ]  # fmt: skip
    if not views:
        return None
    before = await bot.gallery.page(viewer, owner, cursor=cursors[deep - 2], page_number=deep - 1)
    for view in views:
        view.cursors = list(cursors)
        view.page = before
    rec = await world.fake.click(message, label="Next", user=world.collector)
    await rec.wait_callback(timeout=60)
    target = rec.target_message
    if target is None or f"Page {deep} of" not in target.embed_text():
        return None
    return rec.ack_latency


async def run_gallery(world: World, bot: NanoBananaBot, config: Config) -> GalleryResult:
    """Seed the collector's gallery, then time /gallery, service pages and a Next click."""
    here = Identity(world.collector.id, "collector", locale="en-US", guild_id=world.guild.id)
    viewer = await bot.accounts.actor(here, create=True)
    owner = viewer.user
    assert owner is not None
    started = time.perf_counter()
    await seed_gallery(bot, owner.id, world.guild.id, config.gallery_images)
    seed_s = time.perf_counter() - started
    deep = config.deep_page
    cursors = await page_cursors(bot, owner.id, world.guild.id, deep)

    slash, acks = [], []
    message: FakeMessage | None = None
    for _ in range(REPEATS):
        seconds, ack, message = await time_slash_gallery(world)
        slash.append(seconds)
        acks.append(ack)
    first = [await timed_async(lambda: bot.gallery.page(viewer, owner, page_number=1))
             for _ in range(REPEATS)]  # fmt: skip
    deep_times = [
        await timed_async(
            lambda: bot.gallery.page(viewer, owner, cursor=cursors[deep - 1], page_number=deep)
        )
        for _ in range(REPEATS)
    ]
    clicks: list[float] = []
    if message is not None:
        for _ in range(REPEATS):
            click = await time_next_click(world, bot, viewer, owner, message, cursors)
            if click is not None:
                clicks.append(click)
    return GalleryResult(
        images=config.gallery_images,
        deep_page=deep,
        slash_p50_ms=ms(percentile(slash, 50)),
        slash_max_ms=ms(max(slash)),
        slash_ack_p50_ms=ms(percentile(acks, 50)),
        service_first_p50_ms=ms(percentile(first, 50)),
        service_deep_p50_ms=ms(percentile(deep_times, 50)),
        service_deep_max_ms=ms(max(deep_times)),
        next_click_p50_ms=ms(percentile(clicks, 50)) if clicks else None,
        next_click_max_ms=ms(max(clicks)) if clicks else None,
        seed_s=seed_s,
    )


# ------------------------------------------------------------------------------ 6: start-up


@dataclass
class StartupResult:
    """NanoBananaBot() -> ready (ms)."""

    fresh_p50_ms: float
    fresh_max_ms: float
    existing_p50_ms: float
    existing_max_ms: float
    existing_images: int
    first_start_cold_ms: float


async def time_startup(world: World, settings: Settings) -> float:
    """NanoBananaBot() -> running_bot ready (migrations, recovery, storage sweep, cogs, sync,
    gateway login and guild cache), in seconds; the bot is closed afterwards."""
    started = time.perf_counter()
    bot = NanoBananaBot(settings, guild_ready_timeout=0)
    async with running_bot(world.fake, bot):
        return time.perf_counter() - started


async def run_startup(world: World, config: Config, existing: Path, cold: float) -> StartupResult:
    """Start-up on fresh databases, then on `existing` (the local run's, gallery included)."""
    fresh = []
    for n in range(STARTUP_REPEATS):
        folder = world.root / f"fresh-{n}"
        fresh.append(await time_startup(world, bot_settings(world, folder, config)))
    settings = bot_settings(world, existing, config)
    again = [await time_startup(world, settings) for _ in range(STARTUP_REPEATS)]
    with contextlib.closing(sqlite3.connect(settings.database_path)) as conn:
        images = int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    return StartupResult(
        fresh_p50_ms=ms(percentile(fresh, 50)),
        fresh_max_ms=ms(max(fresh)),
        existing_p50_ms=ms(percentile(again, 50)),
        existing_max_ms=ms(max(again)),
        existing_images=images,
        first_start_cold_ms=ms(cold),
    )


# ------------------------------------------------------------------------------ phases


@dataclass
class Results:
    """Everything one run measured (what goes to latest.json)."""

    config: Config
    host: dict[str, Any]
    bursts: list[BurstResult] = field(default_factory=list)
    # Requests real Discord would refuse as malformed (must be none).
    discord_problems: list[str] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)
    gallery: GalleryResult | None = None
    startup: StartupResult | None = None
    total_s: float = 0.0


async def local_phase(world: World, config: Config, results: Results) -> float:
    """Local storage: start (cold), burst with memory sampling, then the gallery. Returns the
    cold start-up time."""
    settings = bot_settings(world, world.root / "local", config)
    started = time.perf_counter()
    bot = NanoBananaBot(settings, guild_ready_timeout=0)
    async with running_bot(world.fake, bot):
        cold = time.perf_counter() - started
        results.memory.rss_bot_ready = rss_mib()
        burst = await run_burst(world, bot, config, "local")
        results.bursts.append(burst)
        results.memory.rss_after_burst = rss_mib()
        results.memory.ru_maxrss_after_burst = maxrss_mib()
        results.gallery = await run_gallery(world, bot, config)
    return cold


async def s3_phase(world: World, config: Config, results: Results) -> None:
    """The same burst with S3ObjectStore on moto (in-process server thread)."""
    async with moto_s3_store() as store:
        settings = bot_settings(world, world.root / "s3", config)
        bot = NanoBananaBot(settings, store=store, guild_ready_timeout=0)
        async with running_bot(world.fake, bot):
            results.bursts.append(await run_burst(world, bot, config, "s3"))


def host_info() -> dict[str, Any]:
    """The machine and the bot defaults the figures depend on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "max_jobs_per_user": Settings.model_fields["max_jobs_per_user"].default,
    }


async def run(config: Config) -> Results:
    """All phases, in order: local burst + gallery, S3 burst, start-up."""
    results = Results(config=config, host=host_info())
    results.memory.rss_at_start = rss_mib()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as temp:
        async with AsyncExitStack() as stack:
            world = await open_world(stack, config, Path(temp))
            results.memory.rss_fakes_up = rss_mib()
            cold = await local_phase(world, config, results)
            await s3_phase(world, config, results)
            results.startup = await run_startup(world, config, world.root / "local", cold)
            results.discord_problems = world.fake.problems()
    results.memory.ru_maxrss_at_end = maxrss_mib()
    results.total_s = time.perf_counter() - started
    return results


# ------------------------------------------------------------------------------ output


def fmt(value: float | int | str | None, digits: int = 1) -> str:
    """A table cell; n/a for missing figures."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


Row = tuple[str, str, str, str]


def burst_rows(bursts: Sequence[BurstResult]) -> list[Row]:
    """Rows with a local and an s3 column."""
    by = {b.storage: b for b in bursts}
    local, s3 = by.get("local"), by.get("s3")

    def both(get: Callable[[BurstResult], float | int | str], digits: int = 1) -> tuple[str, str]:
        return (fmt(get(local), digits) if local else "n/a", fmt(get(s3), digits) if s3 else "n/a")

    def row(label: str, get: Callable[[BurstResult], Any], aim: str = "", digits: int = 1) -> Row:
        return (label, *both(get, digits), aim)

    return [
        row("requests sent", lambda b: b.sent),
        row("accepted (deferred, queued)", lambda b: b.accepted),
        row("refused (per-user limit, ephemeral)", lambda b: b.refused),
        row("other answers / failed jobs", lambda b: f"{b.other} / {b.failed}"),
        row("[1] ack latency p50 (ms)", lambda b: b.ack_p50_ms),
        row("[1] ack latency p99 (ms)", lambda b: b.ack_p99_ms, "< 100"),
        row("[1] ack latency max (ms)", lambda b: b.ack_max_ms, "< 3000"),
        row("[1] answered too late (404 10062)", lambda b: b.late_acks, "0"),
        row("[2] burst wall time (s)", lambda b: b.wall_s, digits=2),
        row("[2] API-bound ideal ceil(acc/K)*L (s)", lambda b: b.ideal_s, digits=2),
        row("[2] efficiency wall / ideal", lambda b: b.efficiency, "<= 1.10", digits=2),
        row("[3] bot overhead per job p50 (ms)", lambda b: b.overhead_p50_ms),
        row("[3] bot overhead per job p99 (ms)", lambda b: b.overhead_p99_ms),
        row("[3]   before API call p50 (ms)", lambda b: b.before_api_p50_ms),
        row("[3]   client around API p50 (ms)", lambda b: b.client_p50_ms),
        row("[3]   after API, to delivery p50 (ms)", lambda b: b.after_api_p50_ms),
        row("[3]   after API, to delivery p99 (ms)", lambda b: b.after_api_p99_ms),
        row("[3] callback -> image p50 (s, queued)", lambda b: b.end_to_end_p50_s, digits=2),
        row("[3] callback -> image p99 (s, queued)", lambda b: b.end_to_end_p99_s, digits=2),
        row("edits of the original per job", lambda b: b.edits_per_job),
        row("Discord REST calls during burst", lambda b: b.rest_calls),
        row("429s from Discord's rate limits (ridden out)", lambda b: b.rate_limited),
        row(f"CPU used during burst (cores of {os.cpu_count()})", lambda b: b.cpu_cores, digits=2),
        row("event-loop lag p99 (ms)", lambda b: b.loop_lag_p99_ms),
        row("event-loop lag max (ms)", lambda b: b.loop_lag_max_ms),
        row("[4] RSS before burst (MiB)", lambda b: b.rss_before_mib),
        row("[4] peak RSS during burst (MiB)", lambda b: b.rss_peak_mib),
        row("[4] RSS growth, peak - before (MiB)", lambda b: b.rss_growth_mib),
        row("[4]   of which images the fakes keep (MiB)", lambda b: b.fakes_hold_mib),
    ]


def single_rows(results: Results) -> list[Row]:
    """Rows measured once (memory baselines, gallery, start-up)."""
    memory, gallery, startup = results.memory, results.gallery, results.startup
    rows: list[Row] = [
        ("[4] RSS at start, nothing running (MiB)", fmt(memory.rss_at_start), "", ""),
        ("[4] RSS fakes up, bot not started (MiB)", fmt(memory.rss_fakes_up), "", ""),
        ("[4] RSS bot ready, before burst (MiB)", fmt(memory.rss_bot_ready), "", ""),
        ("[4] RSS after local burst (MiB)", fmt(memory.rss_after_burst), "", ""),
        ("[4] ru_maxrss after local burst (MiB)", fmt(memory.ru_maxrss_after_burst), "", ""),
        ("[4] ru_maxrss at the end (MiB)", fmt(memory.ru_maxrss_at_end), "", ""),
    ]
    if gallery is not None:
        deep = gallery.deep_page
        rows += [
            (f"[5] /gallery ({gallery.images} images) p50 (ms)", fmt(gallery.slash_p50_ms),
             "", ""),
            ("[5] /gallery max (ms)", fmt(gallery.slash_max_ms), "", ""),
            ("[5] /gallery ack (defer) p50 (ms)", fmt(gallery.slash_ack_p50_ms), "", ""),
            ("[5] service page 1 p50 (ms)", fmt(gallery.service_first_p50_ms), "", ""),
            (f"[5] service page {deep} p50 (ms)", fmt(gallery.service_deep_p50_ms), "", ""),
            (f"[5] service page {deep} max (ms)", fmt(gallery.service_deep_max_ms), "", ""),
            (f"[5] Next click {deep - 1}->{deep} p50 (ms)", fmt(gallery.next_click_p50_ms),
             "", ""),
            (f"[5] Next click {deep - 1}->{deep} max (ms)", fmt(gallery.next_click_max_ms),
             "", ""),
        ]  # fmt: skip
    if startup is not None:
        rows += [
            ("[6] start-up, fresh DB p50 (ms)", fmt(startup.fresh_p50_ms), "", ""),
            ("[6] start-up, fresh DB max (ms)", fmt(startup.fresh_max_ms), "", ""),
            (f"[6] start-up, existing DB ({startup.existing_images} img) p50 (ms)",
             fmt(startup.existing_p50_ms), "", ""),
            ("[6] start-up, existing DB max (ms)", fmt(startup.existing_max_ms), "", ""),
            ("[6] first start in this process (ms)", fmt(startup.first_start_cold_ms), "", ""),
        ]  # fmt: skip
    return rows


def print_table(rows: Sequence[Row]) -> None:
    """Fixed-width table: metric, local, s3, aim."""
    header: Row = ("metric", "local", "s3", "aim")
    width = max(len(r[0]) for r in (header, *rows)) + 2

    def line(r: Row) -> str:
        return f"{r[0]:<{width}}{r[1]:>10}{r[2]:>10}{r[3]:>10}"

    print(line(header))
    print("-" * len(line(header)))
    for r in rows:
        print(line(r))


FOOTNOTES = """\
Everything runs in ONE process on loopback: the bot, FakeDiscord, FakeNanobanana, moto's S3
(a thread) and SQLite (aiosqlite threads). CPU and loop time spent by the fakes count
against the bot. Each burst starts on a fresh database, so its users are first-time users.
[1] fake Discord's INTERACTION_CREATE sent (sent_at) -> first callback POST received.
    FakeDiscord is strict like Discord: a first answer after 3 s gets 404 10062, and
    rate limits, upload limits and the API spec are enforced on every request.
[2] first INTERACTION_CREATE sent -> last image edit stored by the fake (edited_at).
    Ideal = ceil(accepted / K) * L: K workers each busy only for the API's latency.
[3] Overhead = worker start (Job.started_at) -> image edit stored by the fake, minus the
    fake API's handler time for that job's request (its L plus building the answer).
    before API: status PROCESSING + 'generating' notice; client: request body, HTTP
    transfer, JSON/base64 decode, Pillow check; after API: inspect + thumbnail, object
    puts, DB commit, fit_to_size, multipart upload to Discord. Callback -> image includes
    the time spent waiting in the queue. (Stamps: a wrapper around the bot's image client
    and around GenerationService.enqueue, bench-only.) Event-loop lag: lateness of a 10 ms
    sleep during the burst.
[4] psutil RSS sampled every 50 ms on a thread during each burst. It includes the fakes:
    moto keeps every stored object (the 'fakes keep' row; FakeDiscord keeps digests of
    uploads, not bytes), and whatever glibc malloc keeps after frees. The s3 column starts
    from what the local run left behind; compare growth, not peaks.
[5] /gallery: slash sent -> contact sheet stored by the fake. Service: GalleryService.page()
    timed directly with the keyset cursor of the page's last predecessor row. Next click:
    live GalleryViews are set to the page before, then Next is clicked through Discord;
    the callback (an UPDATE carrying the new sheet) is the answer.
[6] NanoBananaBot() -> ready in running_bot (connect, migrate, recover, storage sweep,
    cogs, guild command sync, gateway login, guild cache); modules already imported."""


def print_report(results: Results) -> None:
    """Header, table and footnotes."""
    config, host = results.config, results.host
    print("Bot benchmark: real discord.py bot vs FakeDiscord + FakeNanobanana (+ moto S3)")
    print(
        f"cpus={host['cpus']}  python={host['python']}  L={config.latency:g}s  "
        f"K={config.concurrency}  N={config.requests} requests from {config.users} users  "
        f"image={config.image_size}x{config.image_size}  per-user limit="
        f"{host['max_jobs_per_user']}{'  (quick)' if config.quick else ''}\n"
    )
    print_table([*burst_rows(results.bursts), *single_rows(results)])
    print()
    print(FOOTNOTES)
    print(f"\nTotal {results.total_s:.1f} s; figures written to {RESULTS_PATH}")
    if results.discord_problems:
        print(f"\n{len(results.discord_problems)} request(s) real Discord would refuse:")
        for problem in results.discord_problems[:20]:
            print(f"  {problem}")


def without_nan(value: Any) -> Any:
    """JSON has no NaN: missing figures become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(item) for item in value]
    return value


def write_results(results: Results) -> None:
    """All figures to bench/results/latest.json."""
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    document = without_nan(asdict(results))
    RESULTS_PATH.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m bench.bench_bot`."""
    config = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    results = asyncio.run(run(config))
    write_results(results)
    print_report(results)
    if results.discord_problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
