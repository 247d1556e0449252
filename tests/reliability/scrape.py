"""Scraping the storm's bot processes: /metrics parsed with prometheus_client's own parser,
over and over while the storm runs, each counter checked never to go down within one life of a
process (a restart, seen by `process_start_time_seconds`, starts them again)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, tuple[tuple[str, str], ...]]
_ADDRESS = re.compile(r"metrics on (http://\S+)/metrics")


def metrics_url(log: Path) -> str | None:
    """The address the bot's latest start logged for /metrics (METRICS_PORT=0)."""
    if not log.exists():
        return None
    found = _ADDRESS.findall(log.read_text(errors="replace"))
    return found[-1] if found else None


def parse(text: str) -> tuple[dict[Sample, float], set[str]]:
    """Samples by name and labels, and the names of the counter families."""
    samples: dict[Sample, float] = {}
    counters: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            counters.add(f"{family.name}_total")
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, counters


def total(samples: dict[Sample, float], name: str, **labels: str) -> float:
    """The sum of `name` over the samples carrying `labels` (other labels summed over)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@dataclass
class Scraper:
    """Scrapes every bot process's /metrics every `period` seconds until stopped."""

    logs: list[Path]
    period: float = 0.25
    scrapes: int = 0
    seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    last: dict[Path, dict[Sample, float]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                for log in self.logs:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        await self.scrape(http, log)
                await asyncio.sleep(self.period)

    async def scrape(self, http: aiohttp.ClientSession, log: Path) -> dict[Sample, float]:
        """One scrape of one process, checked against its previous one."""
        url = metrics_url(log)
        if url is None:
            return {}
        started = time.monotonic()
        async with http.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as r:
            text = await r.text()
            if r.status != 200:
                self.problems.append(f"{url}/metrics answered {r.status}")
                return {}
        self.seconds.append(time.monotonic() - started)
        samples, counters = parse(text)
        self.scrapes += 1
        before = self.last.get(log, {})
        started_at = ("process_start_time_seconds", ())
        if before and before.get(started_at) == samples.get(started_at):
            for key, value in samples.items():
                if key[0] in counters and value < before.get(key, 0.0):
                    self.problems.append(f"counter {key} went down: {before[key]} -> {value}")
        self.last[log] = samples
        return samples

    async def final(self) -> dict[Sample, float]:
        """One last scrape of every process, summed (as a dashboard's sum() would)."""
        summed: dict[Sample, float] = {}
        async with aiohttp.ClientSession() as http:
            for log in self.logs:
                for key, value in (await self.scrape(http, log)).items():
                    summed[key] = summed.get(key, 0.0) + value
        return summed
