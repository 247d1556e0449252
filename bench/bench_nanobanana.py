"""Benchmark the Nano Banana client against the fake server (zero latency). Prints figures only.

    python -m bench.bench_nanobanana

1. Throughput and client overhead, in-process fake: calls per second for sequential and
   concurrent calls with 1024x1024 and 2048x2048 answers, and the client's own cost per call
   (client time minus the fake's handler time: HTTP, JSON, base64, Pillow check). PNG answers
   come from Nano Banana (2.5 Flash Image, served to this key past its shutdown: the same
   workload as before the 2026 lineup, so figures compare across releases); JPEG answers with
   thought parts from today's default, Nano Banana 2.1.
2. Memory with 20 concurrent 2048x2048 PNG answers, the fake in a child process so the figures
   are the client's: tracemalloc peak of Python allocations and the process's max RSS.
3. Decoding a 2048x2048 answer (~7 MB of JSON): stdlib json vs orjson, binascii vs pybase64
   (both hold the GIL: every millisecond here is a millisecond of the bot's event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

from bot.nanobanana import NanobananaClient
from tests.fakes.nanobanana_server import FakeNanobanana, render_jpeg, render_png

KEY = "bench-key-0123456789"
MiB = 1024 * 1024
#: The PNG workload of every release's figures: a key that still has Nano Banana.
PNG_MODEL = "gemini-2.5-flash-image"
#: Today's default: JPEG answers after thought parts.
JPEG_MODEL = "gemini-nano-banana-2.1"


@dataclass(frozen=True)
class ThroughputRow:
    label: str
    calls: int
    concurrency: int
    seconds: float
    client_ms: float
    handler_ms: float
    overhead_ms: float
    answer_mib: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds


def maxrss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MiB if sys.platform == "darwin" else peak / 1024


async def measure_throughput(
    fake: FakeNanobanana, size: int, calls: int, concurrency: int, model: str = PNG_MODEL
) -> ThroughputRow:
    fake.image_size = size
    async with NanobananaClient(KEY, base_url=fake.base_url, max_attempts=1, model=model) as client:
        for _ in range(2):  # warm up: connection, the fake's PNG cache
            await client.generate("warm up")
        fake.requests.clear()
        latencies: list[float] = []
        semaphore = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            async with semaphore:
                started = time.perf_counter()
                await client.generate(f"bench call {n}", aspect_ratio="1:1")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(calls)))
        elapsed = time.perf_counter() - started

    handler = [r.handler_seconds for r in fake.requests]
    client_ms = statistics.mean(latencies) * 1000
    handler_ms = statistics.mean(handler) * 1000
    encoded = render_png(size, size) if model == PNG_MODEL else render_jpeg(size, size)
    return ThroughputRow(
        label=f"{size}x{size} {'PNG' if model == PNG_MODEL else 'JPEG'}",
        calls=calls,
        concurrency=concurrency,
        seconds=elapsed,
        client_ms=client_ms,
        handler_ms=handler_ms,
        overhead_ms=client_ms - handler_ms,
        answer_mib=len(encoded) * 4 / 3 / MiB,
    )


@contextlib.contextmanager
def fake_process(image_size: int) -> Iterator[str]:
    """Run the fake standalone in a child process; yields its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.nanobanana_server",
            "--port",
            "0",
            "--image-size",
            str(image_size),
            "--keep-serving",
            PNG_MODEL,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def measure_memory(base_url: str, concurrency: int) -> dict[str, float]:
    async with NanobananaClient(
        KEY, base_url=base_url, max_attempts=1, timeout=60, model=PNG_MODEL
    ) as client:
        await client.generate("warm up")  # the child renders and caches its PNG
        gc.collect()
        rss_before = maxrss_mib()
        tracemalloc.start()
        baseline, _ = tracemalloc.get_traced_memory()
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.generate(f"memory call {n}") for n in range(concurrency))
        )
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held = sum(len(r.data) for r in results)
    return {
        "seconds": elapsed,
        "tracemalloc_peak_mib": (peak - baseline) / MiB,
        "results_mib": held / MiB,
        "rss_before_mib": rss_before,
        "rss_after_mib": maxrss_mib(),
    }


