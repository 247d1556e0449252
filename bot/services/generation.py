"""Generation jobs: reserve coins, queue, run on a bounded pool of workers, store, refund.

The lifecycle (DESIGN section 4 and 5):
- `reserve` debits the cost from the payer's wallet and creates a PENDING image in one
  transaction, and takes one of the member's job slots (the server's `jobs_per_member`).
  Nothing is queued yet, so the Discord adapter can still
  answer with an ephemeral error if its own step fails (and `cancel` refunds).
- `enqueue` puts the job on a queue served by `max_concurrent` workers: one slot per call to
  the image model.
- A worker marks it PROCESSING and calls the model; a finishing task then stores the image, its
  thumbnail and its inputs, marks it COMPLETED and delivers it, while the worker takes the next
  job. Any failure after the reservation marks it FAILED and refunds in one transaction,
  exactly once (guarded on status in the repository), to the wallet that paid.
- `close` stops intake, lets running jobs finish up to a deadline, and refunds the rest.
- `recover` (start-up) fails and refunds jobs a crash left PENDING/PROCESSING.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot import imaging
from bot.nanobanana import (
    AuthenticationFailed,
    ContentBlocked,
    GeneratedImage,
    InputImage,
    InvalidRequest,
    NanobananaError,
    ProviderUnavailable,
    RateLimited,
)
from bot.services.errors import (
    ImageNotFound,
    InvalidInput,
    NotEnoughCoins,
    QueueFull,
    ShuttingDown,
    TooManyJobs,
)
from bot.services.members import Payer
from storage.errors import InsufficientCoins
from storage.images import ImageRepository, Refund, StoredObject
from storage.models import Image, ImageStatus
from storage.objects import ObjectStore, StorageError, image_key, thumbnail_key

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 256
# Waiting jobs told their new position on every move (and then every tenth).
ANNOUNCE_FIRST = 5


class ImageGenerator(Protocol):
    """What the service needs from the model client (NanobananaClient satisfies it)."""

    model: str

    async def generate(
        self,
        prompt: str,
        images: Sequence[InputImage] = (),
        aspect_ratio: str | None = None,
    ) -> GeneratedImage: ...


@dataclass(frozen=True)
class GenerationRequest:
    """What to make: a prompt, a ratio, and up to three input images to edit or combine."""

    prompt: str
    aspect_ratio: str = "1:1"
    inputs: tuple[InputImage, ...] = ()
    source_image_ids: tuple[str, ...] = ()
    # Where the request came from (channel id, guild id...): kept in the image's metadata.
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """Why a job failed, as a message key and params, plus the refund it got."""

    key: str
    params: dict[str, Any]
    refunded: int
    balance: int | None


@dataclass(frozen=True)
class Result:
    """A finished image: its row, its bytes and the owner's balance after paying."""

    image: Image
    data: bytes
    mime_type: str
    balance: int


class JobListener(Protocol):
    """How a job reports progress (the Discord adapter edits its message from these)."""

    async def queued(self, job: Job, position: int) -> None: ...

    async def started(self, job: Job) -> None: ...

    async def completed(self, job: Job, result: Result) -> None: ...

    async def failed(self, job: Job, failure: Failure) -> None: ...


@dataclass(eq=False)
class Job:
    """One paid generation between reservation and its outcome."""

    image: Image
    request: GenerationRequest
    balance: int
    listener: JobListener | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    # The user's slot is given back exactly once, whichever path ends the job.
    released: bool = False

    @property
    def id(self) -> str:
        return self.image.id

    @property
    def user_id(self) -> str:
        return self.image.user_id


