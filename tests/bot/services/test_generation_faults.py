"""Faults in a job's path: a SQLite file locked by another process, a refund that would overflow,
a worker that dies. Each test reproduces a way coins were held or workers were lost, and ends by
checking that every worker is alive and a later job completes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.nanobanana import GeneratedImage, NanobananaClient
from bot.services.errors import InvalidInput
from bot.services.events import JobsRecovered
from bot.services.generation import Failure, GenerationRequest, GenerationService, Job
from bot.services.members import Payer
from bot.services.permissions import Identity
from storage.images import ImageRepository
from storage.jobs import JobRepository, JobRow, JobStatus, Refund
from storage.ledger import INT64_MAX
from storage.models import TransactionKind
from storage.objects import LocalObjectStore
from storage.sqlite import SQLiteDatabase
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.bot.services.conftest import RecordingListener, build_services, ledger_of
from tests.bot.services.test_generation import make_service as base_service
from tests.fakes.nanobanana_server import Behaviour, FakeNanobanana, Mode
from tests.fakes.sqlite_locker import LockedDatabase
from tests.storage.helpers import assert_ledger_consistent

CAP = 10**12


@pytest.fixture
async def fault_db(tmp_path: Path) -> AsyncIterator[SQLiteDatabase]:
    """A database whose writes give up on a lock after 0.1 s (the service retries them)."""
    database = SQLiteDatabase(tmp_path / "bot.db", busy_timeout_ms=100)
    await database.connect()
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def capped_users(fault_db: SQLiteDatabase) -> WalletRepository:
    """Wallets capped at CAP (named for the members who hold them)."""
    return WalletRepository(fault_db, max_balance=CAP)


async def member(wallets: WalletRepository, discord_id: int, coins: int) -> Payer:
    """A member with a wallet of `coins`, as the payer of 100-coin jobs."""
    user = await UserRepository(wallets.db).create(discord_id=discord_id)
    wallet = (await wallets.open(user.id, None, starter_coins=coins)).wallet
    return Payer(user.id, wallet.id, None, 100, 100, wallet.coins)


async def coins(wallets: WalletRepository, payer: Payer) -> int:
    wallet = await wallets.get(payer.wallet_id)
    assert wallet is not None
    return wallet.coins


@pytest.fixture
def capped_images(fault_db: SQLiteDatabase) -> ImageRepository:
    return ImageRepository(fault_db, max_balance=CAP)


def make_service(
    images: ImageRepository,
    store: LocalObjectStore,
    client: NanobananaClient,
    *,
    retry_seconds: float,
    max_concurrent: int = 2,
) -> GenerationService:
    return base_service(
        images, store, client, max_concurrent=max_concurrent, max_jobs_per_user=5,
        max_prompt_chars=100, retry_seconds=retry_seconds,
        # One worker per API slot: these tests hold a job in the queue behind a running one.
        lookahead=0,
    )  # fmt: skip


async def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    """Poll a condition that no event signals (log lines, counters of another task)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not predicate():
        assert loop.time() < give_up, "timed out waiting"
        await asyncio.sleep(0.02)


async def status_of(images: ImageRepository, job: Job[Any]) -> JobStatus:
    row = await JobRepository(images.db).get(job.id)
    assert row is not None
    return row.status


async def leftover(images: ImageRepository, payer: Payer, prompt: str) -> JobRow:
    """A job a crashed run left PENDING (reserved and charged; no process owns it now)."""
    reservation = await JobRepository(images.db).reserve(
        kind="image", user_id=payer.user_id, wallet_id=payer.wallet_id, cost=100,
        request={"prompt": prompt},
    )  # fmt: skip
    return reservation.job


async def assert_healthy(
    service: GenerationService,
    users: WalletRepository,
    images: ImageRepository,
    fake_api: FakeNanobanana,
    discord_id: int = 900,
) -> None:
    """Every worker alive, nothing stranded, the ledger consistent, and a new job completes."""
    assert service.workers_alive == service.worker_count
    fake_api.default = Mode.OK
    fake_api.latency = 0
    user = await member(users, discord_id, 1000)
    listener = RecordingListener()
    await service.submit(user, GenerationRequest("a later job"), listener)
    await listener.done(timeout=20)
    assert listener.result is not None, listener.events
    assert await JobRepository(images.db).list_unfinished() == []
    assert service.workers_alive == service.worker_count
    await assert_ledger_consistent(users.db)


