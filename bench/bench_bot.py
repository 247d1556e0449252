"""Benchmark the whole bot on loopback, the bot alone in its own process. Prints figures beside
their aims; asserts nothing on time.

    python -m bench.bench_bot [--latency 0.5] [--concurrency 4] [--requests 200] [--users 50]
                              [--image-size 2048] [--gallery-images 1000000]
                              [--collector-images 100000] [--loop auto|uvloop|asyncio]
                              [--no-orjson] [--connections 32] [--in-process] [--quick]

The real bot runs in a process of its own (`bench.bot_process`, settings from the environment
as `python -m bot run` reads them); the fake Discord runs here, in the driver, which sends the
interactions and keeps every stamp; the fake Nano Banana API runs in a third process
(`--in-process`: bot, fakes and driver all share this process, as this benchmark used to).
RSS and CPU are those of the bot's process (its image pool's processes counted apart),
sampled from here; event-loop lag is sampled inside the bot.

1. A burst of `/generate` (N from U first-time members, all sent at once): acknowledgement
   latency (INTERACTION_CREATE sent -> first callback received by the fake Discord).
2. Efficiency: burst wall time (first send -> last image stored by the fake Discord) against
   `ceil(accepted / K) * L`, with L the configured latency and with the fake API's real
   answer time (probed before the burst: request sent -> 7 MB answer read).
3. Each job's steps, from the bot's own marks: before the API (worker start -> request sent),
   the API exchange, decoding, answer -> Discord upload call, the upload, thumbnails, object
   writes, the COMPLETED commit.
4. Memory: the bot process's peak RSS during the burst (its image pool's beside it).
6. A conversation (issue 22): five turns by replies that mention the bot, each one's time
   (reply posted -> image shown) beside a single `/generate`'s (sent -> image shown), on the
   same bot after the burst: the per-turn overhead of sending the conversation so far.
5. Gallery at `--gallery-images` images, `--collector-images` of them one member's: a page's
   rows and total (what the view shows) at page 1 and deep (keyset cursors after 1,000 and
   after 50,000 rows), timed inside the bot; the sheet made and cached; `/gallery` and a Next
   click through Discord; the contact sheet as PNG, WebP and JPEG.

Figures also go to `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from bench.common import percentile
from bench.harness import (
    BotHandle,
    ProcessSampler,
    base_settings,
    cpu_seconds,
    default,
    fake_api,
    machine_load,
    probe_api,
    running,
    seed_gallery,
)
from bot import imaging, runtime
from tests.fakes.discord_models import CB_MESSAGE
from tests.fakes.discord_server import FakeDiscord, FakeGuild, FakeMessage, FakeUser
from tests.fakes.nanobanana_server import render_png

RESULTS_PATH = Path(__file__).parent / "results" / "latest.json"
ACK_DEADLINE = 3.0
# Steps of a job, from the bot's marks: (label, from mark, to mark).
STEPS = (
    ("before API (worker start -> request sent)", "started", "api_sent"),
    ("API exchange (request sent -> answer read)", "api_sent", "api_answered"),
    ("decode + check (answer read -> decoded)", "api_answered", "decoded"),
    ("answer read -> Discord upload call", "api_answered", "delivering"),
    ("upload to Discord (call -> done)", "delivering", "delivered"),
    ("thumbnails (upload call -> made, in the pool)", "delivering", "thumbnails"),
    ("object writes (upload call -> written)", "delivering", "stored"),
    ("COMPLETED commit (thumbnails -> committed)", "thumbnails", "committed"),
)


def ms(seconds: float) -> float:
    return seconds * 1000


def wall_to_monotonic(wall: float) -> float:
    """A `time.time()` stamp (the fake Discord's `edited_at`) on the monotonic clock."""
    return wall - (time.time() - time.monotonic())


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Config:
    latency: float
    concurrency: int
    requests: int
    users: int
    image_size: int
    gallery_images: int
    collector_images: int
    loop: str
    orjson: bool
    connections: int
    in_process: bool
    quick: bool
    profile: str = ""
    lenient: bool = False
    compare: bool = False
    skip_gallery: bool = False


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, help="fake API latency L, s (0.5)")
    parser.add_argument("--concurrency", type=int, help="MAX_CONCURRENT_GENERATIONS K (4)")
    parser.add_argument("--requests", type=int, help="/generate in the burst (200)")
    parser.add_argument("--users", type=int, help="members sending them (50)")
    parser.add_argument("--image-size", type=int, help="long side of the answers (2048)")
    parser.add_argument("--gallery-images", type=int, help="images in the database (1000000)")
    parser.add_argument("--collector-images", type=int, help="of which one member's (100000)")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--no-orjson", action="store_true", help="discord.py on stdlib json")
    parser.add_argument(
        "--connections",
        type=int,
        default=default("discord_connections"),
        help="DISCORD_CONNECTIONS (0: discord.py's unbounded pool)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="bot, fakes and driver in one process (the old measurement)",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument(
        "--profile",
        choices=("ack", "burst"),
        default="",
        help="py-spy the bot's process during the first second of the burst "
        "(ack) or all of it (burst); bench/results/burst-profile.txt",
    )
    parser.add_argument("--skip-gallery", action="store_true", help="the burst only")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="bursts only, alternating: uvloop vs asyncio, orjson vs json, "
        "32 keep-alive connections vs discord.py's unbounded pool",
    )
    parser.add_argument(
        "--lenient-discord",
        action="store_true",
        help="the fake Discord skips its spec checks (to see their cost)",
    )
    args = parser.parse_args(argv)
    values: dict[str, Any] = {
        "latency": 0.5, "concurrency": 4, "requests": 200, "users": 50, "image_size": 2048,
        "gallery_images": 1_000_000, "collector_images": 100_000,
    }  # fmt: skip
    if args.quick:
        values.update(latency=0.1, requests=30, users=10, image_size=512,
                      gallery_images=20_000, collector_images=5_000)  # fmt: skip
    for name in list(values):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return Config(loop=args.loop, orjson=not args.no_orjson, connections=args.connections,
                  in_process=args.in_process, quick=args.quick, profile=args.profile,
                  skip_gallery=args.skip_gallery, lenient=args.lenient_discord,
                  compare=args.compare,
                  **values)  # fmt: skip


