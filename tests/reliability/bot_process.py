"""The real bot in its own process, for the reliability suite to kill with SIGKILL.

`python -m tests.reliability.bot_process` reads the usual settings from the environment,
plus `FAKE_DISCORD_URL` / `FAKE_GATEWAY_URL` (the test's fake Discord) and
`STORE_FAILURE_RATE` / `STORE_FAILURE_SEED` (writes to the object store that fail on purpose).
SIGTERM closes the bot gracefully, as a service manager would: this runs `bot.app.serve`, the
same loop as `python -m bot run`.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

import discord
import discord.gateway
import discord.http
import yarl

from bot.app import NanoBananaBot, build_object_store, serve
from bot.config import load_settings
from bot.logs import setup_logging
from tests.fakes.flaky_store import FlakyStore


async def main() -> int:
    discord.http.Route.BASE = f"{os.environ['FAKE_DISCORD_URL']}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_GATEWAY_URL"])
    settings = load_settings()
    setup_logging(settings.log_level)
    inner = build_object_store(settings)
    store = FlakyStore(
        inner,
        rate=float(os.environ.get("STORE_FAILURE_RATE", "0")),
        rng=random.Random(int(os.environ.get("STORE_FAILURE_SEED", "0"))),
    )
    bot = NanoBananaBot(settings, store=store, guild_ready_timeout=0)
    bot.shutdown_deadline = float(os.environ.get("SHUTDOWN_DEADLINE", "10"))
    async with bot:
        await serve(bot, settings.discord_token.get_secret_value())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
