"""Generation jobs: reserve coins, queue, run on a supervised pool of workers, store, refund.

The lifecycle (DESIGN section 4 and 5):
- `reserve` checks the request against the chosen model (ratio, size, images) and its cost (the
  server's price where GENERATION_COSTS sets none), debits the payer's wallet and creates a
  PENDING image (recording its server and that wallet) in one transaction, and takes one of the
  member's job slots (the server's `jobs_per_member`, at most `max_jobs_per_user`). Nothing is
  queued yet, so the Discord adapter can still answer with an ephemeral error if its own step
  fails (and `cancel` refunds).
- `admit` is the in-memory part of the member's limits (their job slots in this process, room
  in the queue), with no await: an adapter calls it before answering the member, then
  reserves after the answer (`reserve(..., admission=...)`), so the database work is never in
  the way of Discord's acknowledgement.
- `enqueue` puts the job on this process's queue, served by `max_concurrent` workers and as
  many more (`lookahead`: they wait for a slot with their job ready).
- A worker takes one of the deployment's `max_concurrent` generation slots (a row in the
  database, shared by every process: the API key's quota is), marks the job PROCESSING and
  calls the model; then it gives the slot back, recording the objects the job will write, and
  a finishing task stores every image of the answer, their thumbnails and the inputs, marks
  the job COMPLETED (further images of the answer become COMPLETED rows of their own, linked
  to the job) and delivers it, while the worker takes the next job.
- Delivery first: the finishing task (at most `max_finishers` at once: each holds a decoded
  answer) hands the checked answer to the listener at once (`ready`), and meanwhile makes the
  thumbnails (in the image pool, off the event loop), stores the objects and commits. A
  failure after delivery: the member keeps the image they were shown; the job ends FAILED and
  refunded with no object left behind (the listener's `unsaved`).

Jobs are leases (DESIGN 7b): each belongs to this process (`ProcessLease`), whose heartbeat
keeps it live. The per-member job cap counts the member's unfinished jobs in every live
process. A sweep (at start-up, then every half lease) fails and refunds the jobs of processes
whose lease expired, exactly once whichever process gets there first, deletes the objects they
were writing, and tells their members (`on_recovered`); it never touches a live process's
jobs.

Nothing strands a job or kills a worker:
- every database or object-store step of a job is retried with backoff for `retry_seconds`
  (a SQLite file locked by another process, a flaky bucket); then the job ends FAILED;
- ending FAILED refunds the wallet that paid in one transaction, exactly once (guarded on
  status in the repository); if even that write can't land yet, it keeps being retried in the
  background until it does, and the member is told when it has;
- a refund that would pass the balance cap is recorded on the image and reported, never lost
  silently and never a crash;
- a supervisor restarts any worker that ends unexpectedly, and logs it.

`close` stops intake, lets running jobs finish up to a deadline, and refunds the rest.
`recover` (start-up) is the first sweep; what it cannot settle now is logged and retried by the
next sweeps, so start-up goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import unicodedata
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from bot import imaging
from bot.i18n import has_message
from bot.logcontext import set_log_context
from bot.nanobanana import (
    AuthenticationFailed,
    ContentBlocked,
    GeneratedImage,
    InputImage,
    InvalidRequest,
    ModelNotFound,
    ModelProfile,
    NanobananaError,
    OutputImage,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    nearest_ratio,
)
from bot.services import turns
from bot.services.budgets import BudgetService
from bot.services.catalog import ModelCatalog
from bot.services.errors import (
    ImageNotFound,
    InvalidInput,
    NotEnoughCoins,
    QueueFull,
    ShuttingDown,
    TooManyJobs,
    UserFacingError,
)
from bot.services.events import EventBus, JobFinished
from bot.services.imagework import ImageWork
from bot.services.jobs import (
    ExtraImage,
    Failure,
    GenerationRequest,
    ImageGenerator,
    Job,
    JobListener,
    Result,
    SourceImage,
)
from bot.services.members import Payer
from bot.services.models import ModelService
from bot.services.processes import ProcessLease
from bot.services.resilience import is_transient, persist
from storage.errors import (
    DatabaseBusy,
    DatabaseError,
    InsufficientCoins,
    InvalidTransition,
    ModelRetired,
    NotFound,
    ObjectsReclaimed,
    TooManyActiveJobs,
)
from storage.images import ImageRepository, Refund, StoredObject
from storage.leases import LeaseRepository
from storage.models import Image
from storage.objects import ObjectStore, StorageError, image_key, thumbnail_key
from storage.usage import BudgetExceeded

__all__ = [
    "Admission",
    "ExtraImage",
    "Failure",
    "GenerationRequest",
    "GenerationService",
    "ImageGenerator",
    "Job",
    "JobListener",
    "Result",
    "SourceImage",
    "failure_reason",
    "is_transient",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

THUMBNAIL_SIZE = 256
# Waiting jobs told their new position on every move (and then every tenth).
ANNOUNCE_FIRST = 5
# Finished jobs whose step times are kept (`recent_marks`), for logs and benchmarks.
KEEP_MARKS = 5000

# Characters that show nothing on their own: a prompt made only of these (zero-width spaces,
# BOMs, word joiners, NULs, control and format characters, fillers) is empty.
_VISIBLE_CATEGORIES = frozenset("LNPS")
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: The error recorded on jobs whose process died (members are told they were interrupted).
INTERRUPTED = "interrupted by a restart"
# Longest wait between two looks for a free generation slot held by another process.
SLOT_POLL_MAX = 0.5
# How long a slot handed to this process's next job may wait to be taken before it goes back.
SPARE_SLOT_SECONDS = 0.2
# How long a Reroll or Edit of a result that is shown but still being stored here waits for it
# (after its own answer: nothing waits on Discord's 3 s).
SETTLE_SECONDS = 30.0
# Earlier prompts an edit keeps (the original and the latest ones).
MAX_SOURCE_PROMPTS = 5
_jitter = random.Random()


class _StoppedBeforeStart(Exception):
    """The service stopped while a job waited for a generation slot (it never called the API)."""


class _ApiSlot:
    """One of the deployment's generation slots, which the client holds around each HTTP
    exchange of a job only (preparing the request, waiting to retry and decoding the answer
    happen outside it). Leaving gives the slot back without waiting."""

    def __init__(self, service: GenerationService, job: Job) -> None:
        self._service = service
        self._job = job
        self._slot: int | None = None

    async def __aenter__(self) -> None:
        if self._slot is None:
            self._slot = await self._service._take_slot(self._job)

    async def __aexit__(self, *exc_info: object) -> None:
        self.give_back()

    def give_back(self) -> None:
        """Give the slot back if it is held (idempotent; never waits)."""
        slot, self._slot = self._slot, None
        if slot is not None:
            self._service._give_back(slot)


@dataclass(frozen=True)
class _StorePlan:
    """Where a job's answer goes: object keys of its images, thumbnails, inputs and earlier
    turns (decided before the slot is given back, so the keys are recorded as intents)."""

    images: tuple[OutputImage, ...]
    keys: list[str]
    thumb_keys: list[str]
    input_keys: list[str]
    history_objects: list[tuple[str, bytes, str]]
    history: list[dict[str, Any]]

    @property
    def all_keys(self) -> list[str]:
        return [*self.keys, *self.thumb_keys, *self.input_keys,
                *(k for k, _, _ in self.history_objects)]  # fmt: skip


@dataclass(eq=False)
class Admission:
    """One of a member's job slots, taken by `GenerationService.admit` before any await.
    `reserve(..., admission=...)` hands it to the job; `release()` gives it back unused."""

    service: GenerationService
    key: Hashable
    #: Where the job will wait: 0 when a worker is free for it now (a guess for the first
    #: message; the queue tells the member again as it moves).
    position: int = 0
    used: bool = False
    released: bool = False

    def release(self) -> None:
        """Give the slot back (idempotent; a slot handed to a job is the job's to give)."""
        if self.used or self.released:
            return
        self.released = True
        self.service._release_slot(self.key)


class GenerationService:
    """The queue and workers. Start with `start()`, stop with `close()`."""

    def __init__(
        self,
        *,
        images: ImageRepository,
        store: ObjectStore,
        generator: ImageGenerator,
        cost: int,
        max_concurrent: int,
        max_jobs_per_user: int,
        max_prompt_chars: int,
        queue_size: int = 200,
        catalog: ModelCatalog | None = None,
        retry_seconds: float = 60.0,
        enabled: bool = True,
        process: ProcessLease | None = None,
        lease_seconds: float = 30.0,
        budgets: BudgetService | None = None,
        imagework: ImageWork | None = None,
        max_finishers: int | None = None,
        lookahead: int | None = None,
        lend_slots: bool | None = None,
        models: ModelService | None = None,
    ) -> None:
        self.images = images
        self.store = store
        self.generator = generator
        #: The live catalog (which models exist now); without it, `catalog` stands alone.
        self.models = models
        self._catalog = catalog or ModelCatalog(generator.model, default_cost=cost)
        self.max_concurrent = max_concurrent
        self.max_jobs_per_user = max_jobs_per_user
        self.max_prompt_chars = max_prompt_chars
        self.queue_size = queue_size
        #: Where thumbnails are made (a bounded process pool); threads when None.
        self.imagework = imagework
        # Each finishing job holds its decoded answer (5-7 MB at 2048²) until stored: at most
        # this many at once; a worker with a new answer waits for room (memory stays bounded).
        self.max_finishers = max_finishers or max_concurrent
        # Workers beyond the slots (default: as many): they wait for a slot with their job
        # ready, so a freed slot is taken at once.
        self.lookahead = max_concurrent if lookahead is None else lookahead
        #: How long a job's storage step is retried before the job is failed and refunded.
        self.retry_seconds = retry_seconds
        # False when no API key is configured: refuse before charging anyone.
        self.enabled = enabled
        #: Admits jobs within the host's budgets and records what each answer cost.
        self.budgets = budgets
        #: Called with refunds the background recovery made (the app tells the members).
        self.on_recovered: Callable[[list[Refund]], Awaitable[None]] | None = None
        #: Called with each finished job (the moderation log); failures are logged.
        self.on_completed: Callable[[Result], Awaitable[None]] | None = None
        #: Where `JobFinished` is published (set by the composition root; /metrics counts it).
        self.events: EventBus | None = None
        #: How many times the supervisor restarted a worker.
        self.worker_restarts = 0
        self.leases = LeaseRepository(images.db)
        # This process's lease: given by the app (shared with uploads), else its own.
        self._owns_process = process is None
        self.process = process or ProcessLease(self.leases, lease_seconds=lease_seconds)
        #: Seconds between two sweeps of expired leases.
        self.sweep_seconds = self.process.lease_seconds / 2
        self._slot_freed = asyncio.Event()
        # This process's share of the slots, taken first (in order), then claimed in the
        # database, which bounds the whole deployment.
        self._local_slots = asyncio.Semaphore(max_concurrent)
        # Slots this process holds in the database that a job just gave back while another
        # of its jobs waited: the next one takes it without a database round trip.
        self._spare: list[int] = []
        self._slot_waiters = 0
        #: Slots claimed from the database, and handed straight to this process's next job.
        self.slot_claims = 0
        self.slot_handovers = 0
        #: Pass a held slot straight to this process's next job (one process: SQLite); on
        #: PostgreSQL every slot goes back to the database so every process gets its turn.
        self.lend_slots = not images.db.dialect.is_postgres if lend_slots is None else lend_slots
        self._slots_ready = False
        self._sweeper: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # Jobs waiting, in order, for positions; running jobs by id.
        self._waiting: OrderedDict[str, Job] = OrderedDict()
        self._running: dict[str, Job] = {}
        # member (Discord id, else user id) -> admitted + reserved + queued + running
        self._slots: dict[Hashable, int] = {}
        self._total_slots = 0
        self._finishing = asyncio.Semaphore(self.max_finishers)
        # Results shown but not stored yet (delivery first), by image id; each event is set
        # when its job ends, stored or failed (see `settled`).
        self._settling: dict[str, asyncio.Event] = {}
        #: (job id, prompt, step marks) of recently finished jobs, oldest first.
        self.recent_marks: deque[tuple[str, str, dict[str, float]]] = deque(maxlen=KEEP_MARKS)
        self._workers: list[asyncio.Task[None]] = []
        self._finishers: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Future[Any]] = set()
        self._idle = asyncio.Event()  # set while no job is running
        self._idle.set()
        self._accepting = False
        self._closing = False

    @property
    def catalog(self) -> ModelCatalog:
        """The models members may use now (the live one when the service has `models`)."""
        return self.models.catalog if self.models is not None else self._catalog

    @catalog.setter
    def catalog(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    # Validation --------------------------------------------------------------------------

    def validate_prompt(self, prompt: str) -> str:
        """The prompt as it will be sent: control characters dropped, stripped, with at least
        one visible character (a letter, digit, punctuation mark or symbol), within the
        configured length. Invisible-only prompts are empty, so they cost nothing."""
        cleaned = "".join(
            ch for ch in (prompt or "") if ch in "\n\t" or unicodedata.category(ch) != "Cc"
        ).strip()
        if not any(
            unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES and ch not in _BLANK_GLYPHS
            for ch in cleaned
        ):
            raise InvalidInput("prompt.empty")
        if len(cleaned) > self.max_prompt_chars:
            raise InvalidInput("prompt.too_long", length=len(cleaned), limit=self.max_prompt_chars)
        return cleaned

    def validate_ratio(self, ratio: str, model: str | None = None) -> str:
        """A ratio the chosen model (the default one if None) accepts."""
        return self.catalog.ratio(self.catalog.profile(model), ratio)

    def cost_of(
        self, model: str | None = None, size: str | None = None, *, default: int | None = None
    ) -> int:
        """What one image costs with this model and size (defaults filled in); `default` is a
        server's own price for what GENERATION_COSTS doesn't price."""
        profile = self.catalog.profile(model)
        return self.catalog.cost(profile.model, self.catalog.size(profile, size), default=default)

    def active_jobs(self, key: Hashable) -> int:
        """Admitted, reserved, queued and running jobs of a member in this process (by
        `Payer.slot_key`)."""
        return self._slots.get(key, 0)

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def accepting(self) -> bool:
        """Whether new jobs are taken (started, and not stopping)."""
        return self._accepting

    @property
    def workers_alive(self) -> int:
        """Workers that are running (the supervisor keeps this at `worker_count`)."""
        return sum(not task.done() for task in self._workers)

    @property
    def worker_count(self) -> int:
        """How many workers run: the slots plus the lookahead."""
        return self.max_concurrent + self.lookahead

    async def wait_idle(self) -> None:
        """Until no job is running or finishing (stored and committed)."""
        await self._idle.wait()

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this process (if the service owns its lease), start the workers
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
        task = asyncio.create_task(self._worker(number), name=f"generation-worker-{number}")
        task.add_done_callback(functools.partial(self._worker_ended, number))
        return task

    def _worker_ended(self, number: int, task: asyncio.Task[None]) -> None:
        """The supervisor: a worker that ends while the service runs is logged and replaced."""
        if self._closing or task.cancelled():
            return
        error = task.exception()
        self.worker_restarts += 1
        log.error(
            "generation worker %d ended unexpectedly (%s); restarting it",
            number,
            f"{type(error).__name__}: {error}" if error else "returned",
            exc_info=error,
        )
        if number < len(self._workers) and self._workers[number] is task:
            self._workers[number] = self._new_worker(number)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def recover(self) -> list[Refund]:
        """Fail and refund the jobs of processes whose lease has expired (a crashed run of
        this bot, or another process that died), exactly once; delete the objects they were
        writing. Never touches a live process's jobs, this one's included.

        Never raises: a refund that cannot be applied (over the balance cap) is recorded on
        the image and logged for the owner; what can't be written now (the database is
        locked) is logged and left to the next sweep, so start-up goes on."""
        try:
            work = await self.leases.sweep_work()
        except Exception as error:
            log.error("could not read expired jobs (%s); the next sweep retries", error)
            return []
        refunds: list[Refund] = []
        for image in work.expired_jobs:
            try:
                refund = await self._persist(
                    f"refunding image {image.id} of a process that died",
                    functools.partial(
                        self.images.fail_and_refund,
                        image.id,
                        INTERRUPTED,
                        interrupted=True,
                        only_if_expired=True,
                    ),
                    budget=min(self.retry_seconds, 5.0),
                )
            except Exception as error:
                log.error(
                    "could not refund interrupted image %s of user %s (%d coins): %s; the "
                    "next sweep retries",
                    image.id, image.user_id, image.coins_used, error,
                )  # fmt: skip
                continue
            if refund is not None:
                self._report_owed(refund)
                refunds.append(refund)
                await self._publish(image.id, "interrupted", "reason.interrupted", refund)
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
        together don't sweep together), telling members about what was refunded."""
        while True:
            await asyncio.sleep(self.sweep_seconds * (0.75 + _jitter.random() / 2))
            refunds = await self.recover()
            if refunds and self.on_recovered is not None:
                try:
                    await self.on_recovered(refunds)
                except Exception:
                    log.exception("telling members about recovered jobs failed")

    async def close(self, deadline: float = 30.0) -> None:
        """Stop intake; let running jobs finish within `deadline` s; refund everything else."""
        self._accepting = False
        # Jobs whose worker still waits for a slot have not called the API: they are refunded
        # like the queued ones (woken here), not run past the stop.
        self._slot_freed.set()
        for spare in self._spare:
            self._spawn(self._free_slot(spare, local=False))
        self._spare.clear()
        waiting = list(self._waiting.values())
        self._waiting.clear()
        for job in waiting:
            await self._fail(job, "reason.shutdown", {}, "shutdown before start", budget=5.0)
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

    # Submitting --------------------------------------------------------------------------

    def admit(self, key: Hashable, limit: int) -> Admission:
        """Take one of a member's job slots in this process (at most `limit`, and never more
        than `max_jobs_per_user`) and room in the queue, in memory and before any await, so
        a Discord adapter can answer at once. Raises a UserFacingError and takes nothing on
        refusal. The slot goes to the job `reserve` makes with it, or back with `release()`
        (the deployment's count, over every process, is checked with the reservation)."""
        if not self.enabled:
            raise InvalidInput("gen.not_configured")
        if not self._accepting:
            raise ShuttingDown()
        if not self.process.registered:
            # The database hasn't taken this process's registration yet (locked, out of
            # reach): a job now would look abandoned to other processes.
            raise UserFacingError("error.busy")
        limit = min(limit, self.max_jobs_per_user)
        if self._slots.get(key, 0) >= limit:
            raise TooManyJobs(limit=limit)
        # Slots count every admitted, reserved, queued and running job of every member.
        if self._total_slots >= self.queue_size + self.max_concurrent:
            raise QueueFull()
        self._slots[key] = self._slots.get(key, 0) + 1
        self._total_slots += 1
        busy = self._total_slots - 1  # jobs ahead of this one, running ones included
        return Admission(self, key, position=max(0, busy - self.max_concurrent + 1))

    async def reserve(
        self,
        payer: Payer,
        request: GenerationRequest,
        listener: JobListener | None = None,
        *,
        admission: Admission | None = None,
        retry_default: bool = True,
    ) -> Job:
        """Check the request and limits, debit the cost from the payer's wallet and create the
        PENDING image; the job is not queued yet (see `enqueue`). With `admission` (from
        `admit`), the job takes that slot; without, one is taken here. Raises a
        UserFacingError and changes nothing on refusal (the admission's slot is given back).
        A model another process found retired meanwhile is refused free (a request that
        named no model moves to the new default once: `retry_default`)."""
        try:
            if not self.enabled:
                raise InvalidInput("gen.not_configured")
            if not self._accepting:
                raise ShuttingDown()
            prompt = self.validate_prompt(request.prompt)
            profile = self.catalog.profile(request.model)
            ratio = self.catalog.ratio(profile, request.aspect_ratio)
            size = self.catalog.size(profile, request.image_size)
            earlier = sum(1 for turn in request.history for p in turn.parts if p.image is not None)
            self.catalog.check_images(profile, len(request.inputs) + earlier)
            cost = self.catalog.cost(profile.model, size, default=payer.cost)
            # The server's blocklist, before any charge; the message never repeats the entry.
            payer.content.check(prompt)
            # Taken before awaiting, so concurrent requests of one member can't all pass.
            admission = admission or self.admit(payer.slot_key, payer.max_jobs)
        except BaseException:
            if admission is not None:
                admission.release()
            raise
        user_id = payer.user_id
        limit = min(payer.max_jobs, self.max_jobs_per_user)
        request = replace(
            request, prompt=prompt, aspect_ratio=ratio, model=profile.model, image_size=size,
            follows_default=request.model is None and self.catalog.auto,
        )  # fmt: skip
        sources = {"source_prompts": list(request.source_prompts)} if request.source_prompts else {}
        claim = None
        if self.budgets is not None:
            claim = self.budgets.claim(
                payer.guild_id, payer.caps, model=profile.model, size=size,
                prompt_chars=len(prompt), input_images=len(request.inputs) + earlier,
            )  # fmt: skip
        try:
            image, balance, notices = await self.images.reserve_within_budget(
                claim=claim,
                user_id=user_id,
                wallet_id=payer.wallet_id,
                guild_id=payer.guild_id,
                cost=cost,
                prompt=prompt,
                lease_owner=self.process.id,
                max_active=limit,
                model=profile.model,
                metadata={
                    "aspect_ratio": ratio,
                    "model": profile.model,
                    **({"image_size": size} if size else {}),
                    "source_image_ids": list(request.source_image_ids),
                    **sources,
                    "inputs": len(request.inputs),
                    **({"context": request.context} if request.context else {}),
                },
            )
        except InsufficientCoins as error:
            admission.release()
            raise NotEnoughCoins(error.balance, error.cost) from None
        except TooManyActiveJobs:
            # Their other jobs run in other processes.
            admission.release()
            raise TooManyJobs(limit=limit) from None
        except ModelRetired as error:
            # Another process found the model gone since this one last looked: nothing was
            # charged. Learn it; a member who named no model gets the new default.
            admission.release()
            if self.models is not None:
                await self.models.reload()
            default = self.catalog.default_model
            if request.follows_default and retry_default and default not in (None, error.model):
                return await self.reserve(
                    payer, replace(request, model=None), listener, retry_default=False
                )
            raise InvalidInput(
                "model.retired", model=self.catalog.lineup.profile(error.model).name[:80]
            ) from None
        except BudgetExceeded as error:
            admission.release()
            assert self.budgets is not None
            self._spawn(self.budgets.exhausted(error))
            raise self.budgets.refusal(error) from None
        except DatabaseBusy as error:
            # Locked by another process (or unreachable): nothing was written; the member may
            # simply retry.
            admission.release()
            log.warning("reservation for user %s refused: database busy (%s)", user_id, error)
            raise UserFacingError("error.busy") from None
        except BaseException:
            admission.release()
            raise
        admission.used = True
        if notices and self.budgets is not None:
            self._spawn(self.budgets.announce(notices))
        return Job(
            image=image,
            request=request,
            balance=balance,
            listener=listener,
            slot_key=admission.key,
            daily_image_cap=payer.caps.daily_images if payer.guild_id is not None else None,
        )

    async def enqueue(self, job: Job) -> int:
        """Queue a reserved job; returns its 1-based position among waiting jobs."""
        if not self._accepting:
            await self._fail(job, "reason.shutdown", {}, "shutdown before queueing")
            raise ShuttingDown()
        job.marks["queued"] = time.monotonic()
        self._waiting[job.id] = job
        self._queue.put_nowait(job)
        position = len(self._waiting)
        await self._notify(job, "queued", position)
        return position

    async def submit(
        self, payer: Payer, request: GenerationRequest, listener: JobListener | None = None
    ) -> Job:
        """`reserve` then `enqueue`."""
        job = await self.reserve(payer, request, listener)
        await self.enqueue(job)
        return job

    async def cancel(self, job: Job, reason: str = "cancelled") -> Refund | None:
        """Refund a reserved job that will not run (e.g. the interaction could not be
        answered). If the database won't take the refund yet, it is retried in the
        background (and None returned) rather than leaving the job PENDING."""
        self._waiting.pop(job.id, None)
        self._release(job)
        try:
            refund = await self._persist(
                f"job {job.id}: cancelling",
                functools.partial(self.images.fail_and_refund, job.id, reason),
            )
            await self._publish(job.id, "cancelled", "cancelled", refund)
            return refund
        except Exception as failure:
            if not is_transient(failure):
                raise
            log.error("job %s: refund not written yet (%s); retrying in the background",
                      job.id, failure)  # fmt: skip
            self._spawn(self._refund_later(job, "reason.internal", {}, reason))
            return None

    def position(self, job_id: str) -> int | None:
        for index, waiting_id in enumerate(self._waiting, start=1):
            if waiting_id == job_id:
                return index
        return None

    # Requests from earlier images (Reroll/Edit) -----------------------------------------

    def settling(self, image_id: str) -> bool:
        """Whether this process has shown `image_id` and is still storing it."""
        return image_id in self._settling

    async def settled(self, image: Image) -> Image:
        """`image` as stored: a result is shown before it is stored, so a Reroll or Edit
        pressed at once waits (at most SETTLE_SECONDS) for its job to end here, then reads it
        back (COMPLETED with its inputs and turn, or FAILED if it couldn't be kept)."""
        ended = self._settling.get(image.id)
        if ended is None:
            return image
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_SECONDS):
                await ended.wait()
        return await self.images.get(image.id) or image

    async def reroll_request(
        self, image: Image, context: dict[str, Any] | None = None
    ) -> GenerationRequest:
        """The same job again: prompt, model, ratio, size, inputs and earlier turn. A further
        image of an answer rerolls its job."""
        image = await self.settled(image)
        extra_of = image.metadata.get("extra_of")
        if extra_of:
            primary = await self.images.get(str(extra_of))
            if primary is None:
                raise ImageNotFound()
            image = primary
        if not image.prompt or not image.is_generated:
            raise ImageNotFound()
        profile = self.catalog.profile(self._model_of(image))
        return GenerationRequest(
            prompt=image.prompt,
            aspect_ratio=self._ratio_for(image, profile.aspect_ratios),
            inputs=await self.inputs_of(image),
            source_image_ids=tuple(image.metadata.get("source_image_ids", [])),
            context=dict(context or {}),
            model=profile.model,
            image_size=self._size_for(image, profile.image_sizes),
            history=await turns.history_of(self.store, image) if profile.thinking else (),
            source_prompts=source_prompts(image, own=False),
        )

    async def edit_request(
        self, image: Image, instruction: str, context: dict[str, Any] | None = None
    ) -> GenerationRequest:
        """A new job that edits `image` with `instruction`. On a thinking model (Pro, Nano
        Banana 2) the image's own turn (its prompt, the model's image and thought
        signatures) is sent as context; otherwise the image goes as an input. The ratio is
        the image's own when the model offers it, else the nearest one it does."""
        prompt = self.validate_prompt(instruction)
        image = await self.settled(image)
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        profile = self.catalog.profile(self._model_of(image))
        turn = await turns.turn_of(self.store, image) if profile.thinking else None
        return GenerationRequest(
            prompt=prompt,
            aspect_ratio=self._ratio_for(image, profile.aspect_ratios),
            inputs=() if turn is not None else (await self.image_as_input(image),),
            source_image_ids=(image.id,),
            context=dict(context or {}),
            model=profile.model,
            image_size=self._size_for(image, profile.image_sizes),
            history=(turn,) if turn is not None else (),
            source_prompts=source_prompts(image, own=True),
        )

    def _model_of(self, image: Image) -> str | None:
        """The model that made `image` if members may still use it, else the default (None:
        the catalog's default, or its refusal when no model can be used)."""
        model = image.metadata.get("model")
        if image.is_generated and isinstance(model, str) and model in self.catalog.profiles:
            return model
        return self.catalog.default_model

    @staticmethod
    def _ratio_for(image: Image, ratios: Sequence[str]) -> str:
        """The image's requested ratio if the model accepts it; otherwise the supported ratio
        nearest to its real shape (an upload's own reduced ratio, e.g. 683:384, is never sent
        as a request ratio)."""
        stored = image.metadata.get("aspect_ratio")
        if image.is_generated and isinstance(stored, str) and stored in ratios:
            return stored
        width, height = image.dimensions or (0, 0)
        return nearest_ratio(width, height, ratios) or ("1:1" if "1:1" in ratios else ratios[0])

    @staticmethod
    def _size_for(image: Image, sizes: Sequence[str]) -> str | None:
        stored = image.metadata.get("image_size")
        return stored if isinstance(stored, str) and stored in sizes else None

    async def inputs_of(self, image: Image) -> tuple[InputImage, ...]:
        """The input images an earlier job used, read back from storage, for a Reroll."""
        keys = image.metadata.get("input_keys") or []
        mimes = image.metadata.get("input_mime_types") or []
        inputs = []
        for index, key in enumerate(keys):
            mime = mimes[index] if index < len(mimes) else "image/png"
            try:
                inputs.append(InputImage(await self.store.get(str(key)), str(mime)))
            except StorageError:
                raise ImageNotFound() from None
        return tuple(inputs)

    async def image_as_input(self, image: Image) -> InputImage:
        """A finished image's bytes as the input of an Edit."""
        if not image.is_ready or not image.storage_key:
            raise ImageNotFound()
        try:
            data = await self.store.get(image.storage_key)
        except StorageError:
            raise ImageNotFound() from None
        return InputImage(data, str(image.metadata.get("mime_type", "image/png")))

    # Workers -----------------------------------------------------------------------------

    async def _worker(self, number: int) -> None:
        """Takes one of the deployment's `max_concurrent` generation slots while a job calls
        the model, then hands the result to a finishing task (store + deliver) and takes the
        next job at once: the slots bound calls to the image API, not the time spent storing
        and replying."""
        while True:
            job = await self._queue.get()
            set_log_context({**job.log_ids, "job_id": job.id})
            handed_off = False
            try:
                if self._waiting.pop(job.id, None) is None:
                    continue  # cancelled or failed at shutdown while waiting
                self._announce_positions()
                self._running[job.id] = job
                self._idle.clear()
                answer = await self._generate(job)
                if answer is not None:
                    await self._finishing.acquire()
                    task = asyncio.create_task(self._finish(job, *answer))
                    self._finishers.add(task)
                    task.add_done_callback(self._finisher_done)
                    handed_off = True
            except asyncio.CancelledError:
                # Shutdown past the deadline: the job can't finish, so refund it now.
                await asyncio.shield(self._fail(job, "reason.shutdown", {}, "shutdown", budget=5.0))
                raise
            except Exception:
                log.exception("generation job %s crashed", job.id)
                await self._fail(job, "reason.internal", {}, "internal error")
            except BaseException:
                # Something no job should raise: refund this job, then let the supervisor
                # replace the worker.
                log.exception("generation job %s ended its worker", job.id)
                await asyncio.shield(self._fail(job, "reason.internal", {}, "internal error"))
                raise
            finally:
                if not handed_off:
                    self._done_running(job)
                self._queue.task_done()

    def _finisher_done(self, task: asyncio.Task[None]) -> None:
        self._finishers.discard(task)
        self._finishing.release()

    def _done_running(self, job: Job) -> None:
        self._running.pop(job.id, None)
        if not self._running:
            self._idle.set()

    def _announce_positions(self) -> None:
        """Tell waiting jobs their new position, without waiting for anyone to be told. Only
        the first few and every tenth are told at each move: editing every waiting message
        on every dequeue floods Discord."""
        for position, waiting in enumerate(list(self._waiting.values()), start=1):
            if position <= ANNOUNCE_FIRST or position % 10 == 0:
                self._spawn(self._notify(waiting, "queued", position))

    async def _generate(self, job: Job) -> tuple[GeneratedImage, _StorePlan] | None:
        """A generation slot and PROCESSING, then the model call; the answer and where it will
        be stored, or None when the job ended here (failed and refunded)."""
        job.started_at = time.monotonic()
        job.marks["started"] = job.started_at
        try:
            # PROCESSING now (this write overlaps the calls of the jobs holding the slots);
            # the slot is taken around the API call itself.
            retired = await self._persist(
                f"job {job.id}: marking it processing",
                functools.partial(
                    self.leases.mark_processing, job.id, self.process.id, model=job.request.model
                ),
            )
        except (InvalidTransition, NotFound):
            # Finished meanwhile (e.g. shutdown refunded it): nothing left to do.
            log.info("job %s no longer pending; skipped", job.id)
            self._release(job)
            return None
        except Exception as error:
            await self._fail(job, "reason.database", {}, f"could not start: {error}")
            return None
        # Told without waiting: the member's message is edited while the API works.
        self._spawn(self._notify(job, "started"))
        # A model retired since the reservation (here, or by another process: the database
        # said so just now) is never called: the job moves to the new default (same price, no
        # earlier turns) or ends refunded.
        if retired and self.models is not None and not self.catalog.gone(job.request.model or ""):
            await self.models.reload()
        gone = job.request.model
        if gone and self.catalog.gone(gone) and not self._move_to_default(job):
            await self._fail_retired(job, gone)
            return None
        generated: GeneratedImage | None = None
        for _ in range(2):  # the second call only after a 404 moved the job to a new default
            generated = await self._call_model(job)
            if generated is not None or job.retired_model is None:
                break
            answered_404, job.retired_model = job.retired_model, None
            if self.models is not None:
                await self.models.model_gone(answered_404, "404 NOT_FOUND on generateContent")
            if not self._move_to_default(job):
                await self._fail_retired(job, answered_404)
                return None
        if generated is None:
            return None
        job.marks.update(
            api_sent=generated.sent_at,
            api_answered=generated.answered_at,
            decoded=generated.decoded_at or time.monotonic(),
        )
        if generated.model_status is not None and self.models is not None:
            self._spawn(self.models.status_noted(job.request.model or "", generated.model_status))
        return generated, self._plan(job, generated)

    async def _call_model(self, job: Job) -> GeneratedImage | None:
        """One model call for the job (the client retries what is worth retrying). None when
        the job ended here (failed and refunded), or when the model answered 404 (then
        `job.retired_model` names it and the job is still open)."""
        request = job.request
        catalog = self.catalog
        profile = catalog.profile(request.model) if request.model in catalog.profiles else None
        api_slot = _ApiSlot(self, job)
        try:
            return await self.generator.generate(
                request.prompt,
                request.inputs,
                request.aspect_ratio,
                image_size=request.image_size,
                model=request.model,
                history=request.history,
                slot=api_slot,
                thinking_level=catalog.thinking_level(profile) if profile else None,
                profile=profile,
            )
        except ModelNotFound as error:
            job.retired_model = error.model or request.model or self.generator.model
            return None
        except NanobananaError as error:
            if (
                isinstance(error, InvalidRequest)
                and error.status is not None
                and profile is not None
                and self.models is not None
            ):
                await self._note_refusal(profile, error, request)
            key, params = failure_reason(error)
            await self._fail(job, key, params, f"{type(error).__name__}: {error}")
            return None
        except _StoppedBeforeStart:
            # Stopped while waiting for a slot (the API was not called, or a retry waited):
            # refunded like a queued job.
            await self._fail(job, "reason.shutdown", {}, "shutdown before start", budget=5.0)
            return None
        finally:
            api_slot.give_back()

    async def _note_refusal(
        self, profile: ModelProfile, error: InvalidRequest, request: GenerationRequest
    ) -> None:
        """The API refused a setting of the request: remember it for the model."""
        assert self.models is not None
        refused = {
            "ratio": ("ratios", request.aspect_ratio),
            "size": ("sizes", request.image_size),
            "thinking": ("thinking", self.catalog.thinking_level(profile)),
        }.get(error.code)
        if refused is None or refused[1] is None:
            return
        try:
            await self.models.option_refused(profile, refused[0], refused[1])
        except Exception as failure:
            log.warning("could not record what the API refused (%s)", failure)

    def _move_to_default(self, job: Job) -> bool:
        """Point a job whose model is gone at the catalog's default, when the member named
        no model, it carries no earlier turns (their signatures belong to the old model),
        the new model takes its ratio, size and images, and it costs the same. Whether it
        moved."""
        request = job.request
        catalog = self.catalog
        if not request.follows_default or request.history or not catalog.usable:
            return False
        profile = catalog.default
        if profile.model == request.model or request.aspect_ratio not in profile.aspect_ratios:
            return False
        size = request.image_size if request.image_size in profile.image_sizes else None
        if (
            request.image_size is not None
            and size is None
            and request.image_size
            != (self.catalog.lineup.profile(request.model or "").default_size)
        ):
            return False  # the member asked for a size the new model lacks
        size = size or profile.default_size
        if len(request.inputs) > profile.max_reference_images:
            return False
        unset = -1
        old = catalog.cost(request.model or "", request.image_size, default=unset)
        new = catalog.cost(profile.model, size, default=unset)
        if old != new:
            return False
        log.warning("job %s: model %s is gone; moved to %s", job.id, request.model,
                    profile.model)  # fmt: skip
        job.request = replace(request, model=profile.model, image_size=size)
        return True

    async def _fail_retired(self, job: Job, model: str) -> None:
        name = self.catalog.lineup.profile(model).name
        await self._fail(job, "reason.model_retired", {"model": name}, f"model {model} retired")

    async def _within_daily_cap(self, job: Job, plan: _StorePlan) -> _StorePlan:
        """The plan without the further images of the answer that its server's daily image
        cap has no room for (they are neither shown nor stored). If that can't be counted
        now, only the job's own image (counted at its reservation) is kept. Never raises."""
        images = len(plan.images)
        if self.budgets is None or job.daily_image_cap is None or images <= 1:
            return plan
        try:
            kept = await self._persist(
                f"job {job.id}: counting its images",
                functools.partial(self.budgets.keep_images, job.id, images, job.daily_image_cap),
                budget=min(self.retry_seconds, 10.0),
            )
        except Exception as error:
            log.error("job %s: extra images not counted (%s); keeping one", job.id, error)
            kept = 1
        if kept >= images:
            return plan
        log.info("job %s: %d of %d images kept (the server's daily cap)", job.id, kept, images)
        return replace(
            plan, images=plan.images[:kept], keys=plan.keys[:kept],
            thumb_keys=plan.thumb_keys[:kept],
        )  # fmt: skip

    async def _bill(self, job: Job, generated: GeneratedImage, *, kept: int) -> None:
        """Record what the answer cost the host (from its usageMetadata) and the images it
        keeps, whatever happens to the job next: Google bills the call either way. Never
        fails the job."""
        if self.budgets is None:
            return
        request = job.request
        images = max(1, len(generated.images))
        try:
            await self._persist(
                f"job {job.id}: recording its cost",
                functools.partial(
                    self.budgets.bill, job.id, request.model or self.generator.model,
                    request.image_size, generated.usage, images, kept=min(kept, images),
                ),
                budget=min(self.retry_seconds, 10.0),
            )  # fmt: skip
        except Exception as error:
            # The reservation's estimate still counts against the budgets.
            log.error("job %s: cost not recorded (%s); its estimate stands", job.id, error)

    async def _take_slot(self, job: Job) -> int:
        """Wait for one of this process's slots (in order), then take a spare slot it holds
        or claim a free one of the deployment."""
        if not self._accepting:
            raise _StoppedBeforeStart(job.id)
        self._slot_waiters += 1
        try:
            await self._local_slots.acquire()
        finally:
            self._slot_waiters -= 1
        try:
            if self._spare:
                self.slot_handovers += 1
                return self._spare.pop()
            return await self._claim_slot(job)
        except BaseException:
            self._local_slots.release()
            raise

    async def _claim_slot(self, job: Job) -> int:
        """A free slot of the deployment for the job. A slot this process frees wakes its
        waiters at once; slots of other processes are looked for again after a short,
        growing, jittered wait."""
        delay = 0.02
        while True:
            if not self._accepting:
                raise _StoppedBeforeStart(job.id)
            # Cleared before looking, so a slot freed while we look is not missed.
            self._slot_freed.clear()
            if not self._slots_ready:
                await self._persist(
                    "creating the generation slots",
                    functools.partial(self.leases.ensure_slots, self.max_concurrent),
                )
                self._slots_ready = True
            slot = await self._persist(
                f"job {job.id}: taking a generation slot",
                functools.partial(
                    self.leases.claim_slot, job.id, self.process.id, self.max_concurrent
                ),
            )
            if slot is not None:
                self.slot_claims += 1
                return slot
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), delay * (0.5 + _jitter.random()))
            delay = min(delay * 2, SLOT_POLL_MAX)

    def _give_back(self, slot: int) -> None:
        """Give the slot back without waiting: to this process's next job at once if one
        waits for a slot (and lending is on), else to the database in the background."""
        if self.lend_slots and self._slot_waiters and self._accepting:
            self._spare.append(slot)
            self._local_slots.release()
            self._spawn(self._return_unused(slot))
        else:
            self._spawn(self._free_slot(slot))

    async def _return_unused(self, slot: int) -> None:
        """A spare slot nobody took (its waiter went away) goes back to the database."""
        await asyncio.sleep(SPARE_SLOT_SECONDS)
        if slot in self._spare:
            self._spare.remove(slot)
            await self._free_slot(slot, local=False)

    async def _free_slot(self, slot: int, *, local: bool = True) -> None:
        """Give the slot back to the database (and, with `local`, this process's share).
        Never raises: a slot that can't be given back now is given back in the background
        (until then it stays this process's)."""
        try:
            await self._persist(
                f"giving back generation slot {slot}",
                functools.partial(self.leases.release_slot, slot, self.process.id),
                budget=min(self.retry_seconds, 5.0),
            )
        except Exception as error:
            log.error("generation slot %d not given back yet (%s); retrying", slot, error)
            self._spawn(self._free_slot_later(slot))
        finally:
            if local:
                self._local_slots.release()
            self._slot_freed.set()

    async def _record_intents(self, job: Job, keys: Sequence[str]) -> bool:
        """Record the objects the job is about to write (so no sweep deletes them before its
        row points to them); whether they were recorded."""
        try:
            await self._persist(
                f"job {job.id}: recording its objects",
                functools.partial(self.leases.add_intents, self.process.id, keys),
                budget=min(self.retry_seconds, 5.0),
            )
        except Exception as error:
            log.error("job %s: objects not recorded as intents (%s)", job.id, error)
            return False
        return True

    async def _free_slot_later(self, slot: int) -> None:
        with contextlib.suppress(Exception):
            await self._persist(
                f"giving back generation slot {slot} (background)",
                functools.partial(self.leases.release_slot, slot, self.process.id),
                budget=float("inf"),
            )
        self._slot_freed.set()

    def _plan(self, job: Job, generated: GeneratedImage) -> _StorePlan:
        """The object keys of everything the job will store."""
        images = generated.images or (
            _as_output(generated.data, generated.mime_type, generated.width, generated.height),
        )
        request = job.request
        slug = request.prompt[:40]
        keys = [image_key(job.user_id, slug, turns.extension(i.mime_type)) for i in images]
        input_keys = [
            f"inputs/{job.user_id}/{job.id}-{n}.{turns.extension(i.mime_type)}"
            for n, i in enumerate(request.inputs)
        ]
        history_objects, history = turns.history_to_store(request.history, job.user_id, job.id)
        return _StorePlan(
            tuple(images), keys, [thumbnail_key(key) for key in keys], input_keys,
            history_objects, history,
        )  # fmt: skip

    async def _finish(self, job: Job, generated: GeneratedImage, plan: _StorePlan) -> None:
        """Deliver a checked answer at once and store it meanwhile (outside the slot); what
        the call cost the host is recorded alongside."""
        delivery: asyncio.Task[None] | None = None
        billing: asyncio.Task[None] | None = None
        self._settling[job.id] = asyncio.Event()
        try:
            plan = await self._within_daily_cap(job, plan)
            billing = asyncio.create_task(self._bill(job, generated, kept=len(plan.images)))
            images = plan.images
            extra_ids = [str(uuid.uuid4()) for _ in images[1:]]
            # The member's part is done once they see it: their job slot is free for the next
            # one while this is stored (memory stays bounded by the finishers).
            self._release(job)
            delivery = asyncio.create_task(
                self._deliver(job, self._preview(job, images, extra_ids))
            )
            try:
                result = await self._store(job, generated, plan, extra_ids)
            except (InvalidTransition, NotFound):
                log.info("job %s ended before its image was stored; dropped", job.id)
                return
            except ObjectsReclaimed as error:
                # This process's lease lapsed (the database was out of reach) and another
                # process deleted the objects: the job can't complete; fail it if it isn't.
                await asyncio.shield(delivery)
                await self._fail(job, "reason.storage", {}, f"storage: {error}")
                return
            except (StorageError, DatabaseError) as error:
                await asyncio.shield(delivery)
                await self._fail(job, "reason.storage", {}, f"storage: {error}")
                return
            # Stored: a Reroll or Edit waiting for it goes on (not after the hooks below).
            self._settle(job.id)
            await self._publish(job.id, "completed")  # committed: it counts from now
            await asyncio.shield(delivery)
            log.info(
                "job done image=%s user=%s images=%d latency=%.2fs api=%.2fs",
                job.id,
                job.user_id,
                1 + len(result.extras),
                time.monotonic() - job.submitted_at,
                generated.latency,
            )
            await self._notify(job, "completed", result)
            if self.on_completed is not None:
                try:
                    await self.on_completed(result)
                except Exception:
                    log.exception("job %s: completion hook failed", job.id)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(job, "reason.shutdown", {}, "shutdown", budget=5.0))
            raise
        except Exception:
            log.exception("generation job %s crashed while finishing", job.id)
            await self._fail(job, "reason.internal", {}, "internal error")
        except BaseException:
            log.exception("generation job %s crashed while finishing", job.id)
            await asyncio.shield(self._fail(job, "reason.internal", {}, "internal error"))
            raise
        finally:
            self._settle(job.id)
            if billing is not None:
                await asyncio.shield(billing)  # never raises
            self._done_running(job)
            self.recent_marks.append((job.id, job.request.prompt, dict(job.marks)))

    def _settle(self, job_id: str) -> None:
        """The job's image is stored or failed: whoever waits in `settled` goes on."""
        ended = self._settling.pop(job_id, None)
        if ended is not None:
            ended.set()

    async def _deliver(self, job: Job, preview: Result) -> None:
        """Hand the checked answer to the listener (the member sees it now)."""
        job.marks["delivering"] = time.monotonic()
        job.shown = True
        await self._notify(job, "ready", preview)
        job.marks["delivered"] = time.monotonic()

    def _preview(self, job: Job, images: Sequence[OutputImage], extra_ids: list[str]) -> Result:
        """The result as the member sees it before it is stored: the job's row (its id,
        prompt, ratio, model and cost are known since the reservation) and the ids its
        further images will get."""
        extras = tuple(
            ExtraImage(job.image.model_copy(update={"id": extra_id, "coins_used": 0}),
                       images[n].data, images[n].mime_type)
            for n, extra_id in enumerate(extra_ids, start=1)
        )  # fmt: skip
        return Result(job.image, images[0].data, images[0].mime_type, job.balance, extras)

    async def _thumbnails(self, images: Sequence[OutputImage]) -> list[bytes | None]:
        """A thumbnail per image, made in the image pool (off the event loop); None for an
        image whose thumbnail can't be made (the gallery then shows the image itself)."""

        async def one(image: OutputImage) -> bytes | None:
            try:
                if self.imagework is not None:
                    return await self.imagework.run(
                        imaging.make_thumbnail, image.data, THUMBNAIL_SIZE, wait=True
                    )
                return await asyncio.to_thread(imaging.make_thumbnail, image.data, THUMBNAIL_SIZE)
            except imaging.ImageProblem as problem:
                log.warning("no thumbnail for a generated image: %s", problem)
                return None

        return list(await asyncio.gather(*(one(image) for image in images)))

    async def _store(
        self, job: Job, generated: GeneratedImage, plan: _StorePlan, extra_ids: Sequence[str]
    ) -> Result:
        """Put every image of the answer (while their thumbnails are made in the image pool),
        the thumbnails, the inputs and earlier turns' images, then mark the job COMPLETED
        with its further images as rows of their own, in one transaction; each step is
        retried while storage is unavailable. If anything still fails, the objects written
        so far are deleted, so no object outlives a row."""
        images = plan.images
        request = job.request
        keys, input_keys = plan.keys, plan.input_keys
        thumbnailing = asyncio.create_task(self._thumbnails(images))
        objects: list[tuple[str, bytes, str]] = [
            *((k, i.data, i.mime_type) for k, i in zip(keys, images, strict=True)),
            *((k, i.data, i.mime_type) for k, i in zip(input_keys, request.inputs, strict=True)),
            *plan.history_objects,
        ]
        history = plan.history
        turn = turns.answer_turn(generated, keys, images)
        written: list[str] = []

        async def put(key: str, data: bytes, content_type: str) -> None:
            await self._persist(
                f"job {job.id}: storing {key}",
                functools.partial(self.store.put, key, data, content_type),
            )
            written.append(key)

        async def put_all(items: Sequence[tuple[str, bytes, str]]) -> None:
            # Every put ends (written or not) before a failure is raised, so the clean-up
            # below knows every key that was written.
            outcomes = await asyncio.gather(*(put(*item) for item in items), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

        def describe(index: int) -> dict[str, Any]:
            image = images[index]
            return {
                "width": image.width,
                "height": image.height,
                "size": len(image.data),
                "format": _FORMATS.get(image.mime_type, image.mime_type),
                "mime_type": image.mime_type,
                "aspect_ratio": request.aspect_ratio,
                "model": request.model or self.generator.model,
                "model_version": generated.model,
                **({"image_size": request.image_size} if request.image_size else {}),
            }

        recorded = False
        try:
            recorded = await self._record_intents(job, plan.all_keys)
            await put_all(objects)
            job.marks["stored"] = time.monotonic()
            thumbs = await thumbnailing
            job.marks["thumbnails"] = time.monotonic()
            thumb_keys = [k if t is not None else None
                          for k, t in zip(plan.thumb_keys, thumbs, strict=True)]  # fmt: skip
            await put_all(
                [(k, t, "image/webp") for k, t in zip(thumb_keys, thumbs, strict=True)
                 if k is not None and t is not None]
            )  # fmt: skip
            metadata = {
                **describe(0),
                "input_keys": input_keys,
                "input_mime_types": [i.mime_type for i in request.inputs],
                "api_latency_ms": round(generated.latency * 1000),
                "attempts": generated.attempts,
                "images": len(images),
                **({"history": history} if history else {}),
                # What an Edit sends back to keep its context (answers with signatures only).
                **({"turn": turn} if turn else {}),
            }
            extras_meta = [
                (self._stored(keys[n], thumb_keys[n]), {**describe(n), "index": n})
                for n in range(1, len(images))
            ]
            image, extra_rows = await self._persist(
                f"job {job.id}: recording the result",
                functools.partial(
                    self.images.complete_with_extras,
                    job.id,
                    self._stored(keys[0], thumb_keys[0]),
                    metadata,
                    extras_meta,
                    owner=self.process.id,
                    intents=plan.all_keys if recorded else (),
                    extra_ids=extra_ids,
                ),
            )
            job.marks["committed"] = time.monotonic()
        except asyncio.CancelledError:
            # `complete` may still commit on the database thread: keep the objects. If no row
            # points to them, the start-up reconciliation removes them.
            thumbnailing.cancel()
            raise
        except BaseException:
            thumbnailing.cancel()
            for written_key in written:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.delete(written_key))
            if recorded:
                with contextlib.suppress(Exception):
                    await self.leases.forget_intents(self.process.id, plan.all_keys)
            raise
        extras = tuple(
            ExtraImage(row, images[n].data, images[n].mime_type)
            for n, row in enumerate(extra_rows, start=1)
        )
        return Result(image, images[0].data, images[0].mime_type, job.balance, extras)

    def _stored(self, key: str, thumb_key: str | None) -> StoredObject:
        return StoredObject(
            key,
            self.store.public_url(key),
            thumb_key,
            self.store.public_url(thumb_key) if thumb_key is not None else None,
        )

    # Retrying and refunding -------------------------------------------------------------

    async def _persist(
        self, what: str, operation: Callable[[], Awaitable[T]], budget: float | None = None
    ) -> T:
        """A database or object-store step, retried while it fails transiently (a locked
        database, an unreachable bucket) for `budget` seconds (`retry_seconds` by default)."""
        return await persist(what, operation, self.retry_seconds if budget is None else budget)

    async def _fail(
        self,
        job: Job,
        key: str,
        params: dict[str, Any],
        error: str,
        budget: float | None = None,
    ) -> None:
        """End the job FAILED with its refund, exactly once, and tell the member. Never
        raises: if the refund can't be written within `budget` (`retry_seconds`), it is
        retried in the background."""
        self._release(job)
        try:
            refund = await self._persist(
                f"job {job.id}: refunding",
                functools.partial(self.images.fail_and_refund, job.id, error[:500]),
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
                self._spawn(self._refund_later(job, key, params, error))
            else:
                log.error("job %s: refund failed: %s", job.id, failure, exc_info=failure)
            return
        await self._refunded(job, key, params, error, refund)

    async def _refund_later(self, job: Job, key: str, params: dict[str, Any], error: str) -> None:
        """Keep trying a refund until the database takes it (or the service closes: the
        start-up recovery then refunds the job)."""
        try:
            refund = await self._persist(
                f"job {job.id}: refunding (background)",
                functools.partial(self.images.fail_and_refund, job.id, error[:500]),
                budget=float("inf"),
            )
        except asyncio.CancelledError:
            raise
        except Exception as failure:
            log.error("job %s: refund failed: %s", job.id, failure, exc_info=failure)
            return
        await self._refunded(job, key, params, error, refund)

    async def _refunded(
        self, job: Job, key: str, params: dict[str, Any], error: str, refund: Refund | None
    ) -> None:
        log.info("job failed image=%s user=%s reason=%s", job.id, job.user_id, error[:200])
        if refund is None:
            return  # ended already (refunded by someone else): nothing more to say
        self._report_owed(refund)
        await self._publish(job.id, "failed", key, refund)
        failure = Failure(key, params, refund.refunded, refund.balance, refund.owed)
        shown = job.shown and hasattr(job.listener, "unsaved")
        await self._notify(job, "unsaved" if shown else "failed", failure)

    @staticmethod
    def _report_owed(refund: Refund) -> None:
        if refund.owed:
            log.error(
                "refund of %d coins to user %s for image %s could not be applied: %s. It is "
                "recorded on the image (metadata.refund_owed); settle it by hand once the "
                "balance allows",
                refund.owed,
                refund.image.user_id,
                refund.image.id,
                refund.image.metadata.get("refund_error", "balance cap"),
            )

    def _release(self, job: Job) -> None:
        if job.released:
            return
        job.released = True
        self._release_slot(job.slot_key or job.user_id)

    def _release_slot(self, key: Hashable) -> None:
        remaining = self._slots.get(key, 0) - 1
        if remaining > 0:
            self._slots[key] = remaining
        else:
            self._slots.pop(key, None)
        self._total_slots = max(0, self._total_slots - 1)

    async def _publish(
        self, job_id: str, outcome: Any, reason: str | None = None, refund: Refund | None = None
    ) -> None:
        """`JobFinished` on the event bus (a no-op without one); never raises."""
        if self.events is None or (refund is None and outcome != "completed"):
            return
        await self.events.publish(
            JobFinished(
                job_id, outcome, reason,
                refund.refunded if refund else 0, refund.owed if refund else 0,
            )
        )  # fmt: skip

    async def _notify(self, job: Job, event: str, *args: Any) -> None:
        """Call the listener (events it lacks are skipped); its failures (Discord being down)
        never break the job."""
        handler = getattr(job.listener, event, None)
        if handler is None:
            return
        try:
            await handler(job, *args)
        except Exception:
            log.exception("listener %s for job %s failed", event, job.id)


def source_prompts(image: Image, *, own: bool) -> tuple[str, ...]:
    """The prompts an image was made from, oldest first: its own earlier ones (an edit's), and
    with `own` its own prompt (or an upload's title) too: what an edit of it shows."""
    earlier = [str(p) for p in image.metadata.get("source_prompts") or () if p]
    mine = image.prompt or image.title
    prompts = [*earlier, mine] if own and mine else earlier
    # The original and the latest few: a long chain of edits stays a short list.
    if len(prompts) > MAX_SOURCE_PROMPTS:
        prompts = [prompts[0], *prompts[-(MAX_SOURCE_PROMPTS - 1) :]]
    return tuple(prompts)


def failure_reason(error: NanobananaError) -> tuple[str, dict[str, Any]]:
    """A model error as a message key and params for the member (never a raw API code)."""
    if isinstance(error, ContentBlocked):
        if error.stage == "output" and error.reason in ("NO_IMAGE", "STOP"):
            return "reason.no_image", {}
        key = f"block.{error.stage}.{error.reason}"
        return (key if has_message(key) else f"block.{error.stage}.unknown"), {}
    if isinstance(error, QuotaExhausted):
        return ("reason.quota_daily" if error.kind == "daily" else "reason.quota_none"), {}
    if isinstance(error, RateLimited):
        return "reason.rate_limited", {}
    if isinstance(error, AuthenticationFailed):
        return "reason.auth", {}
    if isinstance(error, InvalidRequest):
        key = f"reason.request.{error.code}"
        if has_message(key):
            return key, {}
        return "reason.invalid", {"detail": error.user_message}
    if isinstance(error, ProviderUnavailable):
        return "reason.unavailable", {}
    return "reason.unavailable", {}


_FORMATS = {mime: fmt for fmt, mime in imaging.ALLOWED_FORMATS.items()}


def _as_output(data: bytes, mime_type: str, width: int, height: int) -> OutputImage:
    return OutputImage(data, mime_type, width, height)
