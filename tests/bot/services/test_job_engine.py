"""JobEngine with a kind of job made here, not an image: a new kind brings its price, its run
and its finish, and the engine does the money (charged at the reservation, refunded exactly
once however the job ends), the queue, the leases and the recovery, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.services.errors import JobNotFound, NotCancellable
from bot.services.events import EventBus, JobsRecovered
from bot.services.jobs import INTERRUPTED, Cancelled, Failure, Job, JobEngine, Priced
from bot.services.members import Payer
from storage.db import Database, Transaction
from storage.errors import InvalidTransition, NotFound
from storage.jobs import JobRow, JobStatus, Refund, complete
from storage.objects import LocalObjectStore
from tests.bot.services.conftest import (
    coins_of,
    image_rows,
    job_row,
    ledger_of,
    payer_for,
    unfinished_jobs,
)
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until

COST = 7


@dataclass(frozen=True)
class Caption:
    """What a caption job is asked: a text to caption."""

    text: str


class Captions:
    """A second kind of paid job, defined by this test: its price, a run the test controls
    (it waits for `go`, then raises `error` or answers the text in capitals) and a finish
    that stores the answer as the job's result. No money code."""

    name = "caption"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.running = asyncio.Event()
        self.error: Exception | None = None
        #: Fail the job itself (as a kind does for a refusal), then raise all the same.
        self.fail_first = False
        self.finished: list[str] = []

    def price(self, payer: Payer, request: Caption) -> Priced[Caption]:
        return Priced(request, COST, {"text": request.text})

    async def run(self, job: Job[Caption], engine: JobEngine, *, model_retired: bool) -> str:
        self.running.set()
        await self.go.wait()
        if self.fail_first:
            await engine.fail(job, "reason.caption", {"why": "unreadable"}, "unreadable")
        if self.error is not None:
            raise self.error
        return job.request.text.upper()

    async def finish(self, job: Job[Caption], outcome: str, engine: JobEngine) -> None:
        async def body(tx: Transaction) -> JobRow:
            return await complete(tx, job.id, {"caption": outcome})

        try:
            row = await engine.persist(
                f"job {job.id}: storing its caption", functools.partial(engine.db.write, body)
            )
        except (InvalidTransition, NotFound):
            return  # ended otherwise meanwhile (refunded by a sweep): nothing to deliver
        self.finished.append(job.id)
        await engine.notify(job, "completed", row)


class CaptionListener:
    """What a member following a caption job hears."""

    def __init__(self) -> None:
        self.results: list[JobRow] = []
        self.failures: list[Failure] = []
        self._done = asyncio.Event()

    async def queued(self, job: Job[Any], position: int) -> None:
        pass

    async def started(self, job: Job[Any]) -> None:
        pass

    async def completed(self, job: Job[Any], result: Any) -> None:
        self.results.append(result)
        self._done.set()

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        self.failures.append(failure)
        self._done.set()

    async def done(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._done.wait(), timeout)


@contextlib.asynccontextmanager
async def engine_on(
    db: Database, store: LocalObjectStore, *, lease_seconds: float = 30.0
) -> AsyncIterator[tuple[JobEngine, Captions]]:
    """An engine of one process (its own lease) with the caption kind, started and closed."""
    engine = JobEngine(
        db=db, store=store, max_concurrent=1, max_jobs_per_user=3, retry_seconds=1,
        lease_seconds=lease_seconds, lookahead=0, events=EventBus(),
    )  # fmt: skip
    kind = Captions()
    engine.register(kind)
    await engine.start()
    try:
        yield engine, kind
    finally:
        kind.go.set()
        await engine.close(deadline=5)


async def order(
    engine: JobEngine, kind: Captions, payer: Payer, text: str, *, queue: bool = True
) -> tuple[Job[Caption], CaptionListener]:
    """Admit, reserve and (with `queue`) enqueue a caption job, as `orders` does an image's."""
    listener = CaptionListener()
    admission = engine.admit(payer.slot_key, payer.max_jobs)
    job = await engine.reserve(kind, payer, kind.price(payer, Caption(text)), listener, admission)
    if queue:
        await engine.enqueue(job)
    return job, listener


CHARGED = [("GENERATION", -COST)]
REFUNDED = [("GENERATION", -COST), ("REFUND", COST)]


