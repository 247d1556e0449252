"""Budgets in the database: a reservation admitted or refused in the transaction that debits,
two processes (two connections to one database, on both backends) racing at the edge of a
cap, notices recorded once, and what failing, billing and an interrupted job do to the counts."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import Database
from storage.jobs import JobRepository, JobRow, JobStatus
from storage.models import User, Wallet
from storage.usage import Billed, BudgetClaim, BudgetExceeded, Cap, CapKind, UsageRepository
from tests.storage.helpers import assert_ledger_consistent, member

PROCESS = "process-live"

GUILD = 424242424242424242


def claim(estimate: int, *caps: Cap, day: str = "2026-03-09") -> BudgetClaim:
    return BudgetClaim(
        guild_id=GUILD, model="gemini-2.5-flash-image", image_size=None, estimate_micros=estimate,
        day=day, month=day[:7], now=f"{day}T12:00:00.000000Z", caps=caps,
    )  # fmt: skip


async def reserve(
    jobs: JobRepository, user: User, wallet: Wallet, cost: int, budget: BudgetClaim
) -> tuple[JobRow, list[int]]:
    """A paid image job admitted by `budget`; the notice thresholds it made due."""
    reservation = await jobs.reserve(
        kind="image", user_id=user.id, wallet_id=wallet.id, cost=cost, guild_id=GUILD,
        request={"prompt": "x"}, lease_owner=PROCESS, claim=budget,
    )  # fmt: skip
    return reservation.job, [threshold for _, threshold in reservation.notices]


async def test_two_processes_racing_at_the_edge_of_a_cap_admit_exactly_what_fits(
    db: Database, db_twin: Database
) -> None:
    first, second = db, db_twin
    payers = [await member(first, 1000 + n, 500, GUILD) for n in range(12)]
    cap = Cap(CapKind.USD_PER_MONTH, 5 * 40_000, "2026-03", GUILD)
    repos = [JobRepository(first), JobRepository(second)]

    async def attempt(n: int) -> str:
        user, wallet = payers[n]
        try:
            await reserve(repos[n % 2], user, wallet, 100, claim(40_000, cap))
        except BudgetExceeded:
            return "refused"
        return "admitted"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(12)))
    assert outcomes.count("admitted") == 5
    assert await UsageRepository(first).level(cap) == 200_000
    assert await UsageRepository(first).recount(cap) == 200_000
    # The refused paid nothing and left no row.
    assert await first.fetchval("SELECT COUNT(*) FROM jobs") == 5
    assert await first.fetchval("SELECT COUNT(*) FROM generation_usage") == 5
    assert await first.fetchval("SELECT SUM(coins) FROM wallets") == 12 * 500 - 5 * 100
    await assert_ledger_consistent(first)


async def test_notices_once_and_what_failing_billing_and_interruption_count(db: Database) -> None:
    repo, usage = JobRepository(db), UsageRepository(db)
    user, wallet = await member(db, 7, 1000, GUILD)
    cap = Cap(CapKind.IMAGES_PER_DAY, 5, "2026-03-09", GUILD)
    jobs, notices = [], []
    for _ in range(5):
        job, due = await reserve(repo, user, wallet, 10, claim(40_000, cap))
        jobs.append(job)
        notices += due
    assert notices == [80, 100]  # the 4th and the 5th image, each once
    with pytest.raises(BudgetExceeded) as refused:
        await reserve(repo, user, wallet, 10, claim(40_000, cap))
    assert refused.value.used == 5
    assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 5  # the refused left no job
    assert not await usage.record_notice(cap, 100)  # already told
    # A job that fails before any answer stops counting and is refunded.
    await repo.fail_and_refund(jobs[0].id, "model unavailable")
    assert await usage.level(cap) == 4
    # A billed job counts its real images and cost, even if it then fails at storage.
    await repo.mark_processing(jobs[1].id, PROCESS)
    assert await usage.bill(jobs[1].id, Billed(38_702, 2, 5, 2580, 2580))
    await repo.fail_and_refund(jobs[1].id, "storage failed")
    month = Cap(CapKind.USD_PER_MONTH, 10**9, "2026-03", GUILD)
    assert await usage.level(cap) == 3 + 2
    # An interrupted job that had reached the API keeps its estimate (it may be billed).
    await repo.mark_processing(jobs[2].id, PROCESS)
    await repo.fail_and_refund(jobs[2].id, "interrupted by a restart", interrupted=True)
    # An interrupted job that never reached the API counts nothing.
    await repo.fail_and_refund(jobs[3].id, "interrupted by a restart", interrupted=True)
    assert await usage.level(month) == 38_702 + 40_000 + 1 * 40_000
    totals = await usage.totals(GUILD, "month", "2026-03")
    assert totals.images == 3 and totals.coins == 10 and totals.in_flight == 1
    # The running totals are what the rows add up to.
    for each in (cap, month, Cap(CapKind.USD_PER_MONTH, 1, "2026-03")):
        assert await usage.level(each) == await usage.recount(each)
    # Another day is another count.
    tomorrow = Cap(CapKind.IMAGES_PER_DAY, 5, "2026-03-10", GUILD)
    job, _ = await reserve(repo, user, wallet, 10, claim(40_000, tomorrow, day="2026-03-10"))
    assert job.status is JobStatus.PENDING and await usage.level(tomorrow) == 1
    await assert_ledger_consistent(db)


async def test_extra_images_take_only_the_room_a_daily_cap_has_left(
    db: Database, db_twin: Database
) -> None:
    """The further images of answers, counted by two processes at once at the edge of a
    server's daily cap, never pass it; billing, failing and an interruption afterwards keep
    the running total equal to the usage rows."""
    repo, usage = JobRepository(db), UsageRepository(db)
    twin = UsageRepository(db_twin)
    user, wallet = await member(db, 8, 1000, GUILD)
    cap = Cap(CapKind.IMAGES_PER_DAY, 6, "2026-03-09", GUILD)
    jobs = [(await reserve(repo, user, wallet, 10, claim(40_000, cap)))[0] for _ in range(4)]
    assert await usage.level(cap) == 4
    # Two answers of three images each, counted at once: two places left between them.
    granted = await asyncio.gather(
        usage.take_extra_images(jobs[0].id, 2, cap.limit),
        twin.take_extra_images(jobs[1].id, 2, cap.limit),
    )
    assert sorted(granted) == [0, 2]
    assert await usage.level(cap) == 6 == await usage.recount(cap)
    assert await usage.take_extra_images(jobs[2].id, 1, cap.limit) == 0
    # Billed with what each kept: nothing moves.
    kept = {jobs[0].id: 1 + granted[0], jobs[1].id: 1 + granted[1]}
    for job_id, count in kept.items():
        await repo.mark_processing(job_id, PROCESS)
        assert await usage.bill(job_id, Billed(40_000 * count, count))
    assert await usage.level(cap) == 6 == await usage.recount(cap)
    # A job that fails without an answer gives its place back; extras counted for a job
    # that then fails go back with it.
    winner = jobs[2]
    assert await usage.take_extra_images(winner.id, 1, cap.limit) == 0
    await repo.fail_and_refund(jobs[3].id, "model unavailable")
    assert await usage.level(cap) == 5 == await usage.recount(cap)
    assert await usage.take_extra_images(winner.id, 3, cap.limit) == 1
    assert await usage.level(cap) == 6 == await usage.recount(cap)
    await repo.fail_and_refund(winner.id, "storage")
    assert await usage.level(cap) == 4 == await usage.recount(cap)
    await assert_ledger_consistent(db)
