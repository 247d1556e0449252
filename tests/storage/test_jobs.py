"""JobRepository (migration 0010) on both backends: the money of a paid job of any kind.

Reserve debits the wallet with a ledger row naming the job; a failure refunds it exactly once
(whoever races to fail it, in any process); a refund that would pass the balance cap is owed,
not lost; completion is idempotent and never follows a failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import jobs as job_rows
from storage.db import Database, Transaction
from storage.errors import (
    InsufficientCoins,
    InvalidTransition,
    ModelRetired,
    NotFound,
    TooManyActiveJobs,
)
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository, JobRow, JobStatus, Refund
from storage.leases import LeaseRepository
from storage.model_states import ModelStateRepository
from storage.models import TransactionKind
from storage.timeutil import utcnow
from storage.wallets import WalletRepository
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

LIVE, DEAD = "process-live", "process-dead"
GUILD = 9001
STORED = StoredObject("images/u/1-x.png", None, "thumbnails/u/1-x.webp", None)


async def ledger_rows(db: Database, job_id: str) -> list[tuple[str, int, str]]:
    rows = await db.fetchall(
        "SELECT kind, delta, wallet_id FROM coin_transactions WHERE job_id = ? ORDER BY seq",
        (job_id,),
    )
    return [(str(r["kind"]), int(r["delta"]), str(r["wallet_id"])) for r in rows]


async def counts(db: Database) -> tuple[int, int, int, int]:
    """Jobs, ledger rows, usage rows and image rows: what a refused write must not change."""
    return (
        int(await db.fetchval("SELECT COUNT(*) FROM jobs")),
        int(await db.fetchval("SELECT COUNT(*) FROM coin_transactions")),
        int(await db.fetchval("SELECT COUNT(*) FROM generation_usage")),
        int(await db.fetchval("SELECT COUNT(*) FROM images")),
    )


async def test_reserve_debits_with_a_ledger_row_naming_the_job(db: Database) -> None:
    user, wallet = await member(db, 1, 300, GUILD)
    reservation = await JobRepository(db).reserve(
        kind="image", user_id=user.id, wallet_id=wallet.id, cost=100, guild_id=GUILD,
        request={"prompt": "a banana", "aspect_ratio": "1:1"}, lease_owner=LIVE,
    )  # fmt: skip
    job = reservation.job
    assert reservation.balance == 200 and reservation.notices == []
    assert (job.kind, job.status, job.cost) == ("image", JobStatus.PENDING, 100)
    assert job.user_id == user.id
    assert (job.wallet_id, job.guild_id, job.lease_owner) == (wallet.id, GUILD, LIVE)
    assert job.request == {"prompt": "a banana", "aspect_ratio": "1:1"} and job.result == {}
    assert job.refund_owed is None and not job.finished
    assert await JobRepository(db).get(job.id) == job
    assert await ledger_rows(db, job.id) == [("GENERATION", -100, wallet.id)]
    newest = (await WalletRepository(db).transactions(wallet.id)).items[0]
    assert newest.kind is TransactionKind.GENERATION and newest.job_id == job.id
    assert newest.image_id is None  # no image exists yet: the job pays, not an image row
    assert await db.fetchval("SELECT COUNT(*) FROM images") == 0
    await assert_ledger_consistent(db)


async def test_refused_reservations_write_nothing(db: Database) -> None:
    user, wallet = await member(db, 1, 50)
    _, bobs = await member(db, 2, 500)
    jobs = JobRepository(db)
    before = await counts(db)
    with pytest.raises(InsufficientCoins) as poor:
        await jobs.reserve(kind="image", user_id=user.id, wallet_id=wallet.id, cost=100)
    assert (poor.value.balance, poor.value.cost) == (50, 100)
    with pytest.raises(NotFound):  # nobody pays from another member's wallet
        await jobs.reserve(kind="image", user_id=user.id, wallet_id=bobs.id, cost=1)
    await ModelStateRepository(db).retire("gemini-old-image", "shut down")
    with pytest.raises(ModelRetired):
        await jobs.reserve(
            kind="image", user_id=user.id, wallet_id=wallet.id, cost=1, model="gemini-old-image"
        )
    assert await counts(db) == before
    for paid, coins in ((wallet, 50), (bobs, 500)):
        assert (await WalletRepository(db).get(paid.id)).coins == coins  # type: ignore[union-attr]


async def test_a_refund_applies_exactly_once_whoever_races_for_it(
    db: Database, db_twin: Database
) -> None:
    """Ten callers on two connections (two processes) fail the same job at once: one refund,
    one ledger row, the others find nothing to do."""
    user, wallet = await member(db, 1, 300)
    job = await paid_job(db, user, wallet, 100, lease_owner=LIVE, processing=True)
    racers = [JobRepository(db), JobRepository(db_twin)] * 5
    outcomes = await asyncio.gather(*(r.fail_and_refund(job.id, "SAFETY") for r in racers))
    done = [o for o in outcomes if o is not None]
    assert len(done) == 1
    refund = done[0]
    assert (refund.refunded, refund.balance, refund.owed) == (100, 300, 0)
    assert refund.job.status is JobStatus.FAILED and refund.job.error == "SAFETY"
    assert await JobRepository(db).fail_and_refund(job.id, "again") is None
    assert await ledger_rows(db, job.id) == [
        ("GENERATION", -100, wallet.id),
        ("REFUND", 100, wallet.id),
    ]
    assert (await WalletRepository(db).get(wallet.id)).coins == 300  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_the_refund_once_index_holds_on_its_own(db: Database) -> None:
    """Behind the status guard, the database itself refuses a second REFUND row of a job."""
    user, wallet = await member(db, 1, 300)
    job = await paid_job(db, user, wallet, 100)
    assert await JobRepository(db).fail_and_refund(job.id, "x") is not None
    with pytest.raises(Exception, match=r"(?i)unique"):
        await db.execute(
            "INSERT INTO coin_transactions (id, wallet_id, user_id, delta, balance_after, kind, "
            "created_at, job_id) VALUES ('t2', ?, ?, 100, 400, 'REFUND', 'now', ?)",
            (wallet.id, user.id, job.id),
        )
    await assert_ledger_consistent(db)


async def test_only_if_expired_fails_only_jobs_of_processes_that_are_not_live(
    db: Database, db_twin: Database
) -> None:
    leases = LeaseRepository(db)
    await leases.register(LIVE, "live", 60)
    await leases.register(DEAD, "dead", -1)
    user, wallet = await member(db, 1, 1000)
    mine = await paid_job(db, user, wallet, lease_owner=LIVE, processing=True)
    dead = await paid_job(db, user, wallet, lease_owner=DEAD, processing=True)
    unknown = await paid_job(db, user, wallet, lease_owner="never-registered")
    legacy = await paid_job(db, user, wallet, lease_owner=None)
    jobs = JobRepository(db)
    assert {j.id for j in await jobs.expired()} == {dead.id, unknown.id, legacy.id}
    assert await jobs.fail_and_refund(mine.id, "x", only_if_expired=True) is None
    assert (await jobs.get(mine.id)).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    racers = [JobRepository(db), JobRepository(db_twin)] * 3
    for expired in (dead, unknown, legacy):
        outcomes = await asyncio.gather(
            *(r.fail_and_refund(expired.id, "interrupted", only_if_expired=True) for r in racers)
        )
        assert [o.refunded for o in outcomes if o is not None] == [100]
    assert [j.id for j in await jobs.expired()] == []
    assert (await WalletRepository(db).get(wallet.id)).coins == 900  # type: ignore[union-attr]
    # The live process ends its own job as usual (no lease guard).
    assert (await jobs.fail_and_refund(mine.id, "x")) is not None
    await assert_ledger_consistent(db)


async def test_a_refund_past_the_balance_cap_is_owed_not_lost(db: Database) -> None:
    user, wallet = await member(db, 1, 1000)
    capped = JobRepository(db, max_balance=1000)
    job = await paid_job(db, user, wallet, 100, lease_owner=LIVE, processing=True)
    # Meanwhile the wallet was filled to the cap (a grant that did not keep room).
    await WalletRepository(db, max_balance=1000).credit(wallet.id, 100, kind=TransactionKind.GRANT)
    refund = await capped.fail_and_refund(job.id, "model unavailable")
    assert refund is not None
    assert (refund.refunded, refund.owed, refund.balance) == (0, 100, 1000)
    failed = await capped.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED and failed.refund_owed == 100
    assert failed.error is not None and "refund owed" in failed.error
    assert await capped.fail_and_refund(job.id, "again") is None  # owed once, not twice
    assert await ledger_rows(db, job.id) == [("GENERATION", -100, wallet.id)]
    assert (await WalletRepository(db).get(wallet.id)).coins == 1000  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_the_reason_is_kept_as_the_result(db: Database) -> None:
    user, wallet = await member(db, 1, 300)
    job = await paid_job(db, user, wallet)
    reason = {"key": "reason.blocked", "params": {"category": "IMAGE_SAFETY"}}
    refund = await JobRepository(db).fail_and_refund(job.id, "blocked: IMAGE_SAFETY", reason=reason)
    assert refund is not None and refund.job.result == reason
    later = await JobRepository(db).get(job.id)
    assert later is not None and later.result == reason and later.error == "blocked: IMAGE_SAFETY"
    # A failure with no reason to tell keeps an empty result.
    plain = await paid_job(db, user, wallet)
    refunded = await JobRepository(db).fail_and_refund(plain.id, "boom")
    assert refunded is not None and refunded.job.result == {}


async def complete(db: Database, job_id: str, result: dict[str, object]) -> JobRow:
    async def body(tx: Transaction) -> JobRow:
        return await job_rows.complete(tx, job_id, result)

    return await db.write(body)


async def test_complete_is_idempotent_and_a_completed_job_is_never_refunded(db: Database) -> None:
    user, wallet = await member(db, 1, 300)
    job = await paid_job(db, user, wallet, lease_owner=LIVE, processing=True)
    done = await complete(db, job.id, {"caption": "a banana"})
    assert done.status is JobStatus.COMPLETED and done.result == {"caption": "a banana"}
    # The same completion again (a retry after a lost COMMIT answer) is the same job...
    assert await complete(db, job.id, {"caption": "a banana"}) == done
    # ...but another result is refused, and nothing changes.
    with pytest.raises(InvalidTransition):
        await complete(db, job.id, {"caption": "a pear"})
    assert await JobRepository(db).get(job.id) == done
    assert await JobRepository(db).fail_and_refund(job.id, "late") is None
    assert await ledger_rows(db, job.id) == [("GENERATION", -100, wallet.id)]
    assert (await WalletRepository(db).get(wallet.id)).coins == 200  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_complete_after_a_failure_is_refused_and_writes_nothing(db: Database) -> None:
    user, wallet = await member(db, 1, 300, GUILD)
    jobs, images = JobRepository(db), ImageRepository(db)
    job = await paid_job(db, user, wallet, guild_id=GUILD, lease_owner=LIVE, processing=True)
    reason = {"key": "reason.storage", "params": {}}
    assert await jobs.fail_and_refund(job.id, "storage failed", reason=reason) is not None
    failed = await jobs.get(job.id)
    before = await counts(db)
    with pytest.raises(InvalidTransition):
        await complete(db, job.id, {"caption": "too late"})
    # The image kind's completion (its rows and the job's in one transaction) is refused too.
    with pytest.raises(InvalidTransition):
        await images.complete_with_extras(job.id, STORED, {}, [(STORED, {"index": 1})])
    assert await jobs.get(job.id) == failed and failed is not None
    assert failed.result == reason
    assert await counts(db) == before
    assert await images.count_by_user(user.id, guild_id=GUILD) == 0
    assert (await WalletRepository(db).get(wallet.id)).coins == 300  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_only_a_started_job_completes(db: Database) -> None:
    user, wallet = await member(db, 1, 300)
    pending = await paid_job(db, user, wallet, lease_owner=LIVE)
    with pytest.raises(InvalidTransition):
        await complete(db, pending.id, {})
    with pytest.raises(NotFound):
        await complete(db, "no-such-job", {})
    assert (await JobRepository(db).get(pending.id)).status is JobStatus.PENDING  # type: ignore[union-attr]


async def test_mark_processing_moves_only_this_processes_pending_job(db: Database) -> None:
    user, wallet = await member(db, 1, 300)
    jobs = JobRepository(db)
    job = await paid_job(db, user, wallet, lease_owner=LIVE)
    with pytest.raises(NotFound):
        await jobs.mark_processing(job.id, "another-process")
    assert await jobs.mark_processing(job.id, LIVE, model="gemini-x") is False
    with pytest.raises(InvalidTransition):
        await jobs.mark_processing(job.id, LIVE)
    assert (await jobs.get(job.id)).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    # A model some process found retired since the reservation: the job is told not to call it.
    other = await paid_job(db, user, wallet, lease_owner=LIVE)
    await ModelStateRepository(db).retire("gemini-x", "gone")
    assert await jobs.mark_processing(other.id, LIVE, model="gemini-x") is True


async def test_free_jobs_move_no_coins(db: Database) -> None:
    user, wallet = await member(db, 1)
    jobs = JobRepository(db)
    free = await paid_job(db, user, wallet, 0)
    refund = await jobs.fail_and_refund(free.id, "boom")
    assert refund is not None and (refund.refunded, refund.balance) == (0, 0)
    # A job no wallet paid for (a host's own job).
    walletless = await paid_job(db, user, None, 0)
    refund = await jobs.fail_and_refund(walletless.id, "boom")
    assert refund is not None and (refund.refunded, refund.balance, refund.owed) == (0, 0, 0)
    assert await db.fetchval("SELECT COUNT(*) FROM coin_transactions") == 0


async def test_a_refund_goes_back_to_the_wallet_that_paid(db: Database) -> None:
    user, in_a = await member(db, 1, 300, GUILD)
    in_b = (await WalletRepository(db).open(user.id, GUILD + 1, starter_coins=300)).wallet
    job = await paid_job(db, user, in_a, 100, guild_id=GUILD)
    assert job.wallet_id == in_a.id and job.guild_id == GUILD
    refund = await JobRepository(db).fail_and_refund(job.id, "boom")
    assert refund is not None and refund.balance == 300
    assert (await WalletRepository(db).get(in_b.id)).coins == 300  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_list_unfinished(db: Database) -> None:
    user, wallet = await member(db, 1, 1000)
    jobs = JobRepository(db)
    pending = await paid_job(db, user, wallet, 1, lease_owner=LIVE)
    running = await paid_job(db, user, wallet, 1, lease_owner=LIVE, processing=True)
    failed = await paid_job(db, user, wallet, 1)
    await jobs.fail_and_refund(failed.id, "x")
    finished = await paid_job(db, user, wallet, 1, lease_owner=LIVE, processing=True)
    await complete(db, finished.id, {})
    left = await jobs.list_unfinished(before=utcnow() + timedelta(seconds=1))
    assert [j.id for j in left] == [pending.id, running.id]
    assert await jobs.list_unfinished(before=utcnow() - timedelta(days=1)) == []
    assert [j.id for j in await jobs.list_unfinished()] == [pending.id, running.id]


async def test_a_member_who_leaves_takes_their_jobs(db: Database) -> None:
    user, wallet = await member(db, 1, 300)
    await paid_job(db, user, wallet)
    await db.execute("DELETE FROM users WHERE id = ?", (user.id,))
    assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 0
    assert await db.fetchval("SELECT COUNT(*) FROM coin_transactions") == 0


async def test_a_batch_is_reserved_whole_or_not_at_all(db: Database) -> None:
    """`reserve_all` (a batch of images): every job paid in one transaction, or nothing."""
    user, wallet = await member(db, 1, 250, GUILD)
    jobs = JobRepository(db)
    await LeaseRepository(db).register(LIVE, "live", 60)

    def order(n: int, *, max_active: int | None = None) -> job_rows.JobOrder:
        return job_rows.JobOrder(
            kind="image", user_id=user.id, wallet_id=wallet.id, cost=100, guild_id=GUILD,
            request={"prompt": f"banana {n}"}, lease_owner=LIVE, max_active=max_active,
        )  # fmt: skip

    before = await counts(db)
    # The third image can't be paid: the first two are not reserved either.
    with pytest.raises(InsufficientCoins):
        await jobs.reserve_all([order(1), order(2), order(3)])
    assert await counts(db) == before
    # Over the member's slots (each order counts the ones reserved before it): nothing.
    with pytest.raises(TooManyActiveJobs):
        await jobs.reserve_all([order(1, max_active=1), order(2, max_active=1)])
    assert await counts(db) == before
    reserved = await jobs.reserve_all([order(1, max_active=2), order(2, max_active=2)])
    assert [r.balance for r in reserved] == [150, 50]
    assert len({r.job.id for r in reserved}) == 2
    for reservation in reserved:
        assert await ledger_rows(db, reservation.job.id) == [("GENERATION", -100, wallet.id)]
    # Each is refunded on its own, exactly once.
    refund = await jobs.fail_and_refund(reserved[1].job.id, "model unavailable")
    assert refund is not None and refund.refunded == 100 and refund.balance == 150
    assert await jobs.fail_and_refund(reserved[1].job.id, "again") is None
    assert (await jobs.get(reserved[0].job.id)).status is JobStatus.PENDING  # type: ignore[union-attr]


async def test_a_cancel_fails_only_a_pending_job_and_races_its_start(
    db: Database, db_twin: Database
) -> None:
    """`only_if_pending` (a member's cancel): a PROCESSING job is left alone; a cancel racing
    the job's start on another connection either wins (the start is refused) or finds the job
    started (nothing refunded), never both."""
    user, wallet = await member(db, 1, 300)
    jobs = JobRepository(db)
    started = await paid_job(db, user, wallet, 100, lease_owner=LIVE, processing=True)
    assert await jobs.fail_and_refund(started.id, "cancelled", only_if_pending=True) is None
    assert (await jobs.get(started.id)).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    waiting = await paid_job(db, user, wallet, 100, lease_owner=LIVE)
    cancel, start = await asyncio.gather(
        jobs.fail_and_refund(waiting.id, "cancelled", only_if_pending=True),
        JobRepository(db_twin).mark_processing(waiting.id, LIVE),
        return_exceptions=True,
    )
    if isinstance(start, InvalidTransition):
        assert isinstance(cancel, Refund) and cancel.refunded == 100
        assert await ledger_rows(db, waiting.id) == [
            ("GENERATION", -100, wallet.id),
            ("REFUND", 100, wallet.id),
        ]
    else:
        assert start is False and cancel is None
        assert await ledger_rows(db, waiting.id) == [("GENERATION", -100, wallet.id)]
    await assert_ledger_consistent(db)
