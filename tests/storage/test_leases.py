"""Process leases on both backends: what several bot processes share through the database.

"Two processes" here are two connections to one database (`db` and `db_twin`), as two bot
processes open it: on SQLite two connections to one file, on PostgreSQL two pools."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import Database
from storage.errors import ObjectsReclaimed, TooManyActiveJobs
from storage.images import ImageRepository, StoredObject
from storage.jobs import JobRepository, JobStatus
from storage.leases import LeaseRepository
from tests.storage.helpers import assert_ledger_consistent, member, paid_job

LIVE, DEAD = "process-live", "process-dead"


async def processes(db: Database) -> LeaseRepository:
    """A live process and one whose lease expired a second ago."""
    leases = LeaseRepository(db)
    await leases.register(LIVE, "live", 60)
    await leases.register(DEAD, "dead", -1)
    return leases


async def job(db: Database, owner: str | None, discord_id: int, coins: int = 300) -> str:
    """A new member's PENDING paid job (100 coins) of process `owner`."""
    user, wallet = await member(db, discord_id, coins)
    return (await paid_job(db, user, wallet, 100, lease_owner=owner)).id


async def status(db: Database, job_id: str) -> JobStatus:
    found = await JobRepository(db).get(job_id)
    assert found is not None
    return found.status


async def test_only_jobs_of_dead_processes_are_swept(db: Database) -> None:
    leases = await processes(db)
    mine = await job(db, LIVE, 1)
    dead = await job(db, DEAD, 2)
    unknown = await job(db, "never-registered", 3)
    legacy = await job(db, None, 4)  # from before leases: nobody's
    work = await leases.sweep_work()
    assert {j.id for j in work.expired_jobs} == {dead, unknown, legacy}
    jobs = JobRepository(db)
    assert await jobs.fail_and_refund(mine, "x", only_if_expired=True) is None
    assert await status(db, mine) is JobStatus.PENDING
    assert await jobs.fail_and_refund(dead, "x", only_if_expired=True) is not None
    assert await status(db, dead) is JobStatus.FAILED
    assert {j.id for j in (await leases.sweep_work()).expired_jobs} == {unknown, legacy}


async def test_an_expired_job_is_refunded_once_by_racing_processes(
    db: Database, db_twin: Database
) -> None:
    await processes(db)
    expired = await job(db, DEAD, 1)
    racers = [JobRepository(db), JobRepository(db_twin)] * 5
    outcomes = await asyncio.gather(
        *(r.fail_and_refund(expired, "interrupted", only_if_expired=True) for r in racers)
    )
    assert sum(o is not None for o in outcomes) == 1
    assert sum(o.refunded for o in outcomes if o is not None) == 100
    refunds = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND' AND job_id = ?", (expired,)
    )
    assert refunds == 1
    await assert_ledger_consistent(db)


async def test_a_renewed_lease_protects_its_jobs_again(db: Database) -> None:
    leases = await processes(db)
    dead = await job(db, DEAD, 1)
    assert await leases.renew(DEAD, 60)  # the process was only slow
    assert (await leases.sweep_work()).expired_jobs == []
    assert await JobRepository(db).fail_and_refund(dead, "x", only_if_expired=True) is None


async def test_a_removed_process_registers_again_when_it_renews(db: Database) -> None:
    leases = LeaseRepository(db)
    await leases.register("p", "p", -1)
    assert await leases.forget_dead_processes() == 1
    assert await leases.renew("p", 60) is False  # it was taken for dead
    assert await leases.is_live("p")


async def test_the_member_cap_holds_across_processes(db: Database, db_twin: Database) -> None:
    await processes(db)
    user, wallet = await member(db, 1, 10_000)
    repos = [JobRepository(db), JobRepository(db_twin)] * 4

    async def reserve(repo: JobRepository) -> bool:
        try:
            await repo.reserve(
                kind="image", user_id=user.id, wallet_id=wallet.id, cost=10, lease_owner=LIVE,
                max_active=2,
            )  # fmt: skip
        except TooManyActiveJobs:
            return False
        return True

    assert sum(await asyncio.gather(*(reserve(r) for r in repos))) == 2
    assert await db.fetchval("SELECT COUNT(*) FROM jobs") == 2  # the refused left nothing
    # Jobs of a dead process don't count: its jobs are about to be refunded.
    dead_user, dead_wallet = await member(db, 2, 10_000)
    for _ in range(3):
        await paid_job(db, dead_user, dead_wallet, 10, lease_owner=DEAD, max_active=2)
    await assert_ledger_consistent(db)