# ------------------------------------------------------------------------------ results


@dataclass
class Burst:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    failed: int = 0
    delivered: int = 0
    ack_p50_ms: float = math.nan
    ack_p99_ms: float = math.nan
    ack_max_ms: float = math.nan
    late: int = 0
    wall_s: float = math.nan
    ideal_s: float = math.nan
    measured_l_s: float = math.nan
    ideal_measured_s: float = math.nan
    efficiency: float = math.nan
    efficiency_measured: float = math.nan
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    profile: list[tuple[str, float, float]] = field(default_factory=list)
    answer_to_stored_p50_ms: float = math.nan
    rest_calls: int = 0
    rate_limited: int = 0
    cpu_cores: float = math.nan
    # The bot's own CPU (its process only, from /proc) over the burst, per image shown: acks,
    # refusals, delivery and storing included.
    cpu_ms_per_image: float = math.nan
    lag_p99_ms: float = math.nan
    lag_max_ms: float = math.nan
    rss_ready_mib: float = math.nan
    rss_peak_mib: float = math.nan
    pool_rss_peak_mib: float = math.nan


@dataclass
class Gallery:
    images: int = 0
    collector: int = 0
    first_p50_ms: float = math.nan
    first_p99_ms: float = math.nan
    deep1k_p99_ms: float = math.nan
    deep_rows: int = 0
    deep_p50_ms: float = math.nan
    deep_p99_ms: float = math.nan
    total_shown: int = 0
    sheet_made_ms: float = math.nan
    sheet_cached_ms: float = math.nan
    sheet_kib: float = math.nan
    slash_ack_p50_ms: float = math.nan
    slash_p50_ms: float = math.nan
    next_ack_p50_ms: float = math.nan
    next_p50_ms: float = math.nan
    formats: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed_s: float = 0.0
    ready_s: float = 0.0


