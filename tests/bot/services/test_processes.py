"""Several bot processes on one database (both backends): two GenerationServices, each with
its own ProcessLease and its own connection, like two processes of a deployment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.nanobanana import NanobananaClient
from bot.services.errors import TooManyJobs
from bot.services.events import JobsRecovered
from bot.services.generation import GenerationRequest, GenerationService
from storage.db import Database
from storage.images import ImageRepository
from storage.jobs import JobStatus, Refund
from storage.leases import LeaseRepository
from storage.objects import LocalObjectStore
from tests.bot.services.conftest import (
    RecordingListener,
    coins_of,
    image_rows,
    job_row,
    ledger_of,
    payer_for,
    unfinished_jobs,
)
from tests.bot.services.test_generation import make_service
from tests.fakes.nanobanana_server import FakeNanobanana
from tests.storage.helpers import assert_ledger_consistent
from tests.waiting import until


@pytest.fixture
async def two(
    db: Database, db_twin: Database, local_store: LocalObjectStore, client: NanobananaClient
) -> AsyncIterator[tuple[GenerationService, GenerationService]]:
    """Two processes sharing the deployment's 2 generation slots, one database, one store."""
    # Short leases (a sweep every second), so that a death is noticed quickly.
    first = make_service(ImageRepository(db), local_store, client, max_concurrent=2,
                         retry_seconds=2, lease_seconds=2)  # fmt: skip
    second = make_service(ImageRepository(db_twin), local_store, client, max_concurrent=2,
                          retry_seconds=2, lease_seconds=2)  # fmt: skip
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close(deadline=5)
        await second.close(deadline=5)


async def expire(db: Database, service: GenerationService) -> None:
    """The service's process dies: no more heartbeats nor sweeps, and its lease runs out."""
    process = service.process
    engine = service.engine
    assert process._heartbeat is not None and engine._sweeper is not None
    process._heartbeat.cancel()
    engine._sweeper.cancel()
    await db.execute(
        "UPDATE bot_processes SET lease_until = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
        (process.id,),
    )


async def test_generation_slots_bound_api_calls_of_every_process(
    two: tuple[GenerationService, GenerationService], db: Database, fake_api: FakeNanobanana
) -> None:
    fake_api.latency = 0.15
    listeners = []
    for n in range(8):
        payer = await payer_for(db, 100 + n, 300)
        listener = RecordingListener()
        await two[n % 2].submit(payer, GenerationRequest(f"p{n}"), listener)
        listeners.append(listener)
    for listener in listeners:
        await listener.done(timeout=30)
        assert listener.result is not None
    assert fake_api.max_in_flight == 2  # the deployment's total, not 2 per process
    assert await LeaseRepository(db).slots_in_use() == 0
    await assert_ledger_consistent(db)


async def test_the_member_cap_counts_jobs_in_every_process(
    two: tuple[GenerationService, GenerationService], db: Database, fake_api: FakeNanobanana
) -> None:
    fake_api.latency = 1.0
    payer = await payer_for(db, 7, 1000, max_jobs=2)
    await two[0].submit(payer, GenerationRequest("one"))
    await two[1].submit(payer, GenerationRequest("two"))
    with pytest.raises(TooManyJobs):
        await two[0].submit(payer, GenerationRequest("three"))
    with pytest.raises(TooManyJobs):
        await two[1].submit(payer, GenerationRequest("three"))
    assert await coins_of(db, payer) == 800  # the refused ones cost nothing
    assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 2  # and left no job behind


async def test_a_dead_process_jobs_are_refunded_once_by_a_live_one(
    two: tuple[GenerationService, GenerationService], db: Database, fake_api: FakeNanobanana
) -> None:
    """A process dies holding a generation slot and jobs (one calling the model, one queued):
    the live process refunds them exactly once, tells their members, and takes the freed
    slot; the dead process's late answer is never delivered."""
    doomed, survivor = two
    told: list[Refund] = []

    async def tell(event: JobsRecovered) -> None:
        told.extend(event.refunds)

    survivor.events.subscribe(JobsRecovered, tell)
    fake_api.latency = 1.5
    victims = [await payer_for(db, n, 300) for n in (1, 2, 3)]
    doomed_listeners = [RecordingListener() for _ in victims]
    jobs = [
        await doomed.submit(v, GenerationRequest(f"doomed {n}"), listener)
        for n, (v, listener) in enumerate(zip(victims, doomed_listeners, strict=True))
    ]
    await fake_api.received(2)  # two calling the model (both slots), one waiting
    await expire(db, doomed)
    await until(lambda: len(told) == 3, "the survivor to refund the three jobs")
    assert sorted(r.job.id for r in told) == sorted(j.id for j in jobs)
    assert all(r.refunded == 100 for r in told)
    # The survivor works on: the dead process's slots are free.
    fake_api.latency = 0.05
    payer = await payer_for(db, 9, 300)
    listener = RecordingListener()
    await survivor.submit(payer, GenerationRequest("alive"), listener)
    await listener.done(timeout=20)
    assert listener.result is not None
    # The doomed process's own late answers find their jobs failed: nothing delivered.
    await asyncio.wait_for(doomed.wait_idle(), 20)
    assert all(listener.result is None for listener in doomed_listeners)
    for job in jobs:
        row = await job_row(db, job.id)
        assert row.status is JobStatus.FAILED and row.result["key"] == "reason.shutdown"
        assert await ledger_of(db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
    # The survivor's one image; the dead process's jobs left no image row.
    assert await image_rows(db) == 1 and await unfinished_jobs(db) == []
    for victim in victims:
        assert await coins_of(db, victim) == 300
    await assert_ledger_consistent(db)


async def test_a_starting_process_never_touches_live_jobs(
    db: Database, db_twin: Database, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    fake_api.latency = 0.5
    running = make_service(ImageRepository(db), local_store, client, max_concurrent=1)
    await running.start()
    try:
        listeners = [RecordingListener() for _ in range(3)]
        for n, listener in enumerate(listeners):
            await running.submit(await payer_for(db, n, 300), GenerationRequest(f"{n}"),
                                 listener)  # fmt: skip
        starting = make_service(ImageRepository(db_twin), local_store, client)
        assert await starting.recover() == []  # a restart of another process
        await starting.start()
        await starting.close(deadline=1)
        for listener in listeners:
            await listener.done(timeout=20)
            assert listener.result is not None
    finally:
        await running.close(deadline=5)
    await assert_ledger_consistent(db)
