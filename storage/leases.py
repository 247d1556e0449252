"""LeaseRepository: what several bot processes share through the database (migration 0005).

- *Processes*: each running bot registers a row whose `lease_until` its heartbeat renews. A
  process is live while its lease runs; a missing row is a dead process.
- *Jobs*: an unfinished job names its process (`jobs.lease_owner`). Jobs whose process is not
  live are expired: `JobRepository.fail_and_refund(..., only_if_expired=True)` fails and
  refunds one exactly once, whichever process gets there first.
- *Generation slots*: MAX_CONCURRENT_GENERATIONS rows for the whole deployment; a process takes
  one for a job's call to the model. A slot held by a dead process is free.
- *Object intents*: keys a process is writing before the row that will point to them commits;
  the storage sweep leaves them alone, and those of a dead process are deleted.
- *Named leases*: a lock held by one live process at a time (start-up maintenance).

Times are ISO-8601 text from each process's clock (hosts keep time with NTP; leases last tens
of seconds, far above any sane skew).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.db import Database, Transaction
from storage.errors import InvalidTransition, NotFound
from storage.intents import add_intents, clear_intents, live
from storage.jobs import UNFINISHED, JobRepository, JobRow
from storage.timeutil import from_iso, to_iso, utcnow, utcnow_iso


@dataclass(frozen=True)
class ProcessInfo:
    """A registered process and how long its lease runs."""

    id: str
    name: str
    started_at: datetime
    lease_until: datetime


@dataclass(frozen=True)
class SweepWork:
    """What a sweep found to do: expired jobs to fail and refund, objects to delete."""

    expired_jobs: list[JobRow]
    dead_intents: list[str]


class LeaseRepository:
    """Processes, their leases, and what they hold."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Processes ---------------------------------------------------------------------------

    async def register(self, process_id: str, name: str, lease_seconds: float) -> None:
        """Record this process as live for `lease_seconds` (again, if its row was removed)."""
        now = utcnow()
        await self.db.execute(
            "INSERT INTO bot_processes (id, name, started_at, lease_until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
            (process_id, name[:200], to_iso(now), to_iso(now + timedelta(seconds=lease_seconds))),
        )

    async def renew(self, process_id: str, lease_seconds: float) -> bool:
        """Extend the lease; False if the row was gone (the process was taken for dead, its
        jobs may have been refunded) and has just been registered again."""
        until = to_iso(utcnow() + timedelta(seconds=lease_seconds))
        changed = await self.db.execute(
            "UPDATE bot_processes SET lease_until = ? WHERE id = ?", (until, process_id)
        )
        if changed:
            return True
        await self.register(process_id, f"{process_id} (re-registered)", lease_seconds)
        return False

    async def retire(self, process_id: str) -> None:
        """This process stops: its row goes (what it still holds is expired at once), and so
        do its slots and locks."""

        async def body(tx: Transaction) -> None:
            await tx.execute(
                "UPDATE generation_slots SET holder = NULL, job_id = NULL WHERE holder = ?",
                (process_id,),
            )
            await tx.execute("DELETE FROM leases WHERE holder = ?", (process_id,))
            await tx.execute("DELETE FROM bot_processes WHERE id = ?", (process_id,))

        await self.db.write(body)

    async def processes(self) -> list[ProcessInfo]:
        """Every registered process (live or not yet swept), oldest first."""
        rows = await self.db.fetchall(
            "SELECT id, name, started_at, lease_until FROM bot_processes ORDER BY started_at, id"
        )
        return [
            ProcessInfo(r["id"], r["name"], from_iso(r["started_at"]), from_iso(r["lease_until"]))
            for r in rows
        ]

    async def is_live(self, process_id: str) -> bool:
        return bool(
            await self.db.fetchval(
                "SELECT COUNT(*) FROM bot_processes WHERE id = ? AND lease_until >= ?",
                (process_id, utcnow_iso()),
            )
        )

    # Expired leases ----------------------------------------------------------------------

    async def sweep_work(self, limit: int = 200) -> SweepWork:
        """Jobs whose process is not live, and object intents of dead processes."""
        now = utcnow_iso()
        expired = await JobRepository(self.db).expired(limit)
        intents = await self.db.fetchall(
            f"SELECT key FROM object_intents o WHERE NOT {live('o.owner')} ORDER BY key LIMIT ?",
            (now, limit),
        )
        return SweepWork(expired, [str(r[0]) for r in intents])

    async def take_dead_intents(self, keys: Sequence[str]) -> list[str]:
        """Remove the intents of `keys` whose owner is (still) dead; the keys removed, whose
        objects the caller now deletes. Guarded on the lease: a process that committed its
        row meanwhile removed its intents itself, and keeps its objects."""
        if not keys:
            return []
        now = utcnow_iso()

        async def body(tx: Transaction) -> list[str]:
            taken = []
            for key in keys:
                row = await tx.fetchone(
                    f"DELETE FROM object_intents WHERE key = ? AND NOT {live('owner')} "
                    "RETURNING key",
                    (key, now),
                )
                if row is not None:
                    taken.append(str(row[0]))
            return taken

        return await self.db.write(body)

    async def forget_dead_processes(self) -> int:
        """Remove the rows of processes whose lease expired and that hold nothing any more."""
        now = utcnow_iso()
        return await self.db.execute(
            "DELETE FROM bot_processes WHERE lease_until < ? "
            f"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.lease_owner = bot_processes.id "
            f"AND j.{UNFINISHED}) "
            "AND NOT EXISTS (SELECT 1 FROM object_intents o WHERE o.owner = bot_processes.id)",
            (now,),
        )

    # Generation slots --------------------------------------------------------------------

    async def ensure_slots(self, count: int) -> None:
        """Make sure slots 0..count-1 exist (a deployment uses the first `count`)."""

        async def body(tx: Transaction) -> None:
            await tx.executemany(
                "INSERT INTO generation_slots (slot) VALUES (?) ON CONFLICT (slot) DO NOTHING",
                [(n,) for n in range(count)],
            )

        await self.db.write(body)

    async def start_job(self, job_id: str, process_id: str, slots: int) -> int | None:
        """Take a free slot (among the first `slots`) for the job and mark it PROCESSING, in
        one transaction; the slot taken, or None when every slot is busy (nothing changed).
        Raises InvalidTransition if the job is no longer this process's PENDING job."""
        now = utcnow_iso()

        async def body(tx: Transaction) -> int | None:
            await _check_pending(tx, job_id, process_id)
            slot = await _take_free_slot(tx, job_id, process_id, slots, now)
            if slot is not None:
                await _mark_processing(tx, job_id, now)
            return slot

        return await self.db.write(body)

    async def mark_processing(
        self, job_id: str, process_id: str, *, model: str | None = None
    ) -> bool:
        """PENDING -> PROCESSING for this process's job (see JobRepository.mark_processing)."""
        return await JobRepository(self.db).mark_processing(job_id, process_id, model=model)

    async def claim_slot(self, job_id: str, process_id: str, slots: int) -> int | None:
        """Take a free slot (among the first `slots`) for a job that is PROCESSING, around
        one API call of it; the slot, or None when every slot is busy."""
        now = utcnow_iso()
        return await self.db.write(lambda tx: _take_free_slot(tx, job_id, process_id, slots, now))

    async def release_slot(self, slot: int, process_id: str, intents: Sequence[str] = ()) -> None:
        """Give the slot back and, in the same transaction, record the objects the job is
        about to write (`intents`)."""
        now = utcnow_iso()

        async def body(tx: Transaction) -> None:
            await tx.execute(
                "UPDATE generation_slots SET holder = NULL, job_id = NULL "
                "WHERE slot = ? AND holder = ?",
                (slot, process_id),
            )
            await add_intents(tx, process_id, intents, now)

        await self.db.write(body)

    async def slots_in_use(self) -> int:
        """Slots held by live processes (for figures and tests)."""
        return int(
            await self.db.fetchval(
                f"SELECT COUNT(*) FROM generation_slots WHERE holder IS NOT NULL "
                f"AND {live('generation_slots.holder')}",
                (utcnow_iso(),),
            )
        )

    # Object intents ----------------------------------------------------------------------

    async def add_intents(self, process_id: str, keys: Sequence[str]) -> None:
        """Record objects about to be written (before the first put)."""
        now = utcnow_iso()
        await self.db.write(lambda tx: add_intents(tx, process_id, keys, now))

    async def forget_intents(self, process_id: str, keys: Sequence[str]) -> None:
        """Drop intents whose objects were deleted again (a failed upload or job)."""
        await self.db.write(lambda tx: clear_intents(tx, process_id, keys))

    async def intent_keys(self) -> set[str]:
        """Every key an intent protects (live or not yet swept)."""
        return {str(r[0]) for r in await self.db.fetchall("SELECT key FROM object_intents")}

    # Named leases ------------------------------------------------------------------------

    async def acquire(self, name: str, process_id: str) -> bool:
        """Take the named lock unless another live process holds it."""
        now = utcnow_iso()
        return bool(
            await self.db.execute(
                "INSERT INTO leases (name, holder, acquired_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                f"acquired_at = excluded.acquired_at WHERE leases.holder = ? "
                f"OR NOT {live('leases.holder')}",
                (name, process_id, now, process_id, now),
            )
        )

    async def release(self, name: str, process_id: str) -> None:
        await self.db.execute(
            "DELETE FROM leases WHERE name = ? AND holder = ?", (name, process_id)
        )


