"""A burst of /generate over 1, 2 and 4 bot processes sharing one PostgreSQL. Figures only.

    python -m bench.bench_processes

Each run starts N real bot processes (tests/reliability/bot_process.py, one Discord shard
each; one process runs unsharded) on a fresh PostgreSQL database and one local image folder,
logged in to one fake Discord (which routes each server's events to its shard's process), with
the fake image API answering after L seconds. 50 members in 4 servers each send 2 /generate at
once: 100 jobs, spread over the processes by their servers' shards. MAX_CONCURRENT_GENERATIONS
= K is the whole deployment's, so the burst can't beat the API-bound ideal ceil(100 / K) x L,
however many processes run; the table shows how close each gets, and the most calls the API
ever saw at once (never above K).

Everything (fakes, PostgreSQL, N bots) shares the machine's cores: on 2 cores more processes
mostly add contention. Needs the PostgreSQL server binaries, as the tests do.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.nanobanana_server import FakeNanobanana
from tests.pg_server import PostgresServer, PostgresUnavailable
from tests.reliability.scenario import ROOT, BotProcess, _has_image, guild_id_on_shard

PROCESS_COUNTS = (1, 2, 4)
MEMBERS = 50
JOBS_PER_MEMBER = 2
SERVERS = 4
K = 4  # MAX_CONCURRENT_GENERATIONS, deployment-wide
LATENCY = 0.5  # seconds the fake API takes per image
IMAGE_SIZE = 512


async def burst(server: PostgresServer, processes: int, workdir: Path) -> dict[str, Any]:
    name = f"burst_{processes}_{uuid.uuid4().hex[:8]}"
    url = await server.create_database(name)
    folder = workdir / name
    folder.mkdir()
    shard_count = processes if processes > 1 else 1
    async with FakeDiscord() as fake, FakeNanobanana(image_size=IMAGE_SIZE) as api:
        api.latency = LATENCY
        guilds = [
            fake.add_guild(
                f"Burst {n}",
                id=guild_id_on_shard(n % shard_count, shard_count, n) if processes > 1 else None,
            )
            for n in range(SERVERS)
        ]
        members = [fake.add_user(f"member{n}", guilds=guilds) for n in range(MEMBERS)]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "GEMINI"))},
            "PYTHONPATH": str(ROOT),
            "FAKE_DISCORD_URL": fake.base_url,
            "FAKE_GATEWAY_URL": fake.gateway_url,
            "DISCORD_TOKEN": "fake-bot-token",
            "DISCORD_GUILD_IDS": ",".join(str(g.id) for g in guilds),
            "DATABASE_URL": url,
            "LOCAL_STORAGE_DIR": str(folder / "objects"),
            "GEMINI_API_KEY": "bench-key",
            "NANOBANANA_BASE_URL": api.base_url,
            "MAX_CONCURRENT_GENERATIONS": str(K),
            "MAX_JOBS_PER_USER": str(JOBS_PER_MEMBER),
            "STARTER_COINS": "10000",
            "LOG_LEVEL": "WARNING",
        }
        bots = []
        for n in range(processes):
            bot_env = dict(env)
            if processes > 1:
                bot_env |= {"SHARD_COUNT": str(shard_count), "SHARD_IDS": str(n)}
            probe = next(g for g in guilds if (g.id >> 22) % shard_count == n % shard_count)
            shards = [n] if processes > 1 else None
            bots.append(
                BotProcess(
                    fake, bot_env, folder / f"bot{n}.log", shard_ids=shards, probe_guild=probe
                )
            )
        # One at a time: they migrate the new database (the first does, the others wait).
        for bot in bots:
            await bot.start(members[0])
        await asyncio.sleep(1)  # the probes' /coins settle
        api.requests.clear()
        api.max_in_flight = 0
        started = time.perf_counter()
        records = await asyncio.gather(
            *(
                fake.slash(
                    "generate", {"prompt": f"burst {m} {j}"}, user=member, guild=guilds[m % SERVERS]
                )
                for m, member in enumerate(members)
                for j in range(JOBS_PER_MEMBER)
            )
        )
        await asyncio.gather(*(r.wait_message(_has_image, timeout=300) for r in records))
        wall = time.perf_counter() - started
        calls, peak = len(api.requests), api.max_in_flight
        for bot in bots:
            await bot.stop()
    await server.drop_database(name)
    jobs = MEMBERS * JOBS_PER_MEMBER
    ideal = math.ceil(jobs / K) * LATENCY
    return {
        "processes": processes,
        "jobs": jobs,
        "wall_seconds": wall,
        "jobs_per_second": jobs / wall,
        "ideal_seconds": ideal,
        "ratio": wall / ideal,
        "api_calls": calls,
        "api_peak_in_flight": peak,
    }


async def main() -> int:
    try:
        server = PostgresServer.start(durable=True)
    except PostgresUnavailable as error:
        print(f"skipped: {error}")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    rows = []
    try:
        for processes in PROCESS_COUNTS:
            rows.append(await burst(server, processes, workdir))
            print(f"{processes} process(es): done", flush=True)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nBurst of {MEMBERS * JOBS_PER_MEMBER} /generate ({MEMBERS} members x "
        f"{JOBS_PER_MEMBER}) over N processes on one PostgreSQL, K = {K} deployment-wide, "
        f"L = {LATENCY} s, {IMAGE_SIZE}x{IMAGE_SIZE} images; {os.cpu_count()} CPUs"
    )
    print(f"{'processes':>9} {'wall s':>7} {'jobs/s':>7} {'ideal s':>8} {'ratio':>6} "
          f"{'API calls':>9} {'API peak':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['processes']:>9} {r['wall_seconds']:>7.1f} {r['jobs_per_second']:>7.2f} "
              f"{r['ideal_seconds']:>8.1f} {r['ratio']:>6.2f} {r['api_calls']:>9} "
              f"{r['api_peak_in_flight']:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