async def test_a_new_kind_is_charged_at_reserve_and_completes_with_its_result_stored(
    db: Database, local_store: LocalObjectStore
) -> None:
    payer = await payer_for(db, 1, 100)
    async with engine_on(db, local_store) as (engine, kind):
        job, listener = await order(engine, kind, payer, "a cat on a mat", queue=False)
        # Charged at the reservation, with its ledger row naming the job; PENDING, not queued.
        assert await coins_of(db, payer) == 100 - COST and job.balance == 100 - COST
        row = await job_row(db, job.id)
        assert (row.kind, row.status, row.cost) == ("caption", JobStatus.PENDING, COST)
        assert row.request == {"text": "a cat on a mat"} and row.wallet_id == payer.wallet_id
        assert await ledger_of(db, job.id) == CHARGED
        assert engine.active_jobs(payer.slot_key) == 1
        await engine.enqueue(job)
        await asyncio.wait_for(kind.running.wait(), 10)
        assert (await job_row(db, job.id)).status is JobStatus.PROCESSING
        kind.go.set()
        await listener.done()
        [stored] = listener.results
        assert stored.status is JobStatus.COMPLETED
        assert stored.result == {"caption": "A CAT ON A MAT"}
        assert (await job_row(db, job.id)).result == {"caption": "A CAT ON A MAT"}
        await engine.wait_idle()
        assert engine.active_jobs(payer.slot_key) == 0 and listener.failures == []
        # A job reserved and never queued (the adapter could not answer) is refunded once.
        cancelled, _ = await order(engine, kind, payer, "never run", queue=False)
        refund = await engine.cancel(cancelled)
        assert refund is not None and refund.refunded == COST
        assert await engine.cancel(cancelled) is None
        assert await ledger_of(db, cancelled.id) == REFUNDED
    assert await ledger_of(db, job.id) == CHARGED  # charged once, never refunded
    assert await coins_of(db, payer) == 100 - COST
    assert await image_rows(db) == 0 and await unfinished_jobs(db) == []
    await assert_ledger_consistent(db)


@pytest.mark.parametrize("fail_first", [False, True], ids=["raises", "fails-then-raises"])
async def test_a_run_that_raises_is_refunded_exactly_once(
    db: Database, local_store: LocalObjectStore, fail_first: bool
) -> None:
    """The kind's run raises (after failing the job itself, in the second case): the job
    ends FAILED, its payer refunded exactly once and told once; the worker lives on."""
    payer = await payer_for(db, 1, 100)
    async with engine_on(db, local_store) as (engine, kind):
        kind.error = RuntimeError("the captioner broke")
        kind.fail_first = fail_first
        job, listener = await order(engine, kind, payer, "a dog")
        kind.go.set()
        await listener.done()
        await engine.wait_idle()
        key, params = ("reason.caption", {"why": "unreadable"}) if fail_first else (
            "reason.internal", {},
        )  # fmt: skip
        assert listener.failures == [Failure(key, params, COST, 100)]
        row = await job_row(db, job.id)
        assert row.status is JobStatus.FAILED and row.result == {"key": key, "params": params}
        assert await ledger_of(db, job.id) == REFUNDED
        # Whoever tries again finds it ended: no second refund.
        assert await engine.jobs.fail_and_refund(job.id, "again") is None
        assert await engine.cancel(job) is None
        assert await ledger_of(db, job.id) == REFUNDED and await coins_of(db, payer) == 100
        assert engine.active_jobs(payer.slot_key) == 0
        assert engine.workers_alive == engine.worker_count
        # The next job of the kind goes through.
        kind.error, kind.fail_first = None, False
        _, heard = await order(engine, kind, payer, "a bird")
        await heard.done()
        assert [r.result for r in heard.results] == [{"caption": "A BIRD"}]
    assert len(listener.failures) == 1 and listener.results == []
    await assert_ledger_consistent(db)