class GenerationService:
    """The queue and workers. Start with `start()`, stop with `close()`."""

    def __init__(
        self,
        *,
        images: ImageRepository,
        store: ObjectStore,
        generator: ImageGenerator,
        max_concurrent: int,
        max_prompt_chars: int,
        queue_size: int = 200,
        supported_ratios: Sequence[str] = (),
        enabled: bool = True,
    ) -> None:
        self.images = images
        self.store = store
        self.generator = generator
        self.max_concurrent = max_concurrent
        self.max_prompt_chars = max_prompt_chars
        self.queue_size = queue_size
        self.supported_ratios = tuple(supported_ratios)
        # False when no API key is configured: refuse before charging anyone.
        self.enabled = enabled
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # Jobs waiting, in order, for positions; running jobs by id.
        self._waiting: OrderedDict[str, Job] = OrderedDict()
        self._running: dict[str, Job] = {}
        self._slots: dict[str, int] = {}  # user id -> reserved + queued + running
        self._workers: list[asyncio.Task[None]] = []
        self._finishers: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()  # set while no job is running
        self._idle.set()
        self._accepting = False

    # Validation --------------------------------------------------------------------------

    def validate_prompt(self, prompt: str) -> str:
        """A stripped, non-empty prompt within the configured length."""
        cleaned = (prompt or "").strip()
        if not cleaned:
            raise InvalidInput("prompt.empty")
        if len(cleaned) > self.max_prompt_chars:
            raise InvalidInput("prompt.too_long", length=len(cleaned), limit=self.max_prompt_chars)
        return cleaned

    def validate_ratio(self, ratio: str) -> str:
        if self.supported_ratios and ratio not in self.supported_ratios:
            raise InvalidInput(
                "aspect.unsupported", ratio=ratio, choices=", ".join(self.supported_ratios)
            )
        return ratio

    def active_jobs(self, user_id: str) -> int:
        """Reserved, queued and running jobs of a user."""
        return self._slots.get(user_id, 0)

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and accept jobs."""
        if self._workers:
            return
        self._accepting = True
        self._workers = [
            asyncio.create_task(self._worker(n), name=f"generation-worker-{n}")
            for n in range(self.max_concurrent)
        ]

    async def recover(self) -> list[Refund]:
        """Fail and refund jobs left PENDING/PROCESSING by a crash (call before `start`)."""
        refunds = []
        for image in await self.images.list_unfinished():
            refund = await self.images.fail_and_refund(image.id, "interrupted by a restart")
            if refund is not None:
                refunds.append(refund)
        if refunds:
            log.warning("start-up: refunded %d interrupted job(s)", len(refunds))
        return refunds

    async def close(self, deadline: float = 30.0) -> None:
        """Stop intake; let running jobs finish within `deadline` s; refund everything else."""
        self._accepting = False
        waiting = list(self._waiting.values())
        self._waiting.clear()
        for job in waiting:
            await self._fail(job, "reason.shutdown", {}, "shutdown before start")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), deadline)
        tasks = [*self._workers, *self._finishers]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    # Submitting --------------------------------------------------------------------------

    async def reserve(
        self, payer: Payer, request: GenerationRequest, listener: JobListener | None = None
    ) -> Job:
        """Check limits, debit the cost from the payer's wallet and create the PENDING image;
        the job is not queued yet (see `enqueue`). Raises a UserFacingError and changes
        nothing on refusal."""
        if not self.enabled:
            raise InvalidInput("gen.not_configured")
        if not self._accepting:
            raise ShuttingDown()
        prompt = self.validate_prompt(request.prompt)
        self.validate_ratio(request.aspect_ratio)
        user_id = payer.user_id
        if self._slots.get(user_id, 0) >= payer.max_jobs:
            raise TooManyJobs(limit=payer.max_jobs)
        # Slots count every reserved, queued and running job of every user.
        if sum(self._slots.values()) >= self.queue_size + self.max_concurrent:
            raise QueueFull()
        # Take the slot before awaiting, so concurrent requests of one user can't all pass.
        self._slots[user_id] = self._slots.get(user_id, 0) + 1
        try:
            image, balance = await self.images.reserve_generation(
                user_id=user_id,
                wallet_id=payer.wallet_id,
                guild_id=payer.guild_id,
                cost=payer.cost,
                prompt=prompt,
                metadata={
                    "aspect_ratio": request.aspect_ratio,
                    "model": self.generator.model,
                    "source_image_ids": list(request.source_image_ids),
                    "inputs": len(request.inputs),
                    **({"context": request.context} if request.context else {}),
                },
            )
        except InsufficientCoins as error:
            self._release_slot(user_id)
            raise NotEnoughCoins(error.balance, error.cost) from None
        except BaseException:
            self._release_slot(user_id)
            raise
        return Job(image=image, request=request, balance=balance, listener=listener)

    async def enqueue(self, job: Job) -> int:
        """Queue a reserved job; returns its 1-based position among waiting jobs."""
        if not self._accepting:
            await self._fail(job, "reason.shutdown", {}, "shutdown before queueing")
            raise ShuttingDown()
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
        answered)."""
        self._waiting.pop(job.id, None)
        try:
            return await self.images.fail_and_refund(job.id, reason)
        finally:
            self._release(job)

    def position(self, job_id: str) -> int | None:
        for index, waiting_id in enumerate(self._waiting, start=1):
            if waiting_id == job_id:
                return index
        return None

    # Inputs from earlier images (Reroll/Edit) -------------------------------------------

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
        """Holds one of the `max_concurrent` API slots while a job calls the model, then hands
        the result to a finishing task (store + deliver) and takes the next job at once: the
        slots bound calls to the image API, not the time spent storing and replying."""
        while True:
            job = await self._queue.get()
            handed_off = False
            try:
                if self._waiting.pop(job.id, None) is None:
                    continue  # cancelled or failed at shutdown while waiting
                await self._announce_positions()
                self._running[job.id] = job
                self._idle.clear()
                generated = await self._generate(job)
                if generated is not None:
                    task = asyncio.create_task(self._finish(job, generated))
                    self._finishers.add(task)
                    task.add_done_callback(self._finishers.discard)
                    handed_off = True
            except asyncio.CancelledError:
                # Shutdown past the deadline: the job can't finish, so refund it now.
                await asyncio.shield(self._fail(job, "reason.shutdown", {}, "shutdown"))
                raise
            except Exception:
                log.exception("generation job %s crashed", job.id)
                await self._fail(job, "reason.internal", {}, "internal error")
            finally:
                if not handed_off:
                    self._done_running(job)
                self._queue.task_done()

    def _done_running(self, job: Job) -> None:
        self._running.pop(job.id, None)
        if not self._running:
            self._idle.set()

    async def _announce_positions(self) -> None:
        """Tell waiting jobs their new position. Only the first few and every tenth are told
        at each move: editing every waiting message on every dequeue floods Discord."""
        for position, waiting in enumerate(list(self._waiting.values()), start=1):
            if position <= ANNOUNCE_FIRST or position % 10 == 0:
                await self._notify(waiting, "queued", position)

    async def _generate(self, job: Job) -> GeneratedImage | None:
        """PROCESSING, then the model call; None when the job ended here (failed, refunded)."""
        job.started_at = time.monotonic()
        try:
            await self.images.update_status(job.id, ImageStatus.PROCESSING)
        except Exception:
            # Failed meanwhile (e.g. shutdown refunded it): nothing left to do.
            log.info("job %s no longer pending; skipped", job.id)
            self._release(job)
            return None
        await self._notify(job, "started")
        try:
            return await self.generator.generate(
                job.request.prompt, job.request.inputs, job.request.aspect_ratio
            )
        except NanobananaError as error:
            key, params = failure_reason(error)
            await self._fail(job, key, params, f"{type(error).__name__}: {error}")
            return None

    async def _finish(self, job: Job, generated: GeneratedImage) -> None:
        """Store and deliver a generated image (outside the API slot)."""
        try:
            try:
                result = await self._store(job, generated)
            except (StorageError, imaging.ImageProblem) as error:
                await self._fail(job, "reason.storage", {}, f"storage: {error}")
                return
            self._release(job)
            log.info(
                "job done image=%s user=%s latency=%.2fs api=%.2fs",
                job.id,
                job.user_id,
                time.monotonic() - job.submitted_at,
                generated.latency,
            )
            await self._notify(job, "completed", result)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(job, "reason.shutdown", {}, "shutdown"))
            raise
        except Exception:
            log.exception("generation job %s crashed while finishing", job.id)
            await self._fail(job, "reason.internal", {}, "internal error")
        finally:
            self._done_running(job)

    async def _store(self, job: Job, generated: GeneratedImage) -> Result:
        """Put the image, its thumbnail and its inputs, then mark COMPLETED; if anything fails
        the objects written so far are deleted, so no object outlives a missing row."""
        # The client already read the size and type from the bytes; the thumbnail decodes the
        # whole image (and raises ImageProblem if it is damaged), so one decode suffices.
        thumb = await asyncio.to_thread(imaging.make_thumbnail, generated.data, THUMBNAIL_SIZE)
        info = await _describe(generated)
        key = image_key(job.user_id, job.request.prompt[:40], info.extension)
        thumb_key = thumbnail_key(key)
        input_keys = [
            f"inputs/{job.user_id}/{job.id}-{n}.{_extension(i.mime_type)}"
            for n, i in enumerate(job.request.inputs)
        ]
        written: list[str] = []
        try:
            await self.store.put(key, generated.data, info.mime_type)
            written.append(key)
            await self.store.put(thumb_key, thumb, "image/webp")
            written.append(thumb_key)
            for input_key, item in zip(input_keys, job.request.inputs, strict=True):
                await self.store.put(input_key, item.data, item.mime_type)
                written.append(input_key)
            image = await self.images.complete(
                job.id,
                StoredObject(
                    key, self.store.public_url(key), thumb_key, self.store.public_url(thumb_key)
                ),
                {
                    "width": info.width,
                    "height": info.height,
                    "size": info.size,
                    "format": info.format,
                    "mime_type": info.mime_type,
                    "model": generated.model,
                    "input_keys": input_keys,
                    "input_mime_types": [i.mime_type for i in job.request.inputs],
                    "api_latency_ms": round(generated.latency * 1000),
                    "attempts": generated.attempts,
                },
            )
        except asyncio.CancelledError:
            # `complete` may still commit on the database thread: keep the objects. If no row
            # points to them, the start-up reconciliation removes them.
            raise
        except BaseException:
            for written_key in written:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.delete(written_key))
            raise
        return Result(image, generated.data, info.mime_type, job.balance)

    async def _fail(self, job: Job, key: str, params: dict[str, Any], error: str) -> None:
        refund = None
        try:
            refund = await self.images.fail_and_refund(job.id, error[:500])
        finally:
            self._release(job)
        log.info("job failed image=%s user=%s reason=%s", job.id, job.user_id, error[:200])
        if refund is not None:
            failure = Failure(key, params, refund.refunded, refund.balance)
            await self._notify(job, "failed", failure)

    def _release(self, job: Job) -> None:
        if job.released:
            return
        job.released = True
        self._release_slot(job.user_id)

    def _release_slot(self, user_id: str) -> None:
        remaining = self._slots.get(user_id, 0) - 1
        if remaining > 0:
            self._slots[user_id] = remaining
        else:
            self._slots.pop(user_id, None)

    async def _notify(self, job: Job, event: str, *args: Any) -> None:
        """Call the listener; its failures (Discord being down) never break the job."""
        if job.listener is None:
            return
        try:
            await getattr(job.listener, event)(job, *args)
        except Exception:
            log.exception("listener %s for job %s failed", event, job.id)