async def test_generation_slots_bound_every_process_together(
    db: Database, db_twin: Database
) -> None:
    leases = await processes(db)
    await LeaseRepository(db).register("other", "other", 60)
    await leases.ensure_slots(2)
    jobs = [await job(db, LIVE, 1), await job(db, "other", 2), await job(db, LIVE, 3)]
    twin = LeaseRepository(db_twin)
    taken = await asyncio.gather(
        leases.start_job(jobs[0], LIVE, 2), twin.start_job(jobs[1], "other", 2)
    )
    assert sorted(t for t in taken if t is not None) == [0, 1]
    assert await leases.start_job(jobs[2], LIVE, 2) is None  # both busy: nothing changed
    assert await status(db, jobs[2]) is JobStatus.PENDING
    assert await leases.slots_in_use() == 2
    # The other process dies holding its slot: the slot is free again.
    await db.execute("UPDATE bot_processes SET lease_until = '2000-01-01T00:00:00.000000Z' "
                     "WHERE id = 'other'")  # fmt: skip
    assert await leases.start_job(jobs[2], LIVE, 2) is not None
    assert await status(db, jobs[2]) is JobStatus.PROCESSING
    # A job that is no longer pending is refused.
    with pytest.raises(Exception, match="PROCESSING"):
        await leases.start_job(jobs[2], LIVE, 2)


async def test_a_named_lock_has_one_live_holder(db: Database, db_twin: Database) -> None:
    leases = await processes(db)
    await leases.register("b", "b", 60)
    twin = LeaseRepository(db_twin)
    first, second = await asyncio.gather(leases.acquire("sync", LIVE), twin.acquire("sync", "b"))
    assert [first, second].count(True) == 1
    holder, other = (LIVE, "b") if first else ("b", LIVE)
    assert await leases.acquire("sync", holder)  # re-entrant for its holder
    await leases.release("sync", holder)
    assert await leases.acquire("sync", other)
    # A dead holder's lock is free.
    assert await leases.acquire("sweep", DEAD)
    assert await leases.acquire("sweep", LIVE)


async def test_dead_intents_are_taken_once_and_a_late_row_is_refused(
    db: Database, db_twin: Database
) -> None:
    leases = await processes(db)
    await leases.add_intents(DEAD, ["images/a.png", "thumbnails/a.webp"])
    await leases.add_intents(LIVE, ["images/b.png"])
    work = await leases.sweep_work()
    assert sorted(work.dead_intents) == ["images/a.png", "thumbnails/a.webp"]
    taken = await asyncio.gather(
        leases.take_dead_intents(work.dead_intents),
        LeaseRepository(db_twin).take_dead_intents(work.dead_intents),
    )
    assert sorted(taken[0] + taken[1]) == ["images/a.png", "thumbnails/a.webp"]
    assert await leases.intent_keys() == {"images/b.png"}
    # The dead process comes back and tries to record an upload of the taken objects.
    user, wallet = await member(db, 1, 300)
    with pytest.raises(ObjectsReclaimed):
        await ImageRepository(db).create_upload(
            user_id=user.id, wallet_id=wallet.id, cost=0,
            stored=StoredObject("images/a.png", None, "thumbnails/a.webp", None),
            metadata={}, owner=DEAD, intents=["images/a.png", "thumbnails/a.webp"],
        )  # fmt: skip
    assert await db.fetchval("SELECT COUNT(*) FROM images") == 0
    # The live one records its upload: its intent goes with the row.
    await ImageRepository(db).create_upload(
        user_id=user.id, wallet_id=wallet.id, cost=0,
        stored=StoredObject("images/b.png", None, None, None), metadata={}, owner=LIVE,
        intents=["images/b.png"],
    )  # fmt: skip
    assert await leases.intent_keys() == set()


async def test_retiring_frees_slots_and_locks_and_expires_jobs(db: Database) -> None:
    leases = await processes(db)
    await leases.ensure_slots(1)
    pending = await job(db, LIVE, 1)
    assert await leases.start_job(pending, LIVE, 1) == 0
    assert await leases.acquire("sync", LIVE)
    await leases.retire(LIVE)
    assert await leases.slots_in_use() == 0
    assert await leases.acquire("sync", "someone")
    assert [j.id for j in (await leases.sweep_work()).expired_jobs] == [pending]
