"""The bot alone in its own process, for benchmarks: `python -m bench.bot_process --discord URL`.

Runs the real `NanoBananaBot` (settings from the environment, as `python -m bot run` reads
them) against a fake Discord at URL, on the event loop and memory settings of `bot.runtime`,
plus a small control server on loopback for the benchmark driver. It prints one line
`CONTROL <url>` once the control server listens and `READY` once the bot is ready.

Control (JSON): GET /marks (step times of finished jobs), POST /lag (start a new window of
event-loop lag samples) and GET /lag (the window's samples, ms), GET /stats (pool, limits,
sheet cache), POST /gallery (times gallery pages inside the process; see `gallery_timing`).
Nothing here is used by the bot itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from bot import runtime
from bot.app import NanoBananaBot
from bot.config import load_settings
from bot.logs import secrets_of, setup_logging
from bot.services.permissions import Identity


class LoopLag:
    """How late a 10 ms sleep wakes up on the bot's own loop: what every ready callback waits."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - before - self.interval) * 1000)


async def gallery_timing(bot: NanoBananaBot, body: dict[str, Any]) -> dict[str, Any]:
    """Time `GalleryService.listing` (the page's rows and total) at page 1 and at each given
    keyset cursor, `repeats` times each, plus the sheet of page 1 made and then cached (ms)."""
    identity = Identity(int(body["discord_id"]), "bench", locale="en-US",
                        guild_id=int(body["guild_id"]))  # fmt: skip
    viewer = await bot.accounts.actor(identity)
    assert viewer.user is not None
    repeats = int(body.get("repeats", 200))
    out: dict[str, Any] = {}
    for name, cursor in [("first", None), *body.get("cursors", {}).items()]:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            page = await bot.gallery.listing(viewer, viewer.user, cursor=cursor)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = {"ms": times, "total": page.total, "images": len(page.images)}
    page = await bot.gallery.listing(viewer, viewer.user)
    started = time.perf_counter()
    sheet = await bot.gallery.sheet(page)
    made = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    await bot.gallery.sheet(page)
    cached = (time.perf_counter() - started) * 1000
    out["sheet"] = {"made_ms": made, "cached_ms": cached, "bytes": len(sheet or b"")}
    return out


def control_app(bot: NanoBananaBot, lag: LoopLag) -> web.Application:
    app = web.Application()

    async def marks(request: web.Request) -> web.Response:
        rows = [{"id": i, "prompt": p, "marks": m} for i, p, m in bot.generation.recent_marks]
        return web.json_response(rows)

    async def lag_start(request: web.Request) -> web.Response:
        lag.samples = []
        return web.json_response({})

    async def lag_get(request: web.Request) -> web.Response:
        return web.json_response(lag.samples)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "images_refused": bot.imagework.refused,
                "limits_refused": bot.limits.refused,
                "sheet_hits": bot.gallery.sheets.hits,
                "sheet_misses": bot.gallery.sheets.misses,
                "sheet_cache_bytes": bot.gallery.sheets.bytes,
                "jobs_running": bot.generation.running,
                "jobs_waiting": bot.generation.queue_length,
            }
        )

    async def gallery(request: web.Request) -> web.Response:
        return web.json_response(await gallery_timing(bot, await request.json()))

    app.router.add_get("/marks", marks)
    app.router.add_post("/lag", lag_start)
    app.router.add_get("/lag", lag_get)
    app.router.add_get("/stats", stats)
    app.router.add_post("/gallery", gallery)
    return app


async def serve(discord_url: str, orjson: bool) -> None:
    """Log in to the fake Discord at `discord_url`, serve control, run until SIGTERM."""
    if not orjson:
        # discord.py picks orjson at import time when installed; back to the stdlib's json.
        import json

        discord.utils._from_json = json.loads  # type: ignore[assignment]
        discord.utils.HAS_ORJSON = False
    discord.http.Route.BASE = f"{discord_url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        f"{discord_url.replace('http', 'ws', 1)}/ws"
    )
    settings = load_settings()
    setup_logging(settings.log_level, secrets=secrets_of(settings))
    bot = NanoBananaBot(settings, guild_ready_timeout=0)
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    runner = web.AppRunner(control_app(bot, lag), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"CONTROL http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with bot:
        await bot.login(settings.discord_token.get_secret_value())
        connecting = asyncio.create_task(bot.connect(reconnect=True))
        await bot.wait_until_ready()
        print("READY", flush=True)
        await stop.wait()
        await bot.close()
        with contextlib.suppress(Exception):
            await connecting
    lag_task.cancel()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--discord", required=True, help="the fake Discord's base URL")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    parser.add_argument("--no-orjson", action="store_true", help="discord.py on stdlib json")
    args = parser.parse_args(argv)
    runtime.tune_memory()
    runtime.run(lambda: serve(args.discord, not args.no_orjson), args.loop)
    sys.exit(0)


if __name__ == "__main__":
    main()