def codecs(repeats: int = 20) -> list[tuple[str, float]]:
    """Milliseconds per 2048x2048 answer for each way of reading it (section 3)."""
    import base64
    import binascii
    import json

    import orjson
    import pybase64

    png = render_png(2048, 2048)
    encoded = base64.b64encode(png).decode()
    body = json.dumps({"candidates": [{"content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": encoded}}]}}]}).encode()  # fmt: skip

    def timed(fn: object) -> float:
        assert callable(fn)
        fn()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - started) / repeats * 1000

    return [
        ("json.loads (stdlib)", timed(lambda: json.loads(body))),
        ("orjson.loads", timed(lambda: orjson.loads(body))),
        ("binascii.a2b_base64 (stdlib, strict)",
         timed(lambda: binascii.a2b_base64(encoded, strict_mode=True))),
        ("pybase64.b64decode (validate)",
         timed(lambda: pybase64.b64decode(encoded, validate=True))),
        ("base64.b64encode (stdlib), the request side", timed(lambda: base64.b64encode(png))),
        ("pybase64.b64encode", timed(lambda: pybase64.b64encode(png))),
    ]  # fmt: skip


async def main() -> None:
    concurrency = 20
    print("Nano Banana client benchmark (fake server, zero latency)\n")

    # Memory first, so max RSS is not inflated by the in-process fake of the throughput runs.
    with fake_process(2048) as base_url:
        memory = await measure_memory(base_url, concurrency)

    async with FakeNanobanana() as fake:
        fake.keep_serving(PNG_MODEL)
        rows = [
            await measure_throughput(fake, 1024, calls=40, concurrency=1),
            await measure_throughput(fake, 1024, calls=80, concurrency=8),
            await measure_throughput(fake, 2048, calls=12, concurrency=1),
            await measure_throughput(fake, 2048, calls=24, concurrency=8),
            await measure_throughput(fake, 1024, calls=40, concurrency=1, model=JPEG_MODEL),
            await measure_throughput(fake, 2048, calls=12, concurrency=1, model=JPEG_MODEL),
        ]

    header = (
        f"{'answer':<16}{'b64 MiB':>8}{'conc':>6}{'calls':>7}{'calls/s':>9}"
        f"{'client ms':>11}{'server ms':>11}{'overhead ms':>13}"
    )
    print("Throughput. client ms: mean wall time per call (includes queueing when conc > 1);")
    print("server ms: the fake's handler time; overhead: client - server, sequential calls only.")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.label:<16}{row.answer_mib:>8.1f}{row.concurrency:>6}{row.calls:>7}"
            f"{row.per_second:>9.1f}{row.client_ms:>11.1f}{row.handler_ms:>11.1f}"
            + (f"{row.overhead_ms:>13.1f}" if row.concurrency == 1 else f"{'(queued)':>13}")
        )

    print(f"\nMemory: {concurrency} concurrent 2048x2048 answers (fake in a child process)")
    memory_rows = [
        ("wall time", memory["seconds"], "s"),
        ("tracemalloc peak (Python allocations)", memory["tracemalloc_peak_mib"], "MiB"),
        ("  of which results kept (image bytes)", memory["results_mib"], "MiB"),
        ("max RSS before the burst", memory["rss_before_mib"], "MiB"),
        ("max RSS after the burst", memory["rss_after_mib"], "MiB"),
    ]
    for label, value, unit in memory_rows:
        print(f"{label:<40}{value:>9.1f} {unit}")

    print("\nDecoding one 2048x2048 answer (~7 MB JSON), ms; the client uses the stdlib's json")
    print("(as fast as orjson on one huge string) and pybase64:")
    for label, took in codecs():
        print(f"  {label:<46}{took:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