async def _take_free_slot(
    tx: Transaction, job_id: str, process_id: str, slots: int, now: str
) -> int | None:
    """The first free slot among the first `slots`, taken for the job; None if all are busy.
    A slot is free when nobody holds it or its holder's lease has expired."""
    free = f"(holder IS NULL OR NOT {live('generation_slots.holder')})"
    # Another process may take the same slot meanwhile (PostgreSQL): the guard in the UPDATE
    # re-checks it, and the next free one is tried.
    for _ in range(3):
        candidate = await tx.fetchval(
            f"SELECT slot FROM generation_slots WHERE slot < ? AND {free} ORDER BY slot LIMIT 1",
            (slots, now),
        )
        if candidate is None:
            return None
        taken = await tx.execute(
            f"UPDATE generation_slots SET holder = ?, job_id = ?, taken_at = ? "
            f"WHERE slot = ? AND {free}",
            (process_id, job_id, now, candidate, now),
        )
        if taken:
            return int(candidate)
    return None


async def _check_pending(tx: Transaction, job_id: str, process_id: str) -> None:
    status = await tx.fetchval(
        f"SELECT status FROM jobs WHERE id = ? AND lease_owner = ?{tx.dialect.for_update}",
        (job_id, process_id),
    )
    if status is None:
        raise NotFound(f"job {job_id} is not this process's")
    if status != "PENDING":
        raise InvalidTransition(job_id, str(status), "PROCESSING")


async def _mark_processing(tx: Transaction, job_id: str, now: str) -> None:
    await tx.execute(
        "UPDATE jobs SET status = 'PROCESSING', updated_at = ? WHERE id = ? AND status = 'PENDING'",
        (now, job_id),
    )