@dataclass
class Talk:
    """A five-turn conversation beside single /generate calls (ms, image shown)."""

    generate_ms: list[float] = field(default_factory=list)
    turns_ms: list[float] = field(default_factory=list)

    @property
    def overhead_ms(self) -> float:
        """A turn's time beyond a single /generate's (medians)."""
        if not self.turns_ms or not self.generate_ms:
            return math.nan
        return percentile(self.turns_ms, 50) - percentile(self.generate_ms, 50)


@dataclass
class Results:
    config: Config
    host: dict[str, Any]
    burst: Burst = field(default_factory=Burst)
    talk: Talk = field(default_factory=Talk)
    gallery: Gallery = field(default_factory=Gallery)
    problems: list[str] = field(default_factory=list)
    total_s: float = 0.0


# ------------------------------------------------------------------------------ the burst


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


def delivered_at(rec: Any) -> float | None:
    for snapshot in rec.edits:
        if has_image(snapshot) and snapshot.edited_at is not None:
            return wall_to_monotonic(snapshot.edited_at)
    return None


def ended(rec: Any) -> bool:
    """Shown, or failed / refused after the answer (its public message deleted)."""
    return delivered_at(rec) is not None or (rec.original is not None and rec.original.deleted)


async def run_burst(
    fake: FakeDiscord, users: list[FakeUser], bot: BotHandle, api_url: str, config: Config
) -> Burst:
    """Send the burst, wait for every outcome, and compute the figures."""
    result = Burst()
    probe = await probe_api(api_url)
    result.measured_l_s = percentile(probe, 50)
    prompts = [f"bench job {n:04d}" for n in range(config.requests)]
    patience = 120 + 20 * math.ceil(config.requests / config.concurrency) * config.latency
    rest_before, hits_before = fake.request_count, len(fake.ratelimits.hits)
    cpu_before, wall_before = cpu_seconds(bot.pid), time.monotonic()
    await bot.lag_start()
    spy = await start_profile(bot.pid, config.profile) if config.profile else None
    with ProcessSampler(bot.pid) as sampler:
        result.rss_ready_mib = sampler.first_mib
        recs = list(
            await asyncio.gather(
                *(fake.slash("generate", {"prompt": p}, user=users[n % len(users)])
                  for n, p in enumerate(prompts))
            )
        )  # fmt: skip
        await asyncio.gather(
            *(rec.wait_for(lambda r: r.callbacks or r.expired, timeout=patience) for rec in recs)
        )
        accepted = [r for r in recs if r.callback_type == CB_MESSAGE and not r.ephemeral]
        await asyncio.gather(*(r.wait_for(ended, timeout=patience) for r in accepted))
        # The last finishers store after showing: wait until the bot has every job's marks.
        for _ in range(600):
            if len(await bot.marks()) >= len(accepted):
                break
            await asyncio.sleep(0.05)
    if spy is not None:
        result.profile = await stop_profile(spy)
    lags = await bot.lag()
    cpu_spent = cpu_seconds(bot.pid) - cpu_before
    result.cpu_cores = cpu_spent / (time.monotonic() - wall_before)
    result.rss_peak_mib, result.pool_rss_peak_mib = sampler.peak_mib, sampler.peak_children_mib
    result.lag_p99_ms = percentile(lags, 99)
    result.lag_max_ms = max(lags, default=math.nan)
    result.rest_calls = fake.request_count - rest_before
    result.rate_limited = len(fake.ratelimits.hits) - hits_before
    acks = [r.ack_latency for r in recs if r.ack_latency is not None]
    result.sent = len(recs)
    result.accepted = len(accepted)
    result.refused = sum(1 for r in recs if r.ephemeral)
    result.failed = sum(1 for r in accepted if delivered_at(r) is None)
    result.ack_p50_ms, result.ack_p99_ms = ms(percentile(acks, 50)), ms(percentile(acks, 99))
    result.ack_max_ms = ms(max(acks, default=math.nan))
    result.late = sum(1 for r in recs if r.expired and not r.responded)
    shown = [t for t in (delivered_at(r) for r in accepted) if t is not None]
    sent = [r.sent_at for r in recs if r.sent_at is not None]
    result.delivered = len(shown)
    result.cpu_ms_per_image = 1000 * cpu_spent / len(shown) if shown else math.nan
    if shown and sent:
        result.wall_s = max(shown) - min(sent)
    rounds = math.ceil(result.accepted / config.concurrency)
    result.ideal_s = rounds * config.latency
    result.ideal_measured_s = rounds * result.measured_l_s
    result.efficiency = result.wall_s / result.ideal_s if result.ideal_s else math.nan
    result.efficiency_measured = (
        result.wall_s / result.ideal_measured_s if result.ideal_measured_s else math.nan
    )
    marks = {row["prompt"]: row["marks"] for row in await bot.marks()}
    for label, start, end in STEPS:
        values = [m[end] - m[start] for m in marks.values() if start in m and end in m]
        result.steps[label] = (ms(percentile(values, 50)), ms(percentile(values, 99)))
    stored_by_discord = []
    for prompt, rec in zip(prompts, recs, strict=True):
        shown_at, mark = delivered_at(rec), marks.get(prompt, {})
        if shown_at is not None and "api_answered" in mark:
            stored_by_discord.append(shown_at - mark["api_answered"])
    result.answer_to_stored_p50_ms = ms(percentile(stored_by_discord, 50))
    return result


