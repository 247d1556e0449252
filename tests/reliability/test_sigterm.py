"""SIGTERM drains like Ctrl+C: a real signal to the bot in a child process (the same `serve`
loop as `python -m bot run`). Intake stops, the running job finishes and is delivered, the
queued one is refunded and its member told, and the process exits 0."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

from storage.sqlite import SQLiteDatabase
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.nanobanana_server import FakeNanobanana
from tests.reliability.scenario import ROOT, BotProcess, _has_image
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until


async def test_sigterm_finishes_running_jobs_refunds_queued_ones_and_exits_0(
    tmp_path: Path,
) -> None:
    async with FakeDiscord() as fake, FakeNanobanana(image_size=64, latency=1.5) as api:
        guild = fake.add_guild("Drain")
        alice = fake.add_user("alice", guilds=[guild])
        bob = fake.add_user("bob", guilds=[guild])
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "GEMINI"))},
            "PYTHONPATH": str(ROOT),
            "FAKE_DISCORD_URL": fake.base_url,
            "FAKE_GATEWAY_URL": fake.gateway_url,
            "DISCORD_TOKEN": "fake-bot-token",
            "DISCORD_GUILD_IDS": str(guild.id),
            "DATABASE_PATH": str(tmp_path / "bot.db"),
            "LOCAL_STORAGE_DIR": str(tmp_path / "objects"),
            "GEMINI_API_KEY": "test-key",
            "NANOBANANA_BASE_URL": api.base_url,
            "MAX_CONCURRENT_GENERATIONS": "1",
            "SHUTDOWN_DEADLINE": "20",
        }
        bot = BotProcess(fake, env, tmp_path / "bot.log")
        await bot.start(alice)
        running = await fake.slash("generate", {"prompt": "a lighthouse"}, user=alice)
        await running.wait_callback()
        await api.received(1)  # the first job calls the API (for 1.5 s): the next one queues
        queued = await fake.slash("generate", {"prompt": "a harbour"}, user=bob)
        await queued.wait_callback()
        # The answer comes first and the charge right after it: wait until the job is in the
        # queue (its row written), so the signal finds a queued, paid job to refund.
        await until(lambda: _job_rows(tmp_path / "bot.db", "a harbour") > 0, "the queued row")
        assert _job_rows(tmp_path / "bot.db", "a harbour"), bot.tail()
        assert bot.process is not None
        bot.process.send_signal(signal.SIGTERM)
        assert await bot.wait(timeout=60) == 0, bot.tail()
        assert _has_image(await running.wait_message(_has_image, timeout=5))
        refused = await queued.wait_message(lambda m: "refunded" in m.content, timeout=5)
        assert "restarted before your image was made" in refused.content
    async with SQLiteDatabase(tmp_path / "bot.db") as db:
        rows = await db.fetchall(
            "SELECT json_extract(request, '$.prompt'), status FROM jobs WHERE kind = 'image'"
        )
        statuses = {r[0]: r[1] for r in rows}
        assert statuses == {"a lighthouse": "COMPLETED", "a harbour": "FAILED"}
        assert await db.fetchval("SELECT COUNT(*) FROM bot_processes") == 0  # retired
        await assert_ledger_consistent(db)


def _job_rows(path: Path, prompt: str) -> int:
    """How many image jobs with `prompt` the bot has written (read-only, no lock held)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'image' "
                "AND json_extract(request, '$.prompt') = ?",
                (prompt,),
            ).fetchone()[0]
        )
