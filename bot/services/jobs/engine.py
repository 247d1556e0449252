"""The job engine: the one path every paid job takes once it is ordered, whatever its kind.

The lifecycle (DESIGN sections 4, 5, 7b and 10):
- `admit` is the in-memory part of a member's limits (their job slots in this process, room in
  the queue), with no await: an adapter (through `bot.services.orders`) calls it before
  answering the member, then reserves after the answer, so the database is never in the way
  of Discord's acknowledgement.
- `reserve` debits the payer's wallet, writes the ledger row, the budgets' claim and a PENDING
  job in one transaction (storage/jobs.py), and takes one of the member's job slots across
  every live process. Nothing is queued yet, so the adapter can still refuse (and `cancel`).
- `enqueue` puts the job on this process's queue, served by `max_concurrent` workers and as
  many more (`lookahead`: they wait for an API slot with their job ready).
- A worker marks the job PROCESSING and hands it to its kind's `run` (the model call, inside
  the deployment's API slots); what the model answered goes to a finishing task (the kind's
  `finish`: deliver first, then store and complete), at most `max_finishers` at once, while the
  worker takes the next job.

Jobs are leases: each belongs to this process, whose heartbeat keeps it live. A sweep (at
start-up, then every half lease) fails and refunds the jobs of processes whose lease expired,
exactly once whichever process gets there first, deletes the objects they were writing, and
publishes `JobsRecovered` (the adapters tell the members); it never touches a live process's
jobs.

Nothing strands a job or kills a worker:
- every database or object-store step is retried with backoff for `retry_seconds`; then the
  job ends FAILED;
- ending FAILED refunds the wallet that paid in one transaction, exactly once (guarded on
  status); if even that write can't land yet, it keeps being retried in the background until
  it does, and the member is told when it has;
- a refund that would pass the balance cap is recorded on the job and reported;
- a supervisor restarts any worker that ends unexpectedly, and logs it.

`close` stops intake, lets running jobs finish up to a deadline, and refunds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import Any, Literal, TypeVar

from bot.logcontext import set_log_context
from bot.services.errors import (
    InvalidInput,
    JobNotFound,
    NotCancellable,
    NotEnoughCoins,
    QueueFull,
    ShuttingDown,
    TooManyJobs,
    UserFacingError,
)
from bot.services.events import EventBus, JobFinished, JobsRecovered
from bot.services.jobs.kind import JobKind
from bot.services.jobs.slots import ApiSlot, ApiSlots, StoppedBeforeStart
from bot.services.jobs.values import Admission, Cancelled, Failure, Job, JobListener, Priced
from bot.services.members import Payer
from bot.services.processes import ProcessLease
from bot.services.resilience import is_transient, persist
from storage.db import Database
from storage.errors import (
    DatabaseBusy,
    InsufficientCoins,
    InvalidTransition,
    NotFound,
    TooManyActiveJobs,
)
from storage.jobs import JobOrder, JobRepository, Refund
from storage.leases import LeaseRepository
from storage.objects import ObjectStore
from storage.usage import BudgetExceeded

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Waiting jobs told their new position on every move (and then every tenth).
ANNOUNCE_FIRST = 5
# How many recent model calls per model the estimated start of a waiting job averages.
LATENCY_WINDOW = 20
# Finished jobs whose step times are kept (`recent_marks`), for logs and benchmarks.
KEEP_MARKS = 5000
#: The error recorded on jobs whose process died (members are told they were interrupted).
INTERRUPTED = "interrupted by a restart"
_jitter = random.Random()
Outcome = Literal["completed", "failed", "cancelled", "interrupted"]

#: What a refused reservation raises instead of the storage error (the budgets' refusal is
#: the kind's to phrase: see `BudgetRefusal`).
BudgetRefusal = Callable[[BudgetExceeded], Awaitable[UserFacingError]]


class JobEngine:
    """The queue, the workers and the money of paid jobs. `start()`, then `close()`."""

    def __init__(
        self,
        *,
        db: Database,
        store: ObjectStore,
        max_concurrent: int,
        max_jobs_per_user: int,
        queue_size: int = 200,
        retry_seconds: float = 60.0,
        enabled: bool = True,
        process: ProcessLease | None = None,
        lease_seconds: float = 30.0,
        max_balance: int | None = None,
        max_finishers: int | None = None,
        lookahead: int | None = None,
        lend_slots: bool | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.jobs = JobRepository(db, **({"max_balance": max_balance} if max_balance else {}))
        self.leases = LeaseRepository(db)
        self.max_concurrent = max_concurrent
        self.max_jobs_per_user = max_jobs_per_user
        self.queue_size = queue_size
        #: How long a job's storage step is retried before the job is failed and refunded.
        self.retry_seconds = retry_seconds
        # False when no API key is configured: refuse before charging anyone.
        self.enabled = enabled
        #: Where `JobsRecovered` (and the kinds' events) go.
        self.events = events or EventBus()
        # Each finishing job holds its decoded answer (5-7 MB at 2048²) until stored: at most
        # this many at once; a worker with a new answer waits for room (memory stays bounded).
        self.max_finishers = max_finishers or max_concurrent
        # Workers beyond the slots (default: as many): they wait for a slot with their job
        # ready, so a freed slot is taken at once.
        self.lookahead = max_concurrent if lookahead is None else lookahead
        #: How many times the supervisor restarted a worker.
        self.worker_restarts = 0
        # This process's lease: given by the app (shared with uploads), else its own.
        self._owns_process = process is None
        self.process = process or ProcessLease(self.leases, lease_seconds=lease_seconds)
        #: Seconds between two sweeps of expired leases.
        self.sweep_seconds = self.process.lease_seconds / 2
        self.slots = ApiSlots(
            leases=self.leases,
            process=self.process,
            count=max_concurrent,
            persist=self.persist,
            spawn=self.spawn,
            accepting=lambda: self._accepting,
            lend=not db.dialect.is_postgres if lend_slots is None else lend_slots,
            retry_seconds=retry_seconds,
        )
        self._kinds: dict[str, JobKind[Any]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Job[Any]] = asyncio.Queue()
        # Jobs waiting, in order, for positions; running jobs by id.
        self._waiting: OrderedDict[str, Job[Any]] = OrderedDict()
        self._running: dict[str, Job[Any]] = {}
        # member (Discord id, else user id) -> admitted + reserved + queued + running
        self._member_slots: dict[Hashable, int] = {}
        self._total_slots = 0
        self._finishing = asyncio.Semaphore(self.max_finishers)
        #: (job id, label, step marks) of recently finished jobs, oldest first.
        self.recent_marks: deque[tuple[str, str, dict[str, float]]] = deque(maxlen=KEEP_MARKS)
        # Seconds each of the latest model calls held a worker, per model (None: the
        # default), measured here: what a waiting job's estimated start is made of.
        self._latency: dict[str | None, deque[float]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._finishers: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Future[Any]] = set()
        self._idle = asyncio.Event()  # set while no job is running
        self._idle.set()
        self._accepting = False
        self._closing = False

    def register(self, kind: JobKind[Any]) -> None:
        """Let jobs of `kind` through the engine."""
        self._kinds[kind.name] = kind

    # What the adapters and kinds read ---------------------------------------------------

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def closing(self) -> bool:
        return self._closing

    def active_jobs(self, key: Hashable) -> int:
        """Admitted, reserved, queued and running jobs of a member in this process."""
        return self._member_slots.get(key, 0)

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def workers_alive(self) -> int:
        """Workers that are running (the supervisor keeps this at `worker_count`)."""
        return sum(not task.done() for task in self._workers)

    @property
    def worker_count(self) -> int:
        """How many workers run: the slots plus the lookahead."""
        return self.max_concurrent + self.lookahead

    def position(self, job_id: str) -> int | None:
        for index, waiting_id in enumerate(self._waiting, start=1):
            if waiting_id == job_id:
                return index
        return None

    async def wait_idle(self) -> None:
        """Until no job is running or finishing (stored and committed)."""
        await self._idle.wait()

    # Estimated starts ----------------------------------------------------------------------

    def record_latency(self, model: str | None, seconds: float) -> None:
        """One model call of `seconds` (the window keeps the latest LATENCY_WINDOW)."""
        window = self._latency.setdefault(model, deque(maxlen=LATENCY_WINDOW))
        window.append(max(0.0, seconds))

    def latency(self, model: str | None) -> float | None:
        """The mean of the model's recent calls; of every model's when this one has none
        yet; None before any call was measured."""
        window = self._latency.get(model)
        if window:
            return sum(window) / len(window)
        every = [seconds for recent in self._latency.values() for seconds in recent]
        return sum(every) / len(every) if every else None

    def estimate(self, job_id: str) -> float | None:
        """Seconds from now until the waiting job `job_id` should start (0: it is running
        or next with a free worker); None when it is not waiting here or nothing was
        measured yet."""
        if job_id in self._running:
            return 0.0
        ahead: list[Job[Any]] = []
        for waiting_id, waiting in self._waiting.items():
            if waiting_id == job_id:
                return self._start_after(ahead)
            ahead.append(waiting)
        return None

    def estimate_new(self, position: int) -> float | None:
        """`estimate` for a job about to be queued at `position` (1-based; 0: it runs at
        once), before it exists."""
        if position <= 0:
            return 0.0
        return self._start_after(list(self._waiting.values())[: position - 1])

    def _start_after(self, ahead: Sequence[Job[Any]]) -> float | None:
        """When a worker is free for a job behind `ahead`: the running jobs, then those
        ahead, each taking the first free worker for its model's recent mean (the queue is
        first in, first out)."""
        now = time.monotonic()
        slots = max(1, self.max_concurrent)
        free = [0.0] * slots
        # The first jobs started hold the API slots; those started since (the lookahead)
        # wait for one with their whole call ahead of them.
        running = sorted(self._running.values(), key=lambda job: job.started_at or now)
        for index, job in enumerate([*running, *ahead]):
            seconds = self.latency(_model_of(job))
            if seconds is None:
                return None
            if index < slots and job.started_at is not None:
                seconds = max(0.0, seconds - (now - job.started_at))
            heapq.heappush(free, heapq.heappop(free) + seconds)
        return free[0]

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this process (if the engine owns its lease), start the workers
        (supervised) and the sweep of expired leases, and accept jobs."""
        if self._workers:
            return
        if not self.process.started:
            await self.process.start()
        self._accepting = True
        self._closing = False
        self._workers = [self._new_worker(n) for n in range(self.worker_count)]
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="lease-sweeper")

    def _new_worker(self, number: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._worker(number), name=f"job-worker-{number}")
        task.add_done_callback(functools.partial(self._worker_ended, number))
        return task

    def _worker_ended(self, number: int, task: asyncio.Task[None]) -> None:
        """The supervisor: a worker that ends while the engine runs is logged and replaced."""
        if self._closing or task.cancelled():
            return
        error = task.exception()
        self.worker_restarts += 1
        log.error(
            "job worker %d ended unexpectedly (%s); restarting it",
            number,
            f"{type(error).__name__}: {error}" if error else "returned",
            exc_info=error,
        )
        if number < len(self._workers) and self._workers[number] is task:
            self._workers[number] = self._new_worker(number)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` in the background (kept until done; waited for at close)."""
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def recover(self) -> list[Refund]:
        """Fail and refund the jobs of processes whose lease has expired (a crashed run of
        this bot, or another process that died), exactly once; delete the objects they were
        writing. Never touches a live process's jobs, this one's included.

        Never raises: a refund that cannot be applied (over the balance cap) is recorded on
        the job and logged for the owner; what can't be written now (the database is
        locked) is logged and left to the next sweep, so start-up goes on."""
        try:
            work = await self.leases.sweep_work()
        except Exception as error:
            log.error("could not read expired jobs (%s); the next sweep retries", error)
            return []
        refunds: list[Refund] = []
        for row in work.expired_jobs:
            try:
                refund = await self.persist(
                    f"refunding job {row.id} of a process that died",
                    functools.partial(
                        self.jobs.fail_and_refund,
                        row.id,
                        INTERRUPTED,
                        interrupted=True,
                        only_if_expired=True,
                        reason={"key": "reason.shutdown", "params": {}},
                    ),
                    budget=min(self.retry_seconds, 5.0),
                )
            except Exception as error:
                log.error(
                    "could not refund interrupted job %s of user %s (%d coins): %s; the next "
                    "sweep retries",
                    row.id, row.user_id, row.cost, error,
                )  # fmt: skip
                continue
            if refund is not None:
                report_owed(refund)
                refunds.append(refund)
                await self._finished(row.id, "interrupted", "reason.shutdown", refund)
        try:
            for key in await self.leases.take_dead_intents(work.dead_intents):
                with contextlib.suppress(Exception):
                    await self.store.delete(key)
            await self.leases.forget_dead_processes()
        except Exception as error:
            log.warning("could not clear what dead processes left (%s)", error)
        if refunds:
            log.warning("refunded %d job(s) interrupted by a process that died", len(refunds))
        return refunds

    async def _sweep_forever(self) -> None:
        """Sweep expired leases every `sweep_seconds` (jittered, so that processes started
        together don't sweep together), publishing what was refunded."""
        while True:
            await asyncio.sleep(self.sweep_seconds * (0.75 + _jitter.random() / 2))
            refunds = await self.recover()
            if refunds:
                await self.events.publish(JobsRecovered(tuple(refunds)))

    async def close(self, deadline: float = 30.0) -> None:
        """Stop intake; let running jobs finish within `deadline` s; refund everything else."""
        self._accepting = False
        # Jobs whose worker still waits for a slot have not called the API: they are refunded
        # like the queued ones (woken here), not run past the stop.
        self.slots.stop()
        waiting = list(self._waiting.values())
        self._waiting.clear()
        for job in waiting:
            await self.fail(job, "reason.shutdown", {}, "shutdown before start", budget=5.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), deadline)
        self._closing = True
        tasks = [*self._workers, *self._finishers]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        # Refunds still waiting for the database get a moment; the rest are refunded by the
        # sweep of another process (or the next start) once this process's lease is gone.
        if self._background:
            await asyncio.wait(set(self._background), timeout=min(deadline, 5.0))
            for pending in list(self._background):
                pending.cancel()
        self._workers = []
        if self._owns_process:
            await self.process.close()

    # Ordering ----------------------------------------------------------------------------

    def admit(self, key: Hashable, limit: int) -> Admission:
        """Take one of a member's job slots in this process (at most `limit`, and never more
        than `max_jobs_per_user`) and room in the queue, in memory and before any await, so
        an adapter can answer at once. Raises a UserFacingError and takes nothing on
        refusal. The slot goes to the job reserved with it, or back with `release()` (the
        deployment's count, over every process, is checked with the reservation)."""
        if not self.enabled:
            raise InvalidInput("gen.not_configured")
        if not self._accepting:
            raise ShuttingDown()
        if not self.process.registered:
            # The database hasn't taken this process's registration yet (locked, out of
            # reach): a job now would look abandoned to other processes.
            raise UserFacingError("error.busy")
        limit = min(limit, self.max_jobs_per_user)
        if self._member_slots.get(key, 0) >= limit:
            raise TooManyJobs(limit=limit)
        # Slots count every admitted, reserved, queued and running job of every member.
        if self._total_slots >= self.queue_size + self.max_concurrent:
            raise QueueFull()
        self._member_slots[key] = self._member_slots.get(key, 0) + 1
        self._total_slots += 1
        busy = self._total_slots - 1  # jobs ahead of this one, running ones included
        return Admission(self, key, position=max(0, busy - self.max_concurrent + 1))

    async def reserve(
        self,
        kind: JobKind[R],
        payer: Payer,
        priced: Priced[R],
        listener: JobListener | None,
        admission: Admission,
        *,
        budget_refusal: BudgetRefusal | None = None,
    ) -> Job[R]:
        """Debit the cost from the payer's wallet and create the PENDING job (storage's
        `JobRepository.reserve`: one transaction with its ledger row and the budgets'
        claim); the job is not queued yet (see `enqueue`). Raises a UserFacingError and
        changes nothing on refusal, the admission's slot given back. Storage's ModelRetired
        is raised as it is: the kind decides what a retired model means."""
        jobs = await self.reserve_all(
            kind, payer, [(priced, listener, admission)], budget_refusal=budget_refusal
        )
        return jobs[0]

    async def reserve_all(
        self,
        kind: JobKind[R],
        payer: Payer,
        orders: Sequence[tuple[Priced[R], JobListener | None, Admission]],
        *,
        budget_refusal: BudgetRefusal | None = None,
    ) -> list[Job[R]]:
        """`reserve` for several jobs of one payer (a batch), in one transaction: all are
        reserved and paid for, or none is (every admission's slot given back)."""
        limit = min(payer.max_jobs, self.max_jobs_per_user)
        admissions = [admission for _, _, admission in orders]

        def release() -> None:
            for admission in admissions:
                admission.release()

        try:
            if not self._accepting:
                raise ShuttingDown()
            reservations = await self.jobs.reserve_all(
                [
                    JobOrder(
                        kind=kind.name,
                        user_id=payer.user_id,
                        wallet_id=payer.wallet_id,
                        guild_id=payer.guild_id,
                        cost=priced.cost,
                        request=priced.record,
                        lease_owner=self.process.id,
                        max_active=limit,
                        claim=priced.claim,
                        model=priced.model,
                        job_id=admission.job_id,
                    )
                    for priced, _, admission in orders
                ]
            )
        except InsufficientCoins as error:
            release()
            if len(orders) == 1:
                raise NotEnoughCoins(error.balance, error.cost) from None
            # A batch: what the whole of it costs, against the balance it started from
            # (the transaction paid the earlier jobs before this one was refused).
            total = sum(priced.cost for priced, _, _ in orders)
            raise NotEnoughCoins(min(payer.balance, total - 1), total) from None
        except TooManyActiveJobs:
            # Their other jobs run in other processes.
            release()
            raise TooManyJobs(limit=limit) from None
        except BudgetExceeded as error:
            release()
            if budget_refusal is None:
                raise UserFacingError("budget.global") from None
            raise await budget_refusal(error) from None
        except DatabaseBusy as error:
            # Locked by another process (or unreachable): nothing was written; the member may
            # simply retry.
            release()
            log.warning("reservation for user %s refused: database busy (%s)",
                        payer.user_id, error)  # fmt: skip
            raise UserFacingError("error.busy") from None
        except BaseException:
            release()
            raise
        jobs = []
        for (priced, listener, admission), reservation in zip(orders, reservations, strict=True):
            admission.used = True
            jobs.append(
                Job(
                    row=reservation.job,
                    request=priced.request,
                    balance=reservation.balance,
                    listener=listener,
                    slot_key=admission.key,
                    notices=list(reservation.notices),
                )
            )
        return jobs

    async def enqueue(self, job: Job[Any]) -> int:
        """Queue a reserved job; returns its 1-based position among waiting jobs."""
        if not self._accepting:
            await self.fail(job, "reason.shutdown", {}, "shutdown before queueing")
            raise ShuttingDown()
        job.marks["queued"] = time.monotonic()
        self._waiting[job.id] = job
        self._queue.put_nowait(job)
        position = len(self._waiting)
        await self.notify(job, "queued", position)
        return position

    async def cancel(self, job: Job[Any], reason: str = "cancelled") -> Refund | None:
        """Refund a reserved job that will not run (e.g. the interaction could not be
        answered). If the database won't take the refund yet, it is retried in the
        background (and None returned) rather than leaving the job PENDING."""
        self._waiting.pop(job.id, None)
        self.release(job)
        try:
            refund: Refund | None = await self.persist(
                f"job {job.id}: cancelling",
                functools.partial(
                    self.jobs.fail_and_refund,
                    job.id,
                    reason,
                    reason={"key": "reason.internal", "params": {}},
                ),
            )
            await self._finished(job.id, "cancelled", "cancelled", refund)
            return refund
        except Exception as failure:
            if not is_transient(failure):
                raise
            log.error("job %s: refund not written yet (%s); retrying in the background",
                      job.id, failure)  # fmt: skip
            self.spawn(self._refund_later(job, "reason.internal", {}, reason, False))
            return None

    async def cancel_waiting(self, job_id: str, reason: dict[str, Any]) -> Cancelled:
        """A member's cancel: refund a job no worker has started, exactly once, and tell its
        listener (`failed`, with `reason`: a message key and params). Decided by the
        database (a guarded PENDING -> FAILED), so a worker taking the job at the same time
        either finds it cancelled and skips it, or wins and the cancel is refused; the same
        holds for a job queued in another process. Raises NotCancellable when a worker has
        it (it may be calling the API: nothing is refunded by a cancel) or it has ended,
        JobNotFound when there is no such job."""
        job = self._waiting.get(job_id)
        if job is None and job_id in self._running:
            raise NotCancellable("cancel.started")
        refund = await self.persist(
            f"job {job_id}: cancelling",
            functools.partial(
                self.jobs.fail_and_refund, job_id, "cancelled", only_if_pending=True,
                reason=reason,
            ),
            budget=min(self.retry_seconds, 5.0),
        )  # fmt: skip
        if refund is None:
            row = await self.jobs.get(job_id)
            if row is None:
                raise JobNotFound()
            raise NotCancellable("cancel.finished" if row.finished else "cancel.started")
        report_owed(refund)
        await self._finished(job_id, "cancelled", str(reason.get("key")), refund)
        if job is not None:
            # The worker that takes it from the queue finds it gone and skips it.
            if self._waiting.pop(job_id, None) is not None:
                self._announce_positions()
            self.release(job)
            failure = Failure(
                str(reason.get("key")), dict(reason.get("params") or {}), refund.refunded,
                refund.balance, refund.owed,
            )  # fmt: skip
            self.spawn(self.notify(job, "failed", failure))
        return Cancelled(
            refund.job, refund.refunded, refund.balance, refund.owed,
            told=job is not None and job.listener is not None,
        )  # fmt: skip

    # Workers -----------------------------------------------------------------------------

    async def _worker(self, number: int) -> None:
        """Runs one job at a time: its kind calls the model (inside the API slots), then a
        finishing task delivers and stores what it made while this worker takes the next job
        at once: the slots bound calls to the API, not the time spent storing and replying."""
        while True:
            job = await self._queue.get()
            # Its log lines carry the ids of where it was asked (the interaction) and its own.
            set_log_context({**job.log_ids, "job_id": job.id})
            handed_off = False
            try:
                if self._waiting.pop(job.id, None) is None:
                    continue  # cancelled or failed at shutdown while waiting
                self._announce_positions()
                self._running[job.id] = job
                self._idle.clear()
                kind = self._kinds[job.kind]
                outcome = await self._run(kind, job)
                if outcome is not None:
                    await self._finishing.acquire()
                    task = asyncio.create_task(self._finish(kind, job, outcome))
                    self._finishers.add(task)
                    task.add_done_callback(self._finisher_done)
                    handed_off = True
            except asyncio.CancelledError:
                # Shutdown past the deadline: the job can't finish, so refund it now.
                await asyncio.shield(self.fail(job, "reason.shutdown", {}, "shutdown", budget=5.0))
                raise
            except Exception:
                log.exception("job %s crashed", job.id)
                await self.fail(job, "reason.internal", {}, "internal error")
            except BaseException:
                # Something no job should raise: refund this job, then let the supervisor
                # replace the worker.
                log.exception("job %s ended its worker", job.id)
                await asyncio.shield(self.fail(job, "reason.internal", {}, "internal error"))
                raise
            finally:
                if not handed_off:
                    # Whatever ended the job here, the member's slot comes back (once).
                    self.release(job)
                    self._done_running(job)
                self._queue.task_done()

    async def _run(self, kind: JobKind[Any], job: Job[Any]) -> Any:
        """PROCESSING, then the kind's model call; what it made, or None when the job ended
        here (failed and refunded, or finished meanwhile)."""
        job.started_at = time.monotonic()
        job.marks["started"] = job.started_at
        try:
            # PROCESSING now (this write overlaps the calls of the jobs holding the slots);
            # the API slot is taken around the call itself.
            model = job.row.request.get("model")
            retired = await self.persist(
                f"job {job.id}: marking it processing",
                functools.partial(
                    self.jobs.mark_processing, job.id, self.process.id,
                    model=model if isinstance(model, str) else None,
                ),
            )  # fmt: skip
        except (InvalidTransition, NotFound):
            # Finished meanwhile (e.g. shutdown refunded it): nothing left to do.
            log.info("job %s no longer pending; skipped", job.id)
            self.release(job)
            return None
        except Exception as error:
            await self.fail(job, "reason.database", {}, f"could not start: {error}")
            return None
        # Told without waiting: the member's message is edited while the API works.
        self.spawn(self.notify(job, "started"))
        try:
            outcome = await kind.run(job, self, model_retired=bool(retired))
            if outcome is not None:
                self.record_latency(_model_of(job), time.monotonic() - job.marks["started"])
            return outcome
        except StoppedBeforeStart:
            # Stopped while waiting for a slot (the API was not called, or a retry waited):
            # refunded like a queued job.
            await self.fail(job, "reason.shutdown", {}, "shutdown before start", budget=5.0)
            return None

    async def _finish(self, kind: JobKind[Any], job: Job[Any], outcome: Any) -> None:
        try:
            await kind.finish(job, outcome, self)
        except asyncio.CancelledError:
            await asyncio.shield(self.fail(job, "reason.shutdown", {}, "shutdown", budget=5.0))
            raise
        except Exception:
            log.exception("job %s crashed while finishing", job.id)
            await self.fail(job, "reason.internal", {}, "internal error")
        except BaseException:
            log.exception("job %s crashed while finishing", job.id)
            await asyncio.shield(self.fail(job, "reason.internal", {}, "internal error"))
            raise
        finally:
            # A kind may give the slot back earlier (images do, once delivered); a kind that
            # doesn't must not keep it: the member would be refused for good after
            # `max_jobs` completed jobs.
            self.release(job)
            self._done_running(job)
            label = getattr(job.request, "prompt", job.kind)
            self.recent_marks.append((job.id, str(label), dict(job.marks)))

    def _finisher_done(self, task: asyncio.Task[None]) -> None:
        self._finishers.discard(task)
        self._finishing.release()

    def _done_running(self, job: Job[Any]) -> None:
        self._running.pop(job.id, None)
        if not self._running:
            self._idle.set()

    def _announce_positions(self) -> None:
        """Tell waiting jobs their new position, without waiting for anyone to be told. Only
        the first few and every tenth are told at each move: editing every waiting message
        on every dequeue floods Discord."""
        for position, waiting in enumerate(list(self._waiting.values()), start=1):
            if position <= ANNOUNCE_FIRST or position % 10 == 0:
                self.spawn(self.notify(waiting, "queued", position))

    # What kinds use ----------------------------------------------------------------------

    def api_slot(self, job: Job[Any]) -> ApiSlot:
        """One of the deployment's API slots for the job, held around each HTTP exchange."""
        return self.slots.slot(job.id)

    async def record_intents(self, job: Job[Any], keys: Sequence[str]) -> bool:
        """Record the objects the job is about to write (so no sweep deletes them before its
        rows point to them); whether they were recorded."""
        try:
            await self.persist(
                f"job {job.id}: recording its objects",
                functools.partial(self.leases.add_intents, self.process.id, keys),
                budget=min(self.retry_seconds, 5.0),
            )
        except Exception as error:
            log.error("job %s: objects not recorded as intents (%s)", job.id, error)
            return False
        return True

    async def persist(
        self, what: str, operation: Callable[[], Awaitable[T]], budget: float | None = None
    ) -> T:
        """A database or object-store step, retried while it fails transiently (a locked
        database, an unreachable bucket) for `budget` seconds (`retry_seconds` by default)."""
        return await persist(what, operation, self.retry_seconds if budget is None else budget)

    async def fail(
        self,
        job: Job[Any],
        key: str,
        params: dict[str, Any],
        error: str,
        budget: float | None = None,
        *,
        maybe_billed: bool = False,
    ) -> None:
        """End the job FAILED with its refund, exactly once, and tell the member. Never
        raises: if the refund can't be written within `budget` (`retry_seconds`), it is
        retried in the background. `maybe_billed`: the API may have made (and billed) what we
        never got: the member is refunded all the same, and the budgets keep counting the
        job's estimated cost, so they never under-count what Google bills."""
        self.release(job)
        try:
            refund = await self.persist(
                f"job {job.id}: refunding",
                functools.partial(
                    self.jobs.fail_and_refund,
                    job.id,
                    error[:500],
                    interrupted=maybe_billed,
                    reason={"key": key, "params": params},
                ),
                budget=None if budget is None else min(budget, self.retry_seconds),
            )
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            if is_transient(failure) and not self._closing:
                log.error(
                    "job %s: refund not written yet (%s); retrying in the background",
                    job.id,
                    failure,
                )
                self.spawn(self._refund_later(job, key, params, error, maybe_billed))
            else:
                log.error("job %s: refund failed: %s", job.id, failure, exc_info=failure)
            return
        await self._refunded(job, key, params, error, refund)

    async def _refund_later(
        self, job: Job[Any], key: str, params: dict[str, Any], error: str, maybe_billed: bool
    ) -> None:
        """Keep trying a refund until the database takes it (or the engine closes: the
        start-up recovery then refunds the job)."""
        try:
            refund = await self.persist(
                f"job {job.id}: refunding (background)",
                functools.partial(
                    self.jobs.fail_and_refund,
                    job.id,
                    error[:500],
                    interrupted=maybe_billed,
                    reason={"key": key, "params": params},
                ),
                budget=float("inf"),
            )
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            log.error("job %s: refund failed: %s", job.id, failure, exc_info=failure)
            return
        await self._refunded(job, key, params, error, refund)

    async def _refunded(
        self, job: Job[Any], key: str, params: dict[str, Any], error: str, refund: Refund | None
    ) -> None:
        log.info("job failed job=%s user=%s reason=%s", job.id, job.user_id, error[:200])
        if refund is None:
            return  # ended already (refunded by someone else): nothing more to say
        report_owed(refund)
        await self._finished(job.id, "failed", key, refund)
        failure = Failure(key, params, refund.refunded, refund.balance, refund.owed)
        shown = job.shown and hasattr(job.listener, "unsaved")
        await self.notify(job, "unsaved" if shown else "failed", failure)

    async def completed(self, job: Job[Any]) -> None:
        """The kind completed the job (committed with what it made): it counts from now."""
        await self._finished(job.id, "completed")

    async def _finished(
        self, job_id: str, outcome: Outcome, reason: str | None = None, refund: Refund | None = None
    ) -> None:
        """`JobFinished` on the event bus (what /metrics counts); a refund that some other
        process made (None) is not this process's to count."""
        if refund is None and outcome != "completed":
            return
        await self.events.publish(
            JobFinished(
                job_id, outcome, reason,
                refund.refunded if refund else 0, refund.owed if refund else 0,
            )
        )  # fmt: skip

    def release(self, job: Job[Any]) -> None:
        """Give the member's job slot back (once, whichever path ends the job)."""
        if job.released:
            return
        job.released = True
        self.release_slot(job.slot_key or job.user_id)

    def release_slot(self, key: Hashable) -> None:
        remaining = self._member_slots.get(key, 0) - 1
        if remaining > 0:
            self._member_slots[key] = remaining
        else:
            self._member_slots.pop(key, None)
        self._total_slots = max(0, self._total_slots - 1)

    async def notify(self, job: Job[Any], event: str, *args: Any) -> None:
        """Call the listener (events it lacks are skipped); its failures (Discord being down)
        never break the job."""
        handler = getattr(job.listener, event, None)
        if handler is None:
            return
        try:
            await handler(job, *args)
        except Exception:
            log.exception("listener %s for job %s failed", event, job.id)


def _model_of(job: Job[Any]) -> str | None:
    """The model a job asked for (None: the default), as its row records it."""
    model = job.row.request.get("model")
    return model if isinstance(model, str) else None


def report_owed(refund: Refund) -> None:
    """Log a refund that could not be applied (the balance cap), for the owner to settle."""
    if refund.owed:
        log.error(
            "refund of %d coins to user %s for job %s could not be applied: %s. It is "
            "recorded on the job (jobs.refund_owed); settle it by hand once the balance allows",
            refund.owed,
            refund.job.user_id,
            refund.job.id,
            refund.job.error or "balance cap",
        )