# ------------------------------------------------------------------------------ a conversation


async def run_talk(fake: FakeDiscord, guild: FakeGuild, talker: FakeUser, turns: int = 5) -> Talk:
    """Single /generate calls, then a conversation of `turns` replies, one at a time."""
    result = Talk()
    channel = guild.default_channel
    shown: FakeMessage | None = None
    for n in range(3):
        rec = await fake.slash("generate", {"prompt": f"a talking banana {n}"}, user=talker)
        message = await rec.wait_original(has_image, timeout=120)
        at = delivered_at(rec)
        assert rec.sent_at is not None and at is not None
        result.generate_ms.append(ms(at - rec.sent_at))
        shown = message
    assert shown is not None
    mention = f"<@{fake.bot_user.id}>"
    for n in range(turns):
        started = time.monotonic()
        reply = await fake.post_message(
            channel, talker, f"{mention} turn {n + 1}: add one more hat", reply_to=shown
        )

        def answer(reply: FakeMessage = reply) -> FakeMessage | None:
            for m in fake.channel_messages(channel):
                ref = m.message_reference or {}
                if str(ref.get("message_id")) == str(reply.id) and has_image(m):
                    return m
            return None

        found = await fake.wait_for(answer, 120)
        assert isinstance(found, FakeMessage)
        result.turns_ms.append(ms(time.monotonic() - started))
        shown = found
    return result


# ------------------------------------------------------------------------------ profiling

PROFILE_PATH = Path(__file__).parent / "results" / "burst-profile.txt"


async def start_profile(pid: int, what: str) -> asyncio.subprocess.Process:
    """py-spy sampling the bot's process (all its threads; idle ones left out): for the
    first second of the burst ("ack", where the acknowledgements are) or until stopped."""
    PROFILE_PATH.parent.mkdir(parents=True, exist_ok=True)
    window = ["--duration", "2"] if what == "ack" else []
    spy = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate",
        "500", "--format", "raw", "--output", str(PROFILE_PATH), "--nonblocking", *window,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0 if what != "ack" else 0.9)  # py-spy attaches
    return spy


async def stop_profile(spy: asyncio.subprocess.Process) -> list[tuple[str, float, float]]:
    """Stop py-spy; the busiest functions as (name, self %, inclusive %) of all samples."""
    if spy.returncode is None:
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
    await spy.wait()
    return summarize_profile(PROFILE_PATH.read_text())


