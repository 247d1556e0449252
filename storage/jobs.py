"""JobRepository: the money transactions of a paid job of any kind (migration 0010).

A job is reserved (the wallet debited, a ledger row naming the job, the budgets' claim, a
PENDING row) in one transaction; it moves PENDING -> PROCESSING -> COMPLETED, or to FAILED
with its refund, exactly once: every change is one guarded UPDATE on the job's status (and,
for a sweep, on its process's lease). What a job makes (images, a caption) is its kind's
business: the kind writes it in the same transaction that completes the job (`complete`).

Nothing here knows what an image is: a new kind of job needs no money code of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from storage import ledger, usage
from storage.db import Database, Transaction
from storage.errors import (
    BalanceOverflow,
    InvalidTransition,
    ModelRetired,
    NotFound,
    TooManyActiveJobs,
)
from storage.intents import live
from storage.model_states import is_retired
from storage.models import Row, TransactionKind
from storage.timeutil import from_iso, to_iso, utcnow_iso
from storage.usage import BudgetClaim, Level


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


UNFINISHED = "status IN ('PENDING', 'PROCESSING')"
_COLUMNS = (
    "id, kind, user_id, wallet_id, guild_id, status, cost, lease_owner, request, result, "
    "error, refund_owed, created_at, updated_at"
)


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object column (text on SQLite, JSONB on PostgreSQL) as a dict."""
    if value is None or value == "":
        return {}
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded) if isinstance(loaded, Mapping) else {}


def _json(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), separators=(",", ":"), default=str)


@dataclass(frozen=True)
class JobRow:
    """One job as stored."""

    id: str
    kind: str
    user_id: str
    wallet_id: str | None
    guild_id: int | None
    status: JobStatus
    cost: int
    lease_owner: str | None
    request: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    refund_owed: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)

    @classmethod
    def from_row(cls, row: Row) -> JobRow:
        return cls(
            id=str(row["id"]),
            kind=str(row["kind"]),
            user_id=str(row["user_id"]),
            wallet_id=row["wallet_id"],
            guild_id=int(row["guild_id"]) if row["guild_id"] is not None else None,
            status=JobStatus(row["status"]),
            cost=int(row["cost"]),
            lease_owner=row["lease_owner"],
            request=json_object(row["request"]),
            result=json_object(row["result"]),
            error=row["error"],
            refund_owed=int(row["refund_owed"]) if row["refund_owed"] is not None else None,
            created_at=from_iso(row["created_at"]) if row["created_at"] else None,
            updated_at=from_iso(row["updated_at"]) if row["updated_at"] else None,
        )


