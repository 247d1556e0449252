"""`kill -9` of a running bot leaves no process of it behind: its image pool (the forkserver,
the worker it forked, multiprocessing's resource tracker) ends with it, as after a SIGTERM.

A SIGKILLed process runs no clean-up, so this holds only if the pool's processes notice on
their own that the bot is gone (bot/services/imagework.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from tests.fakes.discord_server import FakeDiscord
from tests.reliability.scenario import ROOT, BotProcess


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those not ended (a zombie has ended: only its exit status waits to be collected)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended (at most `timeout` seconds); those still running."""
    deadline = time.monotonic() + timeout
    alive = still_running(processes)
    while alive and time.monotonic() < deadline:
        # Our own children are reaped by psutil's wait; others are polled.
        psutil.wait_procs(alive, timeout=0.1)
        alive = still_running(alive)
    return alive


async def test_sigkill_of_the_bot_leaves_no_process_behind(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Kill")
        alice = fake.add_user("alice", guilds=[guild])
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "GEMINI"))},
            "PYTHONPATH": str(ROOT),
            "FAKE_DISCORD_URL": fake.base_url,
            "FAKE_GATEWAY_URL": fake.gateway_url,
            "DISCORD_TOKEN": "fake-bot-token",
            "DISCORD_GUILD_IDS": str(guild.id),
            "DATABASE_PATH": str(tmp_path / "bot.db"),
            "LOCAL_STORAGE_DIR": str(tmp_path / "objects"),
            "IMAGE_WORKERS": "2",
        }
        bot = BotProcess(fake, env, tmp_path / "bot.log")
        await bot.start(alice)
        assert bot.process is not None
        descendants = psutil.Process(bot.process.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in descendants]
        # The pool is up (started before the bot answers): a forkserver and its two workers.
        assert sum("multiprocessing.forkserver" in c for c in commands) == 3, commands
        bot.kill()
        assert await bot.wait(timeout=10) == -9
        left = wait_gone(descendants, timeout=10)
        assert not left, [" ".join(p.cmdline()) for p in left]
