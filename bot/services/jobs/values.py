"""The values of a paid job of any kind: the job in memory, how it ends, who hears of it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from bot.logcontext import log_context
from storage.jobs import JobRow
from storage.usage import BudgetClaim

if TYPE_CHECKING:
    from bot.services.jobs.engine import JobEngine

R = TypeVar("R")


@dataclass(frozen=True)
class Failure:
    """Why a job failed, as a message key and params, plus the refund it got (or is owed)."""

    key: str
    params: dict[str, Any]
    refunded: int
    balance: int | None
    owed: int = 0


class JobListener(Protocol):
    """How a job reports progress (the Discord adapter edits its message from these; the
    API's job resource records them).

    `completed` comes once the job is COMPLETED in the database. A listener may also have:
    - `ready(job, result)`: the answer is checked and good, before anything is stored:
      deliver now, store meanwhile;
    - `unsaved(job, failure)`: after `ready`, storing failed for good: the job ended FAILED
      and refunded, but the member already has what they were shown.
    A listener without `unsaved` gets `failed` instead."""

    async def queued(self, job: Job[Any], position: int) -> None: ...

    async def started(self, job: Job[Any]) -> None: ...

    async def completed(self, job: Job[Any], result: Any) -> None: ...

    async def failed(self, job: Job[Any], failure: Failure) -> None: ...


@dataclass(frozen=True)
class Priced(Generic[R]):
    """What a kind made of a request before any coin moves: the request as it will run, what
    it costs, what it is stored as (`record`, the job row's JSON), the model it calls (checked
    against retirements in the reservation's transaction) and the budgets' claim."""

    request: R
    cost: int
    record: dict[str, Any]
    model: str | None = None
    claim: BudgetClaim | None = None


@dataclass(eq=False)
class Job(Generic[R]):
    """One paid job between reservation and its outcome, in this process's memory."""

    row: JobRow
    request: R
    balance: int
    listener: JobListener | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    # The member's slot is given back exactly once, whichever path ends the job.
    released: bool = False
    # The member was shown the answer (the listener's `ready`): a later failure is `unsaved`.
    shown: bool = False
    # What the member's jobs are counted by (their Discord id, else their user id).
    slot_key: Hashable = ""
    # time.monotonic() when each step ended (queued, started, api_sent, api_answered,
    # decoded, delivering, delivered, thumbnails, stored, committed): logs and benchmarks.
    marks: dict[str, float] = field(default_factory=dict)
    # The budget notices (80%, 100%) its reservation made due, for its kind to announce.
    notices: list[Any] = field(default_factory=list)
    # The log ids of where it was asked (the interaction), carried into its worker's lines.
    log_ids: Mapping[str, str] = field(default_factory=log_context)

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def kind(self) -> str:
        return self.row.kind

    @property
    def user_id(self) -> str:
        return self.row.user_id

    @property
    def guild_id(self) -> int | None:
        return self.row.guild_id

    @property
    def cost(self) -> int:
        return self.row.cost


@dataclass(eq=False)
class Admission:
    """One of a member's job slots, taken by `JobEngine.admit` before any await. The
    reservation hands it to the job; `release()` gives it back unused."""

    engine: JobEngine
    key: Hashable
    #: Where the job will wait: 0 when a worker is free for it now (a guess for the first
    #: message; the queue tells the member again as it moves).
    position: int = 0
    used: bool = False
    released: bool = False
    #: The id the job will have: known before the reservation, so the first answer can
    #: carry what acts on the job (a Cancel button).
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def release(self) -> None:
        """Give the slot back (idempotent; a slot handed to a job is the job's to give)."""
        if self.used or self.released:
            return
        self.released = True
        self.engine.release_slot(self.key)


def recorded_refund(row: JobRow) -> tuple[int, int]:
    """(refunded, owed) for a FAILED job, from its row: a failed paid job was refunded its
    cost exactly once (JobRepository.fail_and_refund) unless the refund could not be applied
    (`refund_owed`); a job no wallet paid for was free."""
    if row.wallet_id is None or not row.cost:
        return 0, 0
    if row.refund_owed:
        return 0, row.refund_owed
    return row.cost, 0


@dataclass(frozen=True)
class Cancelled:
    """A job cancelled before any worker started it: the job as it ended, the refund it got
    (its cost, or 0 when no wallet paid) or is owed (the balance cap), and the wallet's
    balance after it."""

    job: JobRow
    refunded: int
    balance: int | None
    owed: int = 0
    #: Cancelled by a moderator (or a bot admin), not by the member who ordered it.
    by_moderator: bool = False
    #: The job waited in this process: its listener was told (it shows the cancel itself).
    told: bool = False
