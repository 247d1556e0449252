"""Metrics: what Prometheus scrapes at /metrics, one registry per bot process.

Two kinds of figures, named apart so that a dashboard aggregates each the right way:

- `nanobanana_*`: this process's own (its interactions, jobs, API calls, queue, pools, memory
  and CPU). Each process is its own scrape target (Prometheus labels it `instance`); sum them
  for the deployment (`sum by (command) (rate(nanobanana_interactions_total[5m]))`). Counters
  start at 0 when a process starts; `rate()` and `increase()` take restarts in their stride.
- `nanobanana_deployment_*` (and the budgets): read from the database at each scrape, so every
  process reports the same numbers for the whole deployment; take one of them
  (`max without (instance) (...)`).

Counting happens where things happen, without knowing who scrapes: the job service publishes
`JobFinished` on the event bus; the image API client tells `api_attempt`; the Discord adapter
tells `interaction_received`/`interaction_answered`; gauges (queue, pools, spend) are read from
the services' own counters at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.services.events import JobFinished
from storage.db import Database, PoolUsage
from storage.stats import DeploymentFigures, read_figures
from storage.timeutil import utcnow

log = logging.getLogger(__name__)

__all__ = ["CONTENT_TYPE", "Metrics", "Readiness", "Sources", "version"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# No `*_created` series beside every counter: dashboards don't use them, and they double the
# exposition's size.
disable_created_metrics()  # type: ignore[no-untyped-call]
# Discord wants a first answer within 3 s: the buckets are finest around it.
FIRST_ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)
API_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# How long one scrape waits for the database's figures before reporting it down.
DATABASE_SECONDS = 5.0


def version() -> str:
    """The installed bot's version (a checkout without metadata: "dev")."""
    try:
        return metadata.version("nanobanana-bot")
    except metadata.PackageNotFoundError:
        return "dev"


class _Generation(Protocol):
    @property
    def queue_length(self) -> int: ...

    @property
    def running(self) -> int: ...

    @property
    def accepting(self) -> bool: ...

    @property
    def max_concurrent(self) -> int: ...


class _ImagePool(Protocol):
    @property
    def outstanding(self) -> int: ...

    @property
    def capacity(self) -> int: ...

    refused: int


class _Budgets(Protocol):
    @property
    def billed_micros(self) -> Mapping[str, int]: ...


@dataclass
class Sources:
    """The live services whose own counters are read at each scrape (any may be missing)."""

    database: Database | None = None
    generation: _Generation | None = None
    image_pool: _ImagePool | None = None
    budgets: _Budgets | None = None
    #: MONTHLY_BUDGET_USD in µUSD (None: no deployment cap).
    global_cap_micros: int | None = None


def _reason(key: str | None) -> str:
    """A refund's reason label: its message key without the `reason.` prefix."""
    return (key or "unknown").removeprefix("reason.")[:40]


@dataclass(frozen=True)
class Readiness:
    """What /readyz reports (bot.observe checks it): ready when every check holds."""

    database: bool
    discord: bool
    generation: bool

    @property
    def ready(self) -> bool:
        return self.database and self.discord and self.generation

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {
                "database": self.database,
                "discord": self.discord,
                "generation": self.generation,
            },
        }