# Block reasons with a sentence of their own; any other is "blocked by the safety filters".
BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "OTHER",
        "IMAGE_OTHER",
    }
)


def failure_reason(error: NanobananaError) -> tuple[str, dict[str, Any]]:
    """A model error as a message key and params for the user (never a bare API code)."""
    if isinstance(error, ContentBlocked):
        if error.reason == "NO_IMAGE":
            return "reason.no_image", {}
        if error.reason in BLOCK_REASONS:
            return f"block.{error.reason}", {}
        return "block.unknown", {}
    if isinstance(error, RateLimited):
        return "reason.rate_limited", {}
    if isinstance(error, AuthenticationFailed):
        return "reason.auth", {}
    if isinstance(error, InvalidRequest):
        return "reason.invalid", {"detail": error.user_message}
    if isinstance(error, ProviderUnavailable):
        return "reason.unavailable", {}
    return "reason.unavailable", {}


_FORMATS = {mime: fmt for fmt, mime in imaging.ALLOWED_FORMATS.items()}


async def _describe(generated: GeneratedImage) -> imaging.ImageInfo:
    """ImageInfo of the model's answer from what the client read; a full inspection only
    for a type we would not accept from a user."""
    fmt = _FORMATS.get(generated.mime_type)
    if fmt is None:
        return await asyncio.to_thread(
            imaging.inspect_image, generated.data, max_bytes=64 * 1024 * 1024
        )
    return imaging.ImageInfo(
        width=generated.width,
        height=generated.height,
        format=fmt,
        mime_type=generated.mime_type,
        size=len(generated.data),
    )


def _extension(mime_type: str) -> str:
    return {"image/jpeg": "jpg", "image/webp": "webp"}.get(mime_type, "png")
