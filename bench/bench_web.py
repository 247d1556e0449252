"""Benchmark the web server: the REST API and the gallery pages. Prints figures only.

    python -m bench.bench_web [--images 5000] [--requests 400] [--concurrency 8] [--jobs 20]

The real `NanoBananaBot` (logged in to `FakeDiscord`, generating against `FakeNanobanana` with
no latency) serves its web server on a loopback port; an aiohttp client in the same process and
event loop sends the requests, so every figure includes the client's own work. One member has a
gallery of `--images` images (raw rows over 9 real objects, as bench_bot seeds it).

1. GET /api/v1/images?limit=24: the first page and a deep page (by cursor), p50/p95 and
   requests per second at `--concurrency`.
2. GET /api/v1/images/{id}/thumbnail through the app (local storage, access-checked).
3. GET /servers/{id}: the gallery page rendered for a signed-in visitor (24 thumbnails).
4. POST /api/v1/images/generate then polling GET /api/v1/jobs/{id} every 10 ms until
   COMPLETED, one job at a time: submit-to-completed time with an instant fake model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.bench_bot import tiles
from bench.common import percentile
from bot.app import NanoBananaBot
from bot.config import load_settings
from bot.services.permissions import Identity
from storage.db import Transaction
from storage.timeutil import to_iso, utcnow
from tests.fakes.discord_server import FakeDiscord, running_bot
from tests.fakes.nanobanana_server import FakeNanobanana
from web.sessions import Sessions


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def seed_gallery(bot: NanoBananaBot, owner_id: str, guild_id: int, count: int) -> None:
    """`count` COMPLETED images for one member in one server by raw SQL (with the gallery
    counters to match), cycling over 9 real objects."""
    keys = []
    for n, (png, thumb) in enumerate(tiles()):
        key, thumb_key = f"images/bench-gallery/{n}.png", f"thumbnails/bench-gallery/{n}.webp"
        await bot.store.put(key, png, "image/png")
        await bot.store.put(thumb_key, thumb, "image/webp")
        keys.append((key, thumb_key))
    start = utcnow() - timedelta(days=30)
    metadata = json.dumps({"mime_type": "image/png", "width": 320, "height": 320})
    rows = []
    for i in range(count):
        stamp = to_iso(start + timedelta(milliseconds=i))
        key, thumb_key = keys[i % len(keys)]
        rows.append((str(uuid.uuid4()), owner_id, str(guild_id), f"gallery image {i}", key,
                     thumb_key, metadata, stamp, stamp))  # fmt: skip
    sql = (
        "INSERT INTO images (id, user_id, guild_id, type, status, prompt, storage_key, "
        "thumbnail_key, metadata, coins_used, created_at, updated_at) "
        "VALUES (?, ?, ?, 'GENERATED', 'COMPLETED', ?, ?, ?, ?, 100, ?, ?)"
    )
    counter = (
        "INSERT INTO gallery_counts (user_id, guild_id, type, count) "
        "VALUES (?, ?, 'GENERATED', ?) ON CONFLICT (user_id, guild_id, type) "
        "DO UPDATE SET count = gallery_counts.count + excluded.count"
    )

    async def insert(tx: Transaction) -> None:
        await tx.executemany(sql, rows)
        await tx.execute(counter, (owner_id, str(guild_id), count))

    await bot.db.write(insert)


async def measure(
    requests: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> tuple[list[float], float]:
    """Latencies of `requests` calls, `concurrency` at a time; and the wall time."""
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker() -> None:
        for n in queue:
            started = time.perf_counter()
            await call(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def line(label: str, latencies: Sequence[float], wall: float) -> str:
    return (
        f"{label:<48} p50 {ms(percentile(latencies, 50)):>7} ms  p95 "
        f"{ms(percentile(latencies, 95)):>7} ms  {len(latencies) / wall:>7.0f} req/s"
    )


async def run(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fake = await stack.enter_async_context(FakeDiscord())
        api = await stack.enter_async_context(FakeNanobanana(image_size=512))
        guild = fake.add_guild("Bench Guild")
        member = fake.add_user("collector", guilds=[guild])
        settings = load_settings(
            _env_file=None, discord_token="fake-bot-token", discord_guild_ids=[guild.id],
            database_path=root / "bot.db", local_storage_dir=root / "objects",
            gemini_api_key="bench-key", nanobanana_base_url=api.base_url, web_port=0,
            starter_coins=10**9, max_jobs_per_user=100, api_rate_limit=100_000,
        )  # fmt: skip
        bot = NanoBananaBot(settings, web_listen=0, guild_ready_timeout=0)
        await stack.enter_async_context(running_bot(fake, bot))
        assert bot.web is not None
        base = bot.web.url
        identity = Identity(member.id, "collector", guild_id=guild.id)
        entered = await bot.members.enter(identity)
        await bot.wallets.open(entered.user, guild.id)
        await seed_gallery(bot, entered.user.id, guild.id, args.images)
        token = (await bot.tokens.create(entered, "bench")).secret
        headers = {"Authorization": f"Bearer {token}"}
        http = await stack.enter_async_context(aiohttp.ClientSession(headers=headers))

        async def get(url: str) -> None:
            async with http.get(url, allow_redirects=False) as response:
                await response.read()
                assert response.status == 200, response.status

        async with http.get(f"{base}/api/v1/images?limit=24") as response:
            first = await response.json()
        image_id = first["images"][0]["id"]
        deep_cursor = first["next_cursor"]
        for _ in range(200):  # walk to page 200
            async with http.get(f"{base}/api/v1/images?limit=24&cursor={deep_cursor}") as r:
                deep_cursor = (await r.json())["next_cursor"]
        print(f"web server benchmark: gallery of {args.images} images, {args.requests} "
              f"requests per row, {args.concurrency} at a time")  # fmt: skip
        rows = [
            ("GET /api/v1/images (first page)", f"{base}/api/v1/images?limit=24"),
            ("GET /api/v1/images (page 201, by cursor)",
             f"{base}/api/v1/images?limit=24&cursor={deep_cursor}"),
            ("GET /api/v1/images/{id}/thumbnail", f"{base}/api/v1/images/{image_id}/thumbnail"),
        ]  # fmt: skip
        for label, url in rows:

            async def fetch(_n: int, url: str = url) -> None:
                await get(url)

            latencies, wall = await measure(args.requests, args.concurrency, fetch)
            print(line(label, latencies, wall))

        # The gallery page, as a signed-in browser gets it.
        cookie_maker = Sessions(await bot.web_secret(), secure=False)
        holder = web.Response()
        opened = await bot.web_sessions.open(member.id, "collector", [guild.id])
        cookie_maker.start(holder, opened.id)
        cookie = holder.cookies["nb_session"].value
        pages = await stack.enter_async_context(
            aiohttp.ClientSession(cookies={"nb_session": cookie})
        )

        async def page(_n: int) -> None:
            async with pages.get(f"{base}/servers/{guild.id}") as response:
                await response.read()
                assert response.status == 200

        latencies, wall = await measure(args.requests, args.concurrency, page)
        print(line("GET /servers/{id} (HTML, 24 thumbnails)", latencies, wall))

        # Generation through the API, one job at a time.
        done: list[float] = []
        for n in range(args.jobs):
            started = time.perf_counter()
            async with http.post(f"{base}/api/v1/images/generate",
                                 json={"prompt": f"bench {n}"}) as response:  # fmt: skip
                job = (await response.json())["job"]
            while True:
                async with http.get(f"{base}/api/v1/jobs/{job['id']}") as response:
                    status = (await response.json())["status"]
                if status in ("COMPLETED", "FAILED"):
                    break
                await asyncio.sleep(0.01)
            assert status == "COMPLETED"
            done.append(time.perf_counter() - started)
        print(
            f"{'POST generate -> job COMPLETED (fake model: 0 s)':<48} p50 "
            f"{ms(percentile(done, 50)):>7} ms  p95 {ms(percentile(done, 95)):>7} ms  "
            f"({args.jobs} jobs, polled every 10 ms)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_web", description=__doc__)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