class Metrics:
    """This process's metrics (a registry of its own: tests run several bots in one
    process) and what feeds them."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock
        self.sources = Sources()
        registry = self.registry = CollectorRegistry()
        # process_resident_memory_bytes, process_cpu_seconds_total, open fds, start time.
        ProcessCollector(registry=registry)
        self.info = Gauge(
            "nanobanana_process_info",
            "This bot process (always 1): its id in bot_processes, its shards, its version.",
            ["process_id", "shards", "version"],
            registry=registry,
        )
        self.interactions_received = Counter(
            "nanobanana_interactions_received",
            "Interactions (slash commands, buttons, modals) received, by command.",
            ["command"],
            registry=registry,
        )
        self.interactions = Counter(
            "nanobanana_interactions",
            "Interactions by command and the outcome of their first answer: ok, refused (a "
            "refusal or a private error message), error (an unexpected error), expired "
            "(Discord had given up: later than 3 s), failed (Discord refused the answer).",
            ["command", "outcome"],
            registry=registry,
        )
        self.first_answer = Histogram(
            "nanobanana_first_answer_seconds",
            "From the member's action (the interaction's own timestamp) to the bot's first "
            "answer, as Discord counts its 3 s.",
            ["command"],
            buckets=FIRST_ANSWER_BUCKETS,
            registry=registry,
        )
        self.jobs_finished = Counter(
            "nanobanana_jobs_finished",
            "Paid jobs ended in this process: completed, failed (refunded), cancelled "
            "(refunded before running), interrupted (a dead process's job, refunded here).",
            ["outcome"],
            registry=registry,
        )
        self.refunds = Counter(
            "nanobanana_refunds",
            "Refunds made by this process, by reason (the failure's message key).",
            ["reason"],
            registry=registry,
        )
        self.refunded_coins = Counter(
            "nanobanana_refunded_coins",
            "Coins refunded by this process, by reason.",
            ["reason"],
            registry=registry,
        )
        self.refunds_owed = Counter(
            "nanobanana_refunds_owed",
            "Refunds that could not be applied (over the balance cap): settle them by hand.",
            registry=registry,
        )
        self.api_requests = Counter(
            "nanobanana_api_requests",
            "HTTP attempts to generate, by model and HTTP status (or timeout, "
            "connection_error); retries count each.",
            ["model", "status"],
            registry=registry,
        )
        self.api_seconds = Histogram(
            "nanobanana_api_request_seconds",
            "How long one HTTP attempt to generate took, by model.",
            ["model"],
            buckets=API_BUCKETS,
            registry=registry,
        )
        registry.register(_Live(self))
        self._figures: DeploymentFigures | None = None
        self._database_up = False
        self._refreshing: asyncio.Task[None] | None = None
        #: Seconds the last scrape's database reads took.
        self.last_refresh_seconds = 0.0

    def identify(self, process_id: str, shard_ids: list[int] | None) -> None:
        """Name this process in `nanobanana_process_info`."""
        shards = "all" if shard_ids is None else ",".join(map(str, shard_ids))
        self.info.clear()
        self.info.labels(process_id, shards, version()).set(1)

    def watch(self, sources: Sources) -> None:
        """Read these services' counters at each scrape."""
        self.sources = sources

    # What happened (called where it happens) -------------------------------------------

    def interaction_received(self, command: str) -> None:
        self.interactions_received.labels(command).inc()

    def interaction_answered(self, command: str, outcome: str, seconds: float | None) -> None:
        """The first answer to an interaction went out (or was refused by Discord)."""
        self.interactions.labels(command, outcome).inc()
        if seconds is not None:
            self.first_answer.labels(command).observe(max(0.0, seconds))

    def api_attempt(self, model: str, status: str, seconds: float) -> None:
        """One HTTP attempt to generate (the client's `on_attempt`)."""
        self.api_requests.labels(model, status).inc()
        self.api_seconds.labels(model).observe(max(0.0, seconds))

    async def job_finished(self, event: JobFinished) -> None:
        """A `JobFinished` from the event bus."""
        self.jobs_finished.labels(event.outcome).inc()
        if event.outcome == "completed":
            return
        reason = _reason(event.reason)
        if event.refunded:
            self.refunds.labels(reason).inc()
            self.refunded_coins.labels(reason).inc(event.refunded)
        if event.owed:
            self.refunds_owed.inc()

    # Scraping ----------------------------------------------------------------------------

    async def render(self) -> bytes:
        """The text exposition, with the database's figures read now (scrapes that arrive
        together share one read)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())
        await asyncio.shield(self._refreshing)
        return generate_latest(self.registry)

    async def _refresh(self) -> None:
        database = self.sources.database
        if database is None:
            self._figures, self._database_up = None, False
            return
        started = time.monotonic()
        now = self.clock()
        try:
            self._figures = await asyncio.wait_for(
                read_figures(
                    database,
                    month=now.strftime("%Y-%m"),
                    day=now.strftime("%Y-%m-%d"),
                    global_cap_micros=self.sources.global_cap_micros,
                ),
                DATABASE_SECONDS,
            )
            self._database_up = True
        except Exception as error:
            log.warning("metrics: could not read the database's figures (%s)", error)
            self._database_up = False
        self.last_refresh_seconds = time.monotonic() - started


class _Live(Collector):
    """Gauges read from the services at scrape time, and the database's figures."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        sources = self.metrics.sources
        yield from self._process(sources)
        yield from self._deployment()

    def _process(self, sources: Sources) -> Iterable[Metric]:
        generation = sources.generation
        if generation is not None:
            yield _gauge("nanobanana_queue_depth", "Jobs waiting for a worker here.",
                         generation.queue_length)  # fmt: skip
            yield _gauge("nanobanana_jobs_running", "Jobs calling the model or finishing here.",
                         generation.running)  # fmt: skip
            yield _gauge(
                "nanobanana_generation_slots_limit",
                "MAX_CONCURRENT_GENERATIONS: calls to the model at once, deployment-wide.",
                generation.max_concurrent,
            )
            yield _gauge("nanobanana_accepting_jobs", "1 while this process takes new jobs.",
                         int(generation.accepting))  # fmt: skip
        pool = sources.image_pool
        if pool is not None:
            yield _gauge("nanobanana_image_pool_outstanding",
                         "Image work (thumbnails, sheets, inputs) running or waiting here.",
                         pool.outstanding)  # fmt: skip
            yield _gauge("nanobanana_image_pool_capacity",
                         "Image work taken before members are told to try again.",
                         pool.capacity)  # fmt: skip
            refused = CounterMetricFamily(
                "nanobanana_image_pool_refused", "Image work refused: the pool was full."
            )
            refused.add_metric([], pool.refused)
            yield refused
        database = sources.database
        if database is not None:
            usage: PoolUsage = database.pool_usage()
            connections = GaugeMetricFamily(
                "nanobanana_db_connections",
                "This process's database connections: in use, open, and at most.",
                labels=["state"],
            )
            connections.add_metric(["in_use"], usage.in_use)
            connections.add_metric(["open"], usage.open)
            connections.add_metric(["max"], usage.max)
            yield connections
            yield _gauge("nanobanana_db_writes_pending", "Database writes queued or running.",
                         usage.writes_pending)  # fmt: skip
        budgets = sources.budgets
        if budgets is not None:
            spend = CounterMetricFamily(
                "nanobanana_spend_usd",
                "What the image API billed for this process's answers (USD), by model.",
                labels=["model"],
            )
            for model, micros in sorted(budgets.billed_micros.items()):
                spend.add_metric([model], micros / 1_000_000)
            yield spend

    def _deployment(self) -> Iterable[Metric]:
        metrics = self.metrics
        yield _gauge(
            "nanobanana_database_up",
            "1 when this scrape could read the database's figures.",
            int(metrics._database_up),
        )
        yield _gauge("nanobanana_metrics_database_seconds",
                     "How long this scrape's database reads took.",
                     metrics.last_refresh_seconds)  # fmt: skip
        figures = metrics._figures
        if figures is None or not metrics._database_up:
            return
        jobs = GaugeMetricFamily(
            "nanobanana_deployment_jobs",
            "Generation jobs by state, deployment-wide: PENDING (queued), PROCESSING, and "
            "COMPLETED images kept (members' deletions take theirs away).",
            labels=["state"],
        )
        for state in ("PENDING", "PROCESSING", "COMPLETED"):
            jobs.add_metric([state], figures.jobs.get(state, 0))
        yield jobs
        yield _gauge("nanobanana_deployment_uploads", "Uploaded images kept.", figures.uploads)
        refunds = CounterMetricFamily(
            "nanobanana_deployment_refunds", "Refunds in the ledger, deployment-wide, ever."
        )
        refunds.add_metric([], figures.refunds)
        yield refunds
        yield _gauge(
            "nanobanana_deployment_spend_usd_month",
            "What the image API billed this calendar month (UTC), deployment-wide (USD).",
            figures.spend_micros_month / 1_000_000,
        )
        used_usd = GaugeMetricFamily(
            "nanobanana_budget_used_usd",
            "A monthly budget's use this month (USD).",
            labels=["scope"],
        )
        limit_usd = GaugeMetricFamily(
            "nanobanana_budget_limit_usd", "A monthly budget (USD).", labels=["scope"]
        )
        used_images = GaugeMetricFamily(
            "nanobanana_budget_used_images", "A daily image cap's use today.", labels=["scope"]
        )
        limit_images = GaugeMetricFamily(
            "nanobanana_budget_limit_images", "A daily image cap.", labels=["scope"]
        )
        for budget in figures.budgets:
            if budget.kind == "usd_month":
                used_usd.add_metric([budget.scope], budget.used / 1_000_000)
                if budget.limit is not None:
                    limit_usd.add_metric([budget.scope], budget.limit / 1_000_000)
            else:
                used_images.add_metric([budget.scope], budget.used)
                if budget.limit is not None:
                    limit_images.add_metric([budget.scope], budget.limit)
        yield from (used_usd, limit_usd, used_images, limit_images)
        slots = GaugeMetricFamily(
            "nanobanana_deployment_generation_slots",
            "Generation slots (calls to the model at once), deployment-wide: held by a live "
            "process, and in all.",
            labels=["state"],
        )
        slots.add_metric(["held"], figures.slots_held)
        slots.add_metric(["total"], figures.slots_total)
        yield slots
        yield _gauge("nanobanana_deployment_processes", "Bot processes with a live lease.",
                     figures.processes)  # fmt: skip


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