async def test_a_dead_process_jobs_are_refunded_once_and_published(
    db: Database, db_twin: Database, local_store: LocalObjectStore
) -> None:
    """A process dies with one caption job running and one queued: a live process's sweep
    fails and refunds both exactly once and publishes JobsRecovered; the dead process's late
    answer finds its job ended and stores nothing."""
    payers = [await payer_for(db, n, 100) for n in (1, 2)]
    # Short leases: the survivor sweeps about every second.
    async with (
        engine_on(db, local_store, lease_seconds=2) as (doomed, doomed_kind),
        engine_on(db_twin, local_store, lease_seconds=2) as (survivor, _),
    ):
        heard: list[Refund] = []

        async def recovered(event: JobsRecovered) -> None:
            heard.extend(event.refunds)

        survivor.events.subscribe(JobsRecovered, recovered)
        running, running_listener = await order(doomed, doomed_kind, payers[0], "one")
        queued, queued_listener = await order(doomed, doomed_kind, payers[1], "two")
        await asyncio.wait_for(doomed_kind.running.wait(), 10)
        assert (await job_row(db, queued.id)).status is JobStatus.PENDING
        # The doomed process dies: no more heartbeats nor sweeps, and its lease runs out.
        assert doomed.process._heartbeat is not None and doomed._sweeper is not None
        doomed.process._heartbeat.cancel()
        doomed._sweeper.cancel()
        await db.execute(
            "UPDATE bot_processes SET lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
            (doomed.process.id,),
        )
        await until(lambda: len(heard) == 2, "the survivor's sweep to publish both refunds")
        assert sorted(r.job.id for r in heard) == sorted([running.id, queued.id])
        assert all(r.refunded == COST and r.owed == 0 for r in heard)
        assert await survivor.recover() == []  # once: a second sweep finds nothing
        for job in (running, queued):
            row = await job_row(db, job.id)
            assert row.status is JobStatus.FAILED and row.error == INTERRUPTED
            assert row.result == {"key": "reason.shutdown", "params": {}}
            assert await ledger_of(db, job.id) == REFUNDED
        # The dead process's run answers late: its finish finds the job ended.
        doomed_kind.go.set()
        await until(lambda: doomed.running == 0 and doomed.queue_length == 0, "the doomed idle")
        await asyncio.wait_for(doomed.wait_idle(), 10)
        assert doomed_kind.finished == []
        assert running_listener.results == [] and queued_listener.results == []
    for payer in payers:
        assert await coins_of(db, payer) == 100
    for job in (running, queued):
        assert await ledger_of(db, job.id) == REFUNDED
    assert await unfinished_jobs(db) == []
    await assert_ledger_consistent(db)


async def test_cancel_waiting_refunds_a_queued_job_once_and_never_a_running_one(
    db: Database, local_store: LocalObjectStore
) -> None:
    """A member's cancel (issue 23): a queued job is refunded at once, exactly once, its
    listener told, its slot given back and its worker never runs it; the running job is
    refused (it may be calling the API). The estimated start comes from measured calls."""
    payer = await payer_for(db, 1, 100)
    async with engine_on(db, local_store) as (engine, kind):
        # Nothing measured yet: no estimate.
        first, first_listener = await order(engine, kind, payer, "first")
        await asyncio.wait_for(kind.running.wait(), 10)
        waiting, listener = await order(engine, kind, payer, "second")
        assert engine.position(waiting.id) == 1 and engine.estimate(waiting.id) is None
        engine.record_latency(None, 4.0)
        engine.record_latency(None, 6.0)
        assert engine.latency(None) == 5.0 and engine.latency("some-model") == 5.0
        # One worker: the second starts once the first's call (5 s, just begun) is over.
        estimate = engine.estimate(waiting.id)
        assert estimate is not None and 4.0 < estimate <= 5.0
        reason = {"key": "reason.cancelled", "params": {}}
        with pytest.raises(NotCancellable) as refused:
            await engine.cancel_waiting(first.id, reason)
        assert refused.value.key == "cancel.started"
        outcomes = await asyncio.gather(
            *(engine.cancel_waiting(waiting.id, reason) for _ in range(3)),
            return_exceptions=True,
        )
        done = [o for o in outcomes if isinstance(o, Cancelled)]
        assert len(done) == 1 and done[0].refunded == COST and done[0].told
        assert all(isinstance(o, NotCancellable) for o in outcomes if o not in done)
        await listener.done()
        assert [f.key for f in listener.failures] == ["reason.cancelled"]
        assert engine.position(waiting.id) is None and engine.active_jobs(payer.slot_key) == 1
        kind.go.set()
        await first_listener.done()
        await engine.wait_idle()
        assert kind.finished == [first.id]  # the cancelled job never ran
        with pytest.raises(JobNotFound):
            await engine.cancel_waiting("00000000-0000-0000-0000-000000000000", reason)
    assert await ledger_of(db, waiting.id) == REFUNDED
    assert await ledger_of(db, first.id) == CHARGED
    await assert_ledger_consistent(db)
