"""GenerationService: image jobs on the job engine, as the adapters and `orders` use them.

It is the image kind (`kind.ImageJobs`) registered on a `JobEngine` (its own, or one shared
with other kinds), plus what only images have: prompts checked as they will be sent, Reroll
and Edit requests made from stored images, and results that are shown before they are stored
(`settled`). Everything about money, queues, slots and leases is the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any

from bot import imaging
from bot.nanobanana import InputImage, nearest_ratio
from bot.services.budgets import BudgetService
from bot.services.catalog import ModelCatalog
from bot.services.errors import ImageNotFound, InvalidInput, JobNotFound, UserFacingError
from bot.services.events import EventBus
from bot.services.generation.kind import ImageJobs, check_grounding
from bot.services.generation.requests import RequestBuilder, clean_prompt
from bot.services.generation.values import GenerationRequest, ImageGenerator, ImageJobView
from bot.services.imagework import ImageWork
from bot.services.jobs import Admission, Job, JobEngine, JobListener
from bot.services.members import Payer
from bot.services.models import ModelService
from bot.services.permissions import Actor, reaches_own
from bot.services.processes import ProcessLease
from storage.errors import ModelRetired
from storage.images import ImageRepository
from storage.jobs import JobStatus, Refund
from storage.models import Image
from storage.objects import ObjectStore
from storage.usage import BudgetExceeded

_UUID_CHARS = frozenset("0123456789abcdef-")


def _is_uuid(text: str) -> bool:
    return len(text) == 36 and set(text) <= _UUID_CHARS


# How long a Reroll or Edit of a result that is shown but still being stored here waits for it
# (after its own answer: nothing waits on Discord's 3 s).
SETTLE_SECONDS = 30.0


class GenerationService:
    """Image jobs. Start with `start()`, stop with `close()` (they start and stop the engine
    when the service made its own)."""

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
        engine: JobEngine | None = None,
        events: EventBus | None = None,
        grounding_cost: int = 0,
    ) -> None:
        self.images = images
        self.store = store
        self.generator = generator
        #: The live catalog (which models exist now); without it, `catalog` stands alone.
        self.models = models
        self._catalog = catalog or ModelCatalog(generator.model, default_cost=cost)
        self.max_prompt_chars = max_prompt_chars
        self.budgets = budgets
        self._owns_engine = engine is None
        self.engine = engine or JobEngine(
            db=images.db,
            store=store,
            max_concurrent=max_concurrent,
            max_jobs_per_user=max_jobs_per_user,
            queue_size=queue_size,
            retry_seconds=retry_seconds,
            enabled=enabled,
            process=process,
            lease_seconds=lease_seconds,
            max_balance=None,
            max_finishers=max_finishers,
            lookahead=lookahead,
            lend_slots=lend_slots,
            events=events,
        )
        self.events = self.engine.events
        self.kind = ImageJobs(
            images=images, store=store, generator=generator, catalog=lambda: self.catalog,
            models=models, budgets=budgets, imagework=imagework, events=self.events,
            grounding_cost=grounding_cost,
        )  # fmt: skip
        self.engine.register(self.kind)
        self.requests = RequestBuilder(store)

    @property
    def catalog(self) -> ModelCatalog:
        """The models members may use now (the live one when the service has `models`)."""
        return self.models.catalog if self.models is not None else self._catalog

    @catalog.setter
    def catalog(self, catalog: ModelCatalog) -> None:
        self._catalog = catalog

    # What the engine knows --------------------------------------------------------------

    @property
    def process(self) -> ProcessLease:
        return self.engine.process

    @property
    def max_concurrent(self) -> int:
        return self.engine.max_concurrent

    @property
    def max_jobs_per_user(self) -> int:
        return self.engine.max_jobs_per_user

    @property
    def accepting(self) -> bool:
        """Whether new jobs are taken (started, and not stopping)."""
        return self.engine.accepting

    @property
    def enabled(self) -> bool:
        return self.engine.enabled

    @property
    def queue_length(self) -> int:
        return self.engine.queue_length

    @property
    def running(self) -> int:
        return self.engine.running

    @property
    def workers_alive(self) -> int:
        return self.engine.workers_alive

    @property
    def worker_count(self) -> int:
        return self.engine.worker_count

    @property
    def worker_restarts(self) -> int:
        return self.engine.worker_restarts

    @property
    def recent_marks(self) -> deque[tuple[str, str, dict[str, float]]]:
        return self.engine.recent_marks

    @property
    def slot_claims(self) -> int:
        return self.engine.slots.claims

    @property
    def slot_handovers(self) -> int:
        return self.engine.slots.handovers

    def active_jobs(self, key: Hashable) -> int:
        return self.engine.active_jobs(key)

    def position(self, job_id: str) -> int | None:
        return self.engine.position(job_id)

    async def wait_idle(self) -> None:
        """Until no job is running or finishing (stored and committed)."""
        await self.engine.wait_idle()

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._owns_engine:
            await self.engine.start()

    async def close(self, deadline: float = 30.0) -> None:
        if self._owns_engine:
            await self.engine.close(deadline)

    async def recover(self) -> list[Refund]:
        """Fail and refund the jobs of processes that died (see JobEngine.recover)."""
        return await self.engine.recover()

    # Checking ----------------------------------------------------------------------------

    def validate_prompt(self, prompt: str) -> str:
        """The prompt as it will be sent (see `requests.clean_prompt`)."""
        return clean_prompt(prompt, self.max_prompt_chars)

    def validate_ratio(self, ratio: str, model: str | None = None) -> str:
        """A ratio the chosen model (the default one if None) accepts."""
        return self.catalog.ratio(self.catalog.profile(model), ratio)

    def check_references(self, count: int, model: str | None = None) -> None:
        """Refuse more reference images than the chosen model (the default one if None)
        takes, from memory (inputs and a character's references alike)."""
        self.catalog.check_images(self.catalog.profile(model), count)

    def ratio_like(
        self, width: int, height: int, image: InputImage | None = None, model: str | None = None
    ) -> str:
        """The chosen model's ratio nearest to a width x height shape (an image edited from
        a message keeps its shape), read from `image` when not declared; "1:1" when
        unknown."""
        if (width <= 0 or height <= 0) and image is not None:
            with contextlib.suppress(imaging.ImageProblem):
                info = imaging.probe_image(image.data)
                width, height = info.width, info.height
        ratios = self.catalog.profile(model).aspect_ratios
        return nearest_ratio(width, height, ratios) or ("1:1" if "1:1" in ratios else ratios[0])

    def reference_limit(self, model: str | None = None) -> int:
        """How many reference images the chosen model (the default one if None) takes."""
        return self.catalog.profile(model).max_reference_images

    def cost_of(
        self, model: str | None = None, size: str | None = None, *, default: int | None = None,
        grounded: bool = False,
    ) -> int:  # fmt: skip
        """What one image costs with this model and size (defaults filled in); `default` is a
        server's own price for what GENERATION_COSTS doesn't price; a grounded one costs
        GROUNDING_COST more and is refused on a model that can't search."""
        profile = self.catalog.profile(model)
        cost = self.catalog.cost(profile.model, self.catalog.size(profile, size), default=default)
        if grounded:
            check_grounding(profile)
            cost += self.kind.grounding_cost
        return cost

    @property
    def grounding_cost(self) -> int:
        """Coins a grounded image costs on top (GROUNDING_COST)."""
        return self.kind.grounding_cost

    # Ordering ----------------------------------------------------------------------------

    def admit(self, key: Hashable, limit: int) -> Admission:
        """One of a member's job slots, in memory (see JobEngine.admit)."""
        return self.engine.admit(key, limit)

    async def reserve(
        self,
        payer: Payer,
        request: GenerationRequest,
        listener: JobListener | None = None,
        *,
        admission: Admission | None = None,
        retry_default: bool = True,
    ) -> Job[GenerationRequest]:
        """Check the request and limits, debit the cost from the payer's wallet and create the
        PENDING job; the job is not queued yet (see `enqueue`). With `admission` (from
        `admit`), the job takes that slot; without, one is taken here. Raises a
        UserFacingError and changes nothing on refusal (the admission's slot is given back).
        A model another process found retired meanwhile is refused free (a request that
        named no model moves to the new default once: `retry_default`)."""
        jobs = await self.reserve_batch(
            payer, request, [listener],
            admissions=[admission] if admission is not None else None,
            retry_default=retry_default,
        )  # fmt: skip
        return jobs[0]

    async def reserve_batch(
        self,
        payer: Payer,
        request: GenerationRequest,
        listeners: Sequence[JobListener | None],
        *,
        admissions: Sequence[Admission] | None = None,
        retry_default: bool = True,
    ) -> list[Job[GenerationRequest]]:
        """`reserve` for a batch: one job per listener, each the same request priced on its
        own, all reserved in one transaction (every image paid for, or none). `admissions`
        (one per listener, from `admit`) are the jobs' slots; without, they are taken here."""
        taken: list[Admission] = list(admissions or ())
        try:
            if not self.engine.enabled:
                raise InvalidInput("gen.not_configured")
            request = replace(request, prompt=self.validate_prompt(request.prompt))
            priced = self.kind.price(payer, request)
            # Taken before awaiting, so concurrent requests of one member can't all pass.
            while len(taken) < len(listeners):
                taken.append(self.engine.admit(payer.slot_key, payer.max_jobs))
        except BaseException:
            for admission in taken:
                admission.release()
            raise
        try:
            jobs = await self.engine.reserve_all(
                self.kind, payer,
                [(priced, listener, admission)
                 for listener, admission in zip(listeners, taken, strict=True)],
                budget_refusal=self._budget_refusal,
            )  # fmt: skip
        except ModelRetired as error:
            # Another process found the model gone since this one last looked: nothing was
            # charged. Learn it; a member who named no model gets the new default.
            if self.models is not None:
                await self.models.reload()
            default = self.catalog.default_model
            if priced.request.follows_default and retry_default and default not in (
                None, error.model,
            ):  # fmt: skip
                return await self.reserve_batch(
                    payer, replace(request, model=None), listeners, retry_default=False
                )
            raise InvalidInput(
                "model.retired", model=self.catalog.lineup.profile(error.model).name[:80]
            ) from None
        for job in jobs:
            if job.notices and self.budgets is not None:
                self.engine.spawn(self.budgets.announce(job.notices))
        return jobs

    async def _budget_refusal(self, error: BudgetExceeded) -> UserFacingError:
        assert self.budgets is not None
        self.engine.spawn(self.budgets.exhausted(error))
        return self.budgets.refusal(error)

    async def enqueue(self, job: Job[Any]) -> int:
        """Queue a reserved job; returns its 1-based position among waiting jobs."""
        return await self.engine.enqueue(job)

    async def submit(
        self, payer: Payer, request: GenerationRequest, listener: JobListener | None = None
    ) -> Job[GenerationRequest]:
        """`reserve` then `enqueue`."""
        job = await self.reserve(payer, request, listener)
        await self.enqueue(job)
        return job

    async def cancel(self, job: Job[Any], reason: str = "cancelled") -> Refund | None:
        """Refund a reserved job that will not run (see JobEngine.cancel)."""
        return await self.engine.cancel(job, reason)

    async def job_of(self, actor: Actor, job_id: str) -> ImageJobView:
        """One of the actor's own image jobs (personal access: see
        PermissionService.reaches_own), with the images it made that still exist; JobNotFound
        for anyone else's, or for a job that never was."""
        ref = job_id.strip().lower()
        row = await self.engine.jobs.get(ref) if _is_uuid(ref) else None
        if row is None or row.kind != self.kind.name:
            raise JobNotFound()
        if not reaches_own(actor, row.user_id, row.guild_id):
            raise JobNotFound()
        images: list[Image] = []
        for image_id in row.result.get("image_ids") or ():
            image = await self.images.get(str(image_id))
            if image is not None and image.is_ready:  # deleted since: left out
                images.append(image)
        reason = None
        if row.status is JobStatus.FAILED:
            key, params = row.result.get("key"), row.result.get("params")
            reason = (str(key), dict(params) if isinstance(params, dict) else {}) if key else None
        position = self.engine.position(row.id)
        starts_in = self.engine.estimate(row.id) if position is not None else None
        return ImageJobView(row, position, tuple(images), reason, starts_in)

    # Requests from earlier images (Reroll/Edit) -----------------------------------------

    def shown(self, image_id: str) -> Image | None:
        """The image of a result this process has shown and is still storing (as shown:
        PROCESSING), so that its buttons work at once; None otherwise."""
        settling = self.kind.settling.get(image_id)
        return settling.image if settling is not None else None

    async def settled(self, image: Image) -> Image:
        """`image` as stored: a result is shown before it is stored, so a Reroll, Edit or
        Delete pressed at once waits (at most SETTLE_SECONDS) for its job to end here, then
        reads it back (the stored image, or ImageNotFound if it couldn't be kept)."""
        settling = self.kind.settling.get(image.id)
        if settling is None and image.is_ready:
            return image
        if settling is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_SECONDS):
                    await settling.event.wait()
        stored = await self.images.get(image.id)
        if stored is None:
            raise ImageNotFound()
        return stored

    async def reroll_request(
        self, image: Image, context: dict[str, Any] | None = None
    ) -> GenerationRequest:
        """The same job again: prompt, model, ratio, size, inputs and earlier turn. A further
        image of an answer rerolls its job."""
        image = await self.settled(image)
        primary = None
        extra_of = image.metadata.get("extra_of")
        if extra_of:
            primary = await self.images.get(str(extra_of))
            if primary is None:
                raise ImageNotFound()
        return await self.requests.reroll(image, self.catalog, primary, context)

    async def variation_request(
        self, image: Image, context: dict[str, Any] | None = None
    ) -> GenerationRequest:
        """A new job that makes a variation of `image` (see RequestBuilder.variation)."""
        image = await self.settled(image)
        primary = None
        extra_of = image.metadata.get("extra_of")
        if extra_of:
            primary = await self.images.get(str(extra_of))
            if primary is None:
                raise ImageNotFound()
        return await self.requests.variation(image, self.catalog, primary, context)

    async def edit_request(
        self, image: Image, instruction: str, context: dict[str, Any] | None = None
    ) -> GenerationRequest:
        """A new job that edits `image` with `instruction` (see RequestBuilder.edit)."""
        prompt = self.validate_prompt(instruction)
        image = await self.settled(image)
        return await self.requests.edit(image, prompt, self.catalog, context)