@dataclass(frozen=True)
class Reservation:
    """What `reserve` did: the job, the wallet's balance after paying, and the budget notices
    the reservation made due (recorded as sent)."""

    job: JobRow
    balance: int
    notices: list[tuple[Level, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Refund:
    """What `fail_and_refund` did: the coins returned (0 for a free job) and the balance of
    the wallet that paid (0 when no wallet paid). `owed` is a refund that could not be applied
    (it would have taken the balance past the cap): recorded on the job for the owner."""

    job: JobRow
    refunded: int
    balance: int
    owed: int = 0


@dataclass(frozen=True)
class JobOrder:
    """One job to reserve (see `JobRepository.reserve` for what each field means)."""

    kind: str
    user_id: str
    wallet_id: str | None
    cost: int
    guild_id: int | None = None
    request: Mapping[str, Any] | None = None
    lease_owner: str | None = None
    max_active: int | None = None
    claim: BudgetClaim | None = None
    model: str | None = None
    job_id: str | None = None


class JobRepository:
    """Paid jobs and their money: reserve, start, fail and refund, complete."""

    def __init__(self, db: Database, *, max_balance: int = ledger.INT64_MAX) -> None:
        self.db = db
        self.max_balance = max_balance

    async def get(self, job_id: str) -> JobRow | None:
        row = await self.db.fetchone(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return JobRow.from_row(row) if row is not None else None

    async def reserve(
        self,
        *,
        kind: str,
        user_id: str,
        wallet_id: str | None,
        cost: int,
        guild_id: int | None = None,
        request: Mapping[str, Any] | None = None,
        lease_owner: str | None = None,
        max_active: int | None = None,
        claim: BudgetClaim | None = None,
        model: str | None = None,
        job_id: str | None = None,
    ) -> Reservation:
        """Debit the wallet, its ledger row, the budgets' claim and a PENDING job (recording
        its server, the paying wallet and the process whose job it is) in one transaction.

        Refuses, writing nothing: InsufficientCoins; TooManyActiveJobs when the member has
        `max_active` unfinished jobs in live processes (checked and inserted in one
        transaction, serialised per member); BudgetExceeded; ModelRetired when `model` was
        found retired by any process; NotFound when the wallet is not the member's."""
        order = JobOrder(
            kind=kind, user_id=user_id, wallet_id=wallet_id, cost=cost, guild_id=guild_id,
            request=request, lease_owner=lease_owner, max_active=max_active, claim=claim,
            model=model, job_id=job_id,
        )  # fmt: skip
        return (await self.reserve_all([order]))[0]

    async def reserve_all(self, orders: Sequence[JobOrder]) -> list[Reservation]:
        """`reserve` for each order, all in one transaction: every job is reserved (and
        paid for), or none is (a batch of images: the first refusal writes nothing at all).
        Each order's `max_active` counts the jobs reserved before it in the same call."""

        async def body(tx: Transaction) -> list[Reservation]:
            return [await self._reserve(tx, order) for order in orders]

        return await self.db.write(body)

    async def _reserve(self, tx: Transaction, order: JobOrder) -> Reservation:
        user_id, wallet_id, cost = order.user_id, order.wallet_id, order.cost
        job_id = order.job_id or str(uuid.uuid4())
        if wallet_id is not None and await ledger.owner(tx, wallet_id) != user_id:
            raise NotFound(f"wallet {wallet_id} is not user {user_id}'s")
        if order.model is not None and await is_retired(tx, order.model):
            raise ModelRetired(order.model)
        if order.max_active is not None:
            # Locks the member (PostgreSQL): their reservations in every process queue up
            # here, so two can't both see room for one more.
            await tx.fetchone(
                f"SELECT id FROM users WHERE id = ?{tx.dialect.for_update}", (user_id,)
            )
            active = await tx.fetchval(
                f"SELECT COUNT(*) FROM jobs j WHERE user_id = ? AND {UNFINISHED} "
                f"AND {live('j.lease_owner')}",
                (user_id, utcnow_iso()),
            )
            if int(active) >= order.max_active:
                raise TooManyActiveJobs(order.max_active)
        balance = await ledger.balance(tx, wallet_id) if wallet_id is not None else 0
        now = utcnow_iso()
        guild_id = order.guild_id
        await tx.execute(
            f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (
                job_id, order.kind, user_id, wallet_id,
                str(guild_id) if guild_id is not None else None,
                JobStatus.PENDING.value, cost, order.lease_owner, _json(order.request), "{}",
                None, None, now, now,
            ),
        )  # fmt: skip
        levels: list[Level] = []
        if order.claim is not None:
            levels = await usage.claim(tx, order.claim, job_id=job_id, user_id=user_id, coins=cost)
        if cost and wallet_id is not None:
            balance = await ledger.debit(
                tx, wallet_id, cost, kind=TransactionKind.GENERATION, job_id=job_id,
                reason=order.kind,
            )  # fmt: skip
        due = await usage.notices_due(tx, levels) if levels else []
        return Reservation(await _fetch(tx, job_id), balance, due)

    async def mark_processing(
        self, job_id: str, process_id: str, *, model: str | None = None
    ) -> bool:
        """PENDING -> PROCESSING for this process's job, before it waits for an API slot.
        Raises NotFound / InvalidTransition if it is no longer this process's PENDING job.
        With `model`, also says whether some process has found that model retired since the
        job was reserved (True: don't call it)."""
        now = utcnow_iso()

        async def body(tx: Transaction) -> bool:
            status = await tx.fetchval(
                f"SELECT status FROM jobs WHERE id = ? AND lease_owner = ?{tx.dialect.for_update}",
                (job_id, process_id),
            )
            if status is None:
                raise NotFound(f"job {job_id} is not this process's")
            if status != JobStatus.PENDING.value:
                raise InvalidTransition(job_id, str(status), JobStatus.PROCESSING.value)
            await tx.execute(
                "UPDATE jobs SET status = 'PROCESSING', updated_at = ? "
                "WHERE id = ? AND status = 'PENDING'",
                (now, job_id),
            )
            return model is not None and await is_retired(tx, model)

        return await self.db.write(body)

    async def fail_and_refund(
        self,
        job_id: str,
        error: str,
        *,
        interrupted: bool = False,
        only_if_expired: bool = False,
        only_if_pending: bool = False,
        reason: Mapping[str, Any] | None = None,
    ) -> Refund | None:
        """FAILED + REFUND ledger row + credit in one transaction, exactly once, back to the
        wallet that paid; its budget reservation stops counting (with `interrupted`, a job
        the API may have answered keeps its estimated cost: see `usage.void`).

        Guarded on status: only a PENDING/PROCESSING job can fail, so a second call (or a
        call racing the first, in any process) finds nothing to do and returns None. With
        `only_if_expired`, guarded on the lease too: only a job whose process is not live.
        With `only_if_pending` (a member's cancel), only a job no worker has started: a
        PROCESSING job may be calling the API already, and is left alone (None).
        `reason` (why, as members are told: a message key and its params) is kept as the
        job's result, so that whoever asks later hears the same reason."""
        failed_at = utcnow_iso()

        async def body(tx: Transaction) -> Refund | None:
            before = await tx.fetchone(
                f"SELECT status FROM jobs WHERE id = ?{tx.dialect.for_update}", (job_id,)
            )
            started = before is not None and before[0] == JobStatus.PROCESSING.value
            guard, params = "", [failed_at, error[:500], _json(reason), job_id]
            if only_if_expired:
                guard = f" AND NOT {live('jobs.lease_owner')}"
                params.append(failed_at)
            if only_if_pending:
                guard += " AND status = 'PENDING'"
            row = await tx.fetchone(
                "UPDATE jobs SET status = 'FAILED', updated_at = ?, error = ?, result = ? "
                f"WHERE id = ? AND {UNFINISHED}{guard} RETURNING wallet_id, cost",
                params,
            )
            if row is None:
                return None
            await usage.void(tx, job_id, billed_if_started=interrupted and started)
            wallet_id, cost = row[0], int(row[1])
            if wallet_id is None:
                # No wallet paid (a free job, or its wallet is gone with its member).
                return Refund(await _fetch(tx, job_id), 0, 0)
            balance = await ledger.balance(tx, str(wallet_id))
            if cost:
                try:
                    balance = await ledger.credit(
                        tx, str(wallet_id), cost, kind=TransactionKind.REFUND, job_id=job_id,
                        reason=error[:200], cap=self.max_balance,
                    )  # fmt: skip
                except BalanceOverflow as overflow:
                    # The job still ends (never left PENDING/PROCESSING); the refund it is
                    # owed is recorded on it for the owner to settle.
                    await tx.execute(
                        "UPDATE jobs SET refund_owed = ?, error = ? WHERE id = ?",
                        (cost, f"{error[:200]} (refund owed: {str(overflow)[:200]})", job_id),
                    )
                    return Refund(await _fetch(tx, job_id), 0, balance, owed=cost)
            return Refund(await _fetch(tx, job_id), cost, balance)

        return await self.db.write(body)

    async def complete(self, job_id: str, result: Mapping[str, Any]) -> JobRow:
        """PROCESSING -> COMPLETED with `result`, for a kind whose result is the job row alone
        (a caption); idempotent as `complete` is (see the module function)."""
        return await self.db.write(lambda tx: complete(tx, job_id, result))

    async def list_unfinished(self, before: datetime | None = None) -> list[JobRow]:
        """PENDING/PROCESSING jobs (optionally only those last touched before `before`)."""
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {UNFINISHED}"
        params: list[Any] = []
        if before is not None:
            sql += " AND updated_at < ?"
            params.append(to_iso(before))
        rows = await self.db.fetchall(sql + " ORDER BY created_at", params)
        return [JobRow.from_row(row) for row in rows]

    async def expired(self, limit: int = 200) -> list[JobRow]:
        """Unfinished jobs whose process is not live (the sweep fails and refunds them)."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM jobs j WHERE {UNFINISHED} AND NOT {live('j.lease_owner')} "
            "ORDER BY updated_at LIMIT ?",
            (utcnow_iso(), limit),
        )
        return [JobRow.from_row(row) for row in rows]


async def complete(tx: Transaction, job_id: str, result: Mapping[str, Any]) -> JobRow:
    """Inside the kind's own transaction (the one that writes what the job made): PROCESSING
    -> COMPLETED with its `result`. Idempotent for a retry after a lost COMMIT answer: a job
    already COMPLETED with the same result is returned as it is. Raises NotFound, or
    InvalidTransition when the job ended otherwise meanwhile (failed and refunded)."""
    text = _json(result)
    changed = await tx.execute(
        "UPDATE jobs SET status = 'COMPLETED', result = ?, updated_at = ? "
        "WHERE id = ? AND status = 'PROCESSING'",
        (text, utcnow_iso(), job_id),
    )
    job = await _fetch(tx, job_id)
    if changed != 1 and not (job.status is JobStatus.COMPLETED and job.result == json_object(text)):
        raise InvalidTransition(job_id, job.status.value, JobStatus.COMPLETED.value)
    return job


async def status_of(tx: Transaction, job_id: str) -> JobStatus | None:
    """Inside a transaction: the job's status (None: no such job)."""
    value = await tx.fetchval("SELECT status FROM jobs WHERE id = ?", (job_id,))
    return JobStatus(value) if value is not None else None


async def _fetch(tx: Transaction, job_id: str) -> JobRow:
    row = await tx.fetchone(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise NotFound(f"job {job_id} does not exist")
    return JobRow.from_row(row)