def summarize_profile(collapsed: str, top: int = 25) -> list[tuple[str, float, float]]:
    """From py-spy's collapsed stacks ("frame;frame;... count" lines)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " " + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
                  for f in stack.split(";")]  # fmt: skip
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return []
    ranked = sorted(inclusive, key=lambda f: own.get(f, 0), reverse=True)[:top]
    return [(f, 100 * own.get(f, 0) / total, 100 * inclusive[f] / total) for f in ranked]


# ------------------------------------------------------------------------------ the gallery


def tiles() -> list[tuple[bytes, bytes]]:
    """Nine small distinct PNGs and their real thumbnails."""
    out = []
    for n in range(9):
        colour = ((n * 70) % 256, (n * 130 + 60) % 256, (n * 200 + 30) % 256)
        buffer = io.BytesIO()
        PILImage.new("RGB", (320, 320), colour).save(buffer, "PNG")
        out.append((buffer.getvalue(), imaging.make_thumbnail(buffer.getvalue(), 256)))
    return out


def sheet_formats() -> dict[str, tuple[float, float]]:
    """The contact sheet of nine photo-like thumbnails as PNG, WebP and JPEG: (ms, KiB)."""
    thumbs = [imaging.make_thumbnail(render_png(1024 + 16 * n, 1024), 256) for n in range(9)]
    found = {}
    for fmt in ("PNG", "WEBP", "JPEG"):
        imaging.contact_sheet(thumbs, format=fmt)
        started = time.perf_counter()
        for _ in range(5):
            sheet = imaging.contact_sheet(thumbs, format=fmt)
        found[fmt] = (ms((time.perf_counter() - started) / 5), len(sheet) / 1024)
    return found


async def run_gallery(
    fake: FakeDiscord, guild: FakeGuild, collector: FakeUser, api_url: str, config: Config,
    folder: Path,
) -> Gallery:  # fmt: skip
    result = Gallery(images=config.gallery_images, collector=config.collector_images)
    started = time.perf_counter()
    _, cursors = await seed_gallery(
        folder, collector.id, guild.id, total=config.gallery_images,
        collector=config.collector_images, tiles=tiles(),
    )  # fmt: skip
    result.seed_s = time.perf_counter() - started
    result.deep_rows = min(50_000, config.collector_images // 2)
    settings = base_settings(folder, fake, api_url, guild.id)
    started = time.perf_counter()
    async with running(fake, settings, in_process=config.in_process, loop=config.loop,
                       orjson=config.orjson) as bot:  # fmt: skip
        result.ready_s = time.perf_counter() - started
        timing = await bot.gallery(
            {"discord_id": collector.id, "guild_id": guild.id, "repeats": 200,
             "cursors": {"deep1k": cursors[0], "deep": cursors[1]}}
        )  # fmt: skip
        first, deep = timing["first"]["ms"], timing["deep"]["ms"]
        result.first_p50_ms, result.first_p99_ms = percentile(first, 50), percentile(first, 99)
        result.deep1k_p99_ms = percentile(timing["deep1k"]["ms"], 99)
        result.deep_p50_ms, result.deep_p99_ms = percentile(deep, 50), percentile(deep, 99)
        result.total_shown = timing["first"]["total"]
        result.sheet_made_ms = timing["sheet"]["made_ms"]
        result.sheet_cached_ms = timing["sheet"]["cached_ms"]
        result.sheet_kib = timing["sheet"]["bytes"] / 1024
        slash, acks, nexts, next_acks = [], [], [], []
        for _ in range(5):
            rec = await fake.slash("gallery", {}, user=collector)
            message = await rec.wait_original(lambda m: bool(m.filenames), timeout=60)
            assert rec.sent_at is not None and message.edited_at is not None
            slash.append(wall_to_monotonic(message.edited_at) - rec.sent_at)
            acks.append(rec.ack_latency or math.nan)
            click = await fake.click(message, label="Next", user=collector)
            await click.wait_for(lambda r: bool(r.edits), timeout=60)
            assert click.sent_at is not None and click.edits[-1].edited_at is not None
            nexts.append(wall_to_monotonic(click.edits[-1].edited_at) - click.sent_at)
            next_acks.append(click.ack_latency or math.nan)
        result.slash_p50_ms, result.slash_ack_p50_ms = (
            ms(percentile(slash, 50)),
            ms(percentile(acks, 50)),
        )
        result.next_p50_ms = ms(percentile(nexts, 50))
        result.next_ack_p50_ms = ms(percentile(next_acks, 50))
    result.formats = sheet_formats()
    return result


# ------------------------------------------------------------------------------ the run


async def run(config: Config) -> Results:
    results = Results(
        config=config,
        host={
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": machine_load(),
            "max_jobs_per_user": default("max_jobs_per_user"),
        },
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as temp:
        root = Path(temp)
        async with (
            FakeDiscord(validate=not config.lenient) as fake,
            fake_api(
                latency=config.latency, image_size=config.image_size, in_process=config.in_process
            ) as api,
        ):
            guild = fake.add_guild("Bench Guild")
            users = [fake.add_user(f"user{n:03d}", guilds=[guild]) for n in range(config.users)]
            collector = fake.add_user("collector", guilds=[guild])
            talker = fake.add_user("talker", guilds=[guild])
            settings = base_settings(root / "burst", fake, api.base_url, guild.id)
            settings.update(
                max_concurrent_generations=config.concurrency,
                discord_connections=config.connections,
                # Only the per-member job limit refuses: the burst measures the pipeline.
                rate_limits={"generate": 10_000},
            )
            async with running(fake, settings, in_process=config.in_process, loop=config.loop,
                               orjson=config.orjson) as bot:  # fmt: skip
                results.burst = await run_burst(fake, users, bot, api.base_url, config)
                results.talk = await run_talk(fake, guild, talker)
            if not config.skip_gallery:
                results.gallery = await run_gallery(
                    fake, guild, collector, api.base_url, config, root / "gallery"
                )
            results.problems = fake.problems()
    results.host["load_after"] = machine_load()
    results.total_s = time.perf_counter() - started
    return results


# ------------------------------------------------------------------------------ variants

VARIANTS: dict[str, dict[str, Any]] = {
    "as shipped (uvloop, orjson, 32 connections)": {},
    "asyncio's own loop": {"loop": "asyncio"},
    "discord.py on stdlib json": {"orjson": False},
    "discord.py's unbounded pool": {"connections": 0},
}


async def compare(config: Config, rounds: int = 2) -> dict[str, list[Burst]]:
    """The burst under each variant, alternating (A B C D A B C D), each on a fresh bot and
    database: what each of the ecosystem's speed-ups pays, in one run."""
    found: dict[str, list[Burst]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as temp:
        async with (
            FakeDiscord() as fake,
            fake_api(latency=config.latency, image_size=config.image_size,
                     in_process=False) as api,
        ):  # fmt: skip
            guild = fake.add_guild("Bench Guild")
            for n in range(rounds):
                for index, (name, change) in enumerate(VARIANTS.items()):
                    # New members each time: every burst is of first-time members.
                    users = [fake.add_user(f"u{n}-{index}-{k}", guilds=[guild])
                             for k in range(config.users)]  # fmt: skip
                    variant = replace(config, **change)
                    settings = base_settings(Path(temp) / f"{n}-{index}", fake, api.base_url,
                                             guild.id)  # fmt: skip
                    settings.update(max_concurrent_generations=config.concurrency,
                                    discord_connections=variant.connections,
                                    rate_limits={"generate": 10_000})  # fmt: skip
                    async with running(fake, settings, in_process=False, loop=variant.loop,
                                       orjson=variant.orjson) as bot:  # fmt: skip
                        found[name].append(await run_burst(fake, users, bot, api.base_url, variant))
    return found


def print_compare(found: dict[str, list[Burst]]) -> None:
    print("Variants, alternating in one run (each figure: one burst per round)")
    print(f"{'variant':<46}{'ack p50 ms':>16}{'ack p99 ms':>16}{'efficiency':>16}"
          f"{'CPU cores':>14}{'RSS MiB':>14}")  # fmt: skip
    for name, bursts in found.items():
        columns: list[tuple[Callable[[Burst], float], int, int]] = [
            (lambda b: b.ack_p50_ms, 0, 16),
            (lambda b: b.ack_p99_ms, 0, 16),
            (lambda b: b.efficiency_measured, 3, 16),
            (lambda b: b.cpu_cores, 2, 14),
            (lambda b: b.rss_peak_mib, 0, 14),
        ]
        line = f"{name:<46}"
        for get, digits, width in columns:
            line += f"{' / '.join(fmt(get(b), digits) for b in bursts):>{width}}"
        print(line)


# ------------------------------------------------------------------------------ output


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def verdict(value: float, limit: float) -> str:
    if math.isnan(value):
        return ""
    return "met" if value <= limit else "MISSED"


def rows(results: Results) -> list[tuple[str, str, str, str]]:
    b, g, c = results.burst, results.gallery, results.config
    out = [
        ("requests sent / accepted / refused (per-member limit)",
         f"{b.sent} / {b.accepted} / {b.refused}", "", ""),
        ("jobs shown / failed", f"{b.delivered} / {b.failed}", "", ""),
        ("[1] ack p50 (ms)", fmt(b.ack_p50_ms), "", ""),
        ("[1] ack p99 (ms)", fmt(b.ack_p99_ms), "< 100", verdict(b.ack_p99_ms, 100)),
        ("[1] ack max (ms)", fmt(b.ack_max_ms), "< 3000", verdict(b.ack_max_ms, 3000)),
        ("[1] answered after Discord's 3 s", str(b.late), "0", verdict(b.late, 0)),
        ("[2] burst wall time (s)", fmt(b.wall_s, 2), "", ""),
        (f"[2] ideal ceil(acc/K)*L, L={c.latency:g} s (s)", fmt(b.ideal_s, 2), "", ""),
        ("[2] efficiency against L", fmt(b.efficiency, 3), "<= 1.10",
         verdict(b.efficiency, 1.10)),
        ("[2] fake API's real answer time, probed (s)", fmt(b.measured_l_s, 3), "", ""),
        ("[2] efficiency against the measured answer time", fmt(b.efficiency_measured, 3),
         "<= 1.10", verdict(b.efficiency_measured, 1.10)),
    ]  # fmt: skip
    for label, (p50, p99) in b.steps.items():
        aim, met = "", ""
        if label.startswith("answer read -> Discord upload call"):
            aim, met = "p50 < 25", verdict(p50, 25)
        out.append((f"[3] {label} p50 / p99 (ms)", f"{fmt(p50)} / {fmt(p99)}", aim, met))
    out += [
        ("[3] answer read -> image stored by Discord p50 (ms)", fmt(b.answer_to_stored_p50_ms),
         "", ""),
        ("Discord REST calls during the burst / 429s", f"{b.rest_calls} / {b.rate_limited}",
         "", ""),
        (f"bot CPU during the burst (cores of {os.cpu_count()})", fmt(b.cpu_cores, 2), "", ""),
        ("bot CPU per image shown (ms, its process only)", fmt(b.cpu_ms_per_image, 1), "<= 30",
         verdict(b.cpu_ms_per_image, 30.001)),
        ("bot event-loop lag p99 / max (ms)", f"{fmt(b.lag_p99_ms)} / {fmt(b.lag_max_ms)}",
         "", ""),
        ("[4] bot RSS ready (MiB)", fmt(b.rss_ready_mib), "", ""),
        ("[4] bot RSS peak during the burst (MiB)", fmt(b.rss_peak_mib), "< 300",
         verdict(b.rss_peak_mib, 300)),
        ("[4]   its image pool's processes, peak (MiB)", fmt(b.pool_rss_peak_mib), "", ""),
        (f"[5] gallery: {g.images:,} images, {g.collector:,} one member's (seeded in "
         f"{g.seed_s:.0f} s)", f"total shown {g.total_shown:,}", "", ""),
        ("[5] page 1: rows + total p50 / p99 (ms)",
         f"{fmt(g.first_p50_ms, 2)} / {fmt(g.first_p99_ms, 2)}", "p99 < 5",
         verdict(g.first_p99_ms, 5)),
        ("[5] after 1,000 rows: p99 (ms)", fmt(g.deep1k_p99_ms, 2), "p99 < 5",
         verdict(g.deep1k_p99_ms, 5)),
        (f"[5] after {g.deep_rows:,} rows: p50 / p99 (ms)",
         f"{fmt(g.deep_p50_ms, 2)} / {fmt(g.deep_p99_ms, 2)}", "p99 < 5",
         verdict(g.deep_p99_ms, 5)),
        ("[5] sheet made / cached (ms), size (KiB)",
         f"{fmt(g.sheet_made_ms)} / {fmt(g.sheet_cached_ms, 2)}, {fmt(g.sheet_kib)}", "", ""),
        ("[5] /gallery: ack p50 / sheet shown p50 (ms)",
         f"{fmt(g.slash_ack_p50_ms)} / {fmt(g.slash_p50_ms)}", "", ""),
        ("[5] Next click: ack p50 / page shown p50 (ms)",
         f"{fmt(g.next_ack_p50_ms)} / {fmt(g.next_p50_ms)}", "", ""),
    ]  # fmt: skip
    for name, (took, kib) in g.formats.items():
        out.append((f"[5] contact sheet as {name}: ms, KiB", f"{fmt(took)}, {fmt(kib)}", "", ""))
    talk = results.talk
    if talk.turns_ms:
        out += [
            ("[6] single /generate, sent -> shown p50 (ms)",
             fmt(percentile(talk.generate_ms, 50)), "", ""),
            ("[6] conversation turns 1-5, posted -> shown (ms)",
             " / ".join(fmt(t, 0) for t in talk.turns_ms), "", ""),
            ("[6] a turn's overhead beside /generate, p50 (ms)", fmt(talk.overhead_ms), "", ""),
        ]  # fmt: skip
    return out


def print_report(results: Results) -> None:
    c, host = results.config, results.host
    where = "one process (--in-process)" if c.in_process else "bot alone in its own process"
    print(f"Bot benchmark: {where}; fake Discord in the driver, fake API "
          f"{'in the driver' if c.in_process else 'in its own process'}")  # fmt: skip
    print(
        f"cpus={host['cpus']} python={host['python']} L={c.latency:g}s K={c.concurrency} "
        f"N={c.requests} from {c.users} members, image {c.image_size}², per-member limit "
        f"{host['max_jobs_per_user']}, loop={c.loop}, orjson={'on' if c.orjson else 'off'}, "
        f"Discord connections={c.connections or 'unbounded'}{' (quick)' if c.quick else ''}"
    )
    print(f"load average before: {host['load_before']}; after: {host.get('load_after')}\n")
    table = rows(results)
    width = max(len(r[0]) for r in table) + 2
    value_width = max(len(r[1]) for r in table) + 2
    print(f"{'metric':<{width}}{'figure':>{value_width}}  {'aim':<10}")
    print("-" * (width + value_width + 20))
    for label, value, aim, met in table:
        print(f"{label:<{width}}{value:>{value_width}}  {aim:<10}{met}")
    if results.burst.profile:
        print(f"\npy-spy of the bot's process during the burst ({PROFILE_PATH.name}): "
              "self % / inclusive % of samples")  # fmt: skip
        for name, own, inclusive in results.burst.profile:
            print(f"  {own:5.1f} {inclusive:5.1f}  {name}")
    print(f"\nTotal {results.total_s:.0f} s; figures in {RESULTS_PATH}")
    if results.problems:
        print(f"\n{len(results.problems)} request(s) real Discord would refuse:")
        for problem in results.problems[:20]:
            print(f"  {problem}")


def without_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    if config.compare:
        print(f"load average before: {machine_load()}")
        found = runtime.run(lambda: compare(config))
        print(f"load average after: {machine_load()}")
        print_compare(found)
        return
    # The driver (the fake Discord) on uvloop too: its own CPU is not what is measured.
    results = runtime.run(lambda: run(config))
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(without_nan(asdict(results)), indent=2) + "\n")
    print_report(results)
    if results.problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