async def test_lock_held_by_another_process_during_the_refund(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """The model blocks the prompt while another process holds the write lock: the refund
    waits for the lock instead of killing the worker (it used to raise 'database is locked'
    out of the worker's failure path, holding the coins until a restart)."""
    service = make_service(capped_images, local_store, client, retry_seconds=15)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        fake_api.default = Behaviour(Mode.BLOCK_PROMPT, latency=0.3)
        listener = RecordingListener()
        job = await service.submit(user, GenerationRequest("a castle"), listener)
        await wait_until(lambda: ("started", None) in listener.events)
        async with LockedDatabase(fault_db.path) as lock:
            await wait_until(lambda: [r.status for r in fake_api.requests] == [200])
            await asyncio.sleep(0.5)  # the refund is being retried against the lock
            assert [event for event, _ in listener.events] == ["queued", "started"]
            assert await status_of(capped_images, job) is JobStatus.PROCESSING
            assert service.workers_alive == service.worker_count
            await lock.release()
            await listener.done(timeout=20)
        assert listener.failure is not None and listener.failure.refunded == 100
        assert await status_of(capped_images, job) is JobStatus.FAILED
        assert await ledger_of(fault_db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
        assert await coins(capped_users, user) == 300
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_lock_longer_than_the_retry_budget_still_refunds_once_released(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.WARNING, logger="bot.services.jobs")
    service = make_service(capped_images, local_store, client, retry_seconds=0.3)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        fake_api.default = Behaviour(Mode.BLOCK_OUTPUT, reason="IMAGE_OTHER", latency=0.2)
        listener = RecordingListener()
        job = await service.submit(user, GenerationRequest("a castle"), listener)
        await wait_until(lambda: ("started", None) in listener.events)
        async with LockedDatabase(fault_db.path) as lock:
            await wait_until(lambda: "retrying in the background" in caplog.text)
            # Past the budget, the worker moved on; the refund keeps trying on its own.
            assert service.active_jobs(user.user_id) == 0
            assert service.workers_alive == service.worker_count
            await lock.release()
        await listener.done(timeout=20)
        assert listener.failure == Failure("block.output.IMAGE_OTHER", {}, 100, 300)
        assert await status_of(capped_images, job) is JobStatus.FAILED
        assert await ledger_of(fault_db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_lock_while_a_job_waits_in_the_queue(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """A job waiting in the queue while the file is locked used to be dropped silently (its
    PROCESSING update failed and was read as 'already finished'): PENDING, coins held, the
    message stuck on 'Queued'. Now both jobs go through once the lock is gone."""
    service = make_service(capped_images, local_store, client, retry_seconds=15, max_concurrent=1)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        fake_api.latency = 0.4
        first, second = RecordingListener(), RecordingListener()
        await service.submit(user, GenerationRequest("first"), first)
        waiting = await service.submit(user, GenerationRequest("second"), second)
        await wait_until(lambda: ("started", None) in first.events)
        async with LockedDatabase(fault_db.path) as lock:
            await asyncio.sleep(1.0)  # the first job's result and the second's start wait
            assert await status_of(capped_images, waiting) is JobStatus.PENDING
            await lock.release()
        await first.done(timeout=20)
        await second.done(timeout=20)
        assert first.result is not None and second.result is not None
        assert await coins(capped_users, user) == 100
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_queued_job_is_failed_and_refunded_when_the_lock_outlasts_the_budget(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    service = make_service(capped_images, local_store, client, retry_seconds=0.3, max_concurrent=1)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        fake_api.latency = 0.3
        first, second = RecordingListener(), RecordingListener()
        running = await service.submit(user, GenerationRequest("first"), first)
        waiting = await service.submit(user, GenerationRequest("second"), second)
        await wait_until(lambda: ("started", None) in first.events)
        async with LockedDatabase(fault_db.path):
            await asyncio.sleep(1.5)
        await first.done(timeout=20)
        await second.done(timeout=20)
        # Neither could be recorded while the file was locked: both end FAILED, refunded.
        assert first.failure is not None and first.failure.key == "reason.storage"
        assert second.failure is not None and second.failure.key == "reason.database"
        for job in (running, waiting):
            assert await status_of(capped_images, job) is JobStatus.FAILED
            assert await ledger_of(fault_db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
        assert await capped_images.db.fetchval("SELECT COUNT(*) FROM images") == 0
        assert await coins(capped_users, user) == 300
        assert await local_store.list() == []  # the first job's objects were removed
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


class WorkerKiller(BaseException):
    """Something no job should ever raise."""


class KillingGenerator:
    """An image client that raises what no job should ever raise, inside the worker."""

    def __init__(self, inner: NanobananaClient) -> None:
        self.model = inner.model

    async def generate(self, *args: object, **kwargs: object) -> GeneratedImage:
        raise WorkerKiller("boom")


async def test_a_worker_that_dies_is_restarted_and_its_job_refunded(
    capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    service = make_service(capped_images, local_store, client, retry_seconds=1)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        listener = RecordingListener()
        service.kind.generator = KillingGenerator(client)
        job = await service.submit(user, GenerationRequest("x"), listener)
        await listener.done()
        assert listener.failure is not None and listener.failure.key == "reason.internal"
        assert await status_of(capped_images, job) is JobStatus.FAILED
        assert await ledger_of(capped_images.db, job.id) == [
            ("GENERATION", -100), ("REFUND", 100),
        ]  # fmt: skip
        await wait_until(lambda: service.worker_restarts == 1)
        service.kind.generator = client
        assert "job worker" in caplog.text and "restarting it" in caplog.text
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_recover_never_stops_start_up_and_settles_once_the_lock_is_gone(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    user = await member(capped_users, 1, 300)
    jobs = [await leftover(capped_images, user, prompt) for prompt in ("a", "b")]
    service = make_service(capped_images, local_store, client, retry_seconds=0.3)
    # The background sweep (every half lease: 15 s) settles them; the test needn't wait so.
    service.engine.sweep_seconds = 0.5
    told: list[Refund] = []

    async def tell(event: JobsRecovered) -> None:
        told.extend(event.refunds)

    service.events.subscribe(JobsRecovered, tell)
    unfinished = JobRepository(fault_db).list_unfinished
    try:
        async with LockedDatabase(fault_db.path) as lock:
            assert await service.recover() == []  # logged, not raised: start-up goes on
            await service.start()
            await asyncio.sleep(0.3)
            assert len(await unfinished()) == 2
            await lock.release()
        await wait_until(lambda: len(told) == 2)
        assert sorted(r.job.id for r in told) == sorted(j.id for j in jobs)
        assert await unfinished() == []
        for job in jobs:
            assert await ledger_of(fault_db, job.id) == [("GENERATION", -100), ("REFUND", 100)]
        assert await coins(capped_users, user) == 300
        # It registered while locked out too (retried every half second): it takes jobs once
        # the database knows it, and not before (a job now would look abandoned to others).
        await wait_until(lambda: service.process.registered)
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_recovery_never_touches_this_runs_own_jobs(
    capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    """The background recovery runs while workers do: only a previous run's leftovers are
    refunded, never a job of this run that happens to be PENDING or PROCESSING."""
    user = await member(capped_users, 1, 300)
    crashed = await leftover(capped_images, user, "a")
    service = make_service(capped_images, local_store, client, retry_seconds=1)
    await service.start()
    try:
        fake_api.latency = 0.5
        listener = RecordingListener()
        running = await service.submit(user, GenerationRequest("mine"), listener)
        refunds = await service.recover()
        assert [r.job.id for r in refunds] == [crashed.id]
        await listener.done()
        assert listener.result is not None
        assert await status_of(capped_images, running) is JobStatus.COMPLETED
        assert await ledger_of(capped_images.db, running.id) == [("GENERATION", -100)]
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_a_refund_that_would_overflow_is_recorded_not_fatal(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A grant near the int64 limit while a job is in flight (as the bot allowed before
    balances were capped) used to make the refund overflow, kill the worker, and then stop
    every start-up in recover(). Now the refund is refused past the cap, recorded on the job
    and reported, and the worker goes on."""
    service = make_service(capped_images, local_store, client, retry_seconds=1)
    await service.start()
    try:
        user = await member(capped_users, 1, 300)
        fake_api.default = Behaviour(Mode.BLOCK_PROMPT, latency=0.3)
        listener = RecordingListener()
        job = await service.submit(user, GenerationRequest("x"), listener)
        # The old, uncapped path: a balance near the largest storable integer.
        uncapped = WalletRepository(fault_db)
        await uncapped.credit(user.wallet_id, INT64_MAX - 250, kind=TransactionKind.GRANT)
        await listener.done()
        assert listener.failure is not None
        assert (listener.failure.refunded, listener.failure.owed) == (0, 100)
        failed = await JobRepository(fault_db).get(job.id)
        assert failed is not None and failed.status is JobStatus.FAILED
        assert failed.refund_owed == 100
        # Charged once, never refunded (the refund is owed, for the owner to settle).
        assert await ledger_of(fault_db, job.id) == [("GENERATION", -100)]
        assert "could not be applied" in caplog.text
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_recover_records_a_refund_past_the_cap_and_goes_on(
    fault_db: SQLiteDatabase, capped_users: WalletRepository, capped_images: ImageRepository,
    local_store: LocalObjectStore, client: NanobananaClient, fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    rich = await member(capped_users, 1, 300)
    other = await member(capped_users, 2, 300)
    stuck = await leftover(capped_images, rich, "a")
    fine = await leftover(capped_images, other, "b")
    await WalletRepository(fault_db).credit(
        rich.wallet_id, INT64_MAX - 250, kind=TransactionKind.GRANT
    )
    service = make_service(capped_images, local_store, client, retry_seconds=1)
    refunds = {r.job.id: r for r in await service.recover()}
    assert (refunds[stuck.id].refunded, refunds[stuck.id].owed) == (0, 100)
    assert (refunds[fine.id].refunded, refunds[fine.id].owed) == (100, 0)
    assert refunds[stuck.id].job.refund_owed == 100
    assert await JobRepository(fault_db).list_unfinished() == []
    await service.start()
    try:
        await assert_healthy(service, capped_users, capped_images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_grants_leave_room_for_refunds_of_jobs_in_flight(
    fault_db: SQLiteDatabase, local_store: LocalObjectStore, client: NanobananaClient,
    fake_api: FakeNanobanana,
) -> None:  # fmt: skip
    guild = 9001
    services = build_services(fault_db, max_grant=1000, max_balance=1000, starter_coins=300)
    images = ImageRepository(fault_db, max_balance=1000)
    service = make_service(images, local_store, client, retry_seconds=1)
    await service.start()
    try:
        target = Identity(discord_id=1, display_name="member", guild_id=guild)
        user = await services.accounts.ensure_user(target)
        wallet = await services.wallets.open(user, guild)
        payer = Payer(user.id, wallet.id, guild, 100, 100, wallet.coins)
        mod = await services.accounts.actor(
            Identity(discord_id=2, display_name="mod", guild_id=guild, can_manage_guild=True)
        )
        fake_api.default = Behaviour(Mode.BLOCK_PROMPT, latency=0.5)
        listener = RecordingListener()
        await service.submit(payer, GenerationRequest("x"), listener)  # 200 left, 100 held
        with pytest.raises(InvalidInput) as refused:
            await services.wallets.grant(mod, target, 800)
        assert refused.value.key == "grant.overflow"
        assert refused.value.params == {"user": "member", "max": 1000, "room": 700}
        assert (await services.wallets.open(user, guild)).coins == 200
        assert (await services.wallets.grant(mod, target, 700)).balance == 900
        await listener.done()
        assert listener.failure is not None and listener.failure.refunded == 100
        assert (await services.wallets.open(user, guild)).coins == 1000
        await assert_healthy(service, services.wallets.wallets, images, fake_api)
    finally:
        await service.close(deadline=5)


async def test_forged_grant_amounts_are_refused_clearly(fault_db: SQLiteDatabase) -> None:
    services = build_services(fault_db, max_grant=50, starter_coins=0)
    mod = await services.accounts.actor(
        Identity(discord_id=2, display_name="mod", guild_id=9001, can_manage_guild=True)
    )
    target = Identity(discord_id=1, display_name="member")
    for amount in ("12", 1.5, None, True, 0, 51):
        with pytest.raises(InvalidInput) as refused:
            await services.wallets.grant(mod, target, amount)  # type: ignore[arg-type]
        assert refused.value.key == "grant.amount"
    assert await UserRepository(fault_db).count() == 0
