"""Image jobs: the kind of paid job `/generate`, Reroll, Edit and the API's generate order.

What the engine leaves to this kind:
- `price`: the request checked against the chosen model (ratio, size, reference images, the
  server's blocklist) and priced (GENERATION_COSTS, else the server's price), with its budget
  claim;
- `run`: the model call, inside the deployment's API slots. A model retired before the call
  (here or in another process) or answering 404 during it moves the job to the new default
  when the member named none and it costs the same, else ends it refunded; a setting the API
  refuses is remembered for the model;
- `finish`: delivery first (the checked answer goes to the listener at once), then the
  thumbnails (in the image pool), the objects, and one transaction that writes the image rows
  and completes the job. A failure after delivery: the member keeps the image they were shown;
  the job ends FAILED and refunded with no object left behind (the listener's `unsaved`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot import imaging
from bot.nanobanana import (
    GeneratedImage,
    InvalidRequest,
    ModelNotFound,
    ModelProfile,
    NanobananaError,
    OutputImage,
    ProviderUnavailable,
)
from bot.services import turns
from bot.services.budgets import BudgetService
from bot.services.catalog import ModelCatalog
from bot.services.errors import InvalidInput
from bot.services.events import EventBus, ImageCreated
from bot.services.generation.reasons import failure_reason
from bot.services.generation.values import (
    ExtraImage,
    GenerationRequest,
    ImageGenerator,
    Result,
)
from bot.services.imagework import ImageWork
from bot.services.jobs import Job, JobEngine, Priced
from bot.services.members import Payer
from bot.services.models import ModelService
from storage.errors import DatabaseError, InvalidTransition, NotFound, ObjectsReclaimed
from storage.images import ImageRepository, StoredObject
from storage.models import Image, ImageStatus, ImageType
from storage.objects import ObjectStore, StorageError, image_key, thumbnail_key

log = logging.getLogger(__name__)

KIND = "image"
THUMBNAIL_SIZE = 256
_FORMATS = {mime: fmt for fmt, mime in imaging.ALLOWED_FORMATS.items()}


@dataclass(frozen=True)
class StorePlan:
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


@dataclass(frozen=True)
class Answer:
    """What `run` hands to `finish`: the model's checked answer and where it will be stored."""

    generated: GeneratedImage
    plan: StorePlan


class ImageJobs:
    """The image kind of paid job (JobKind[GenerationRequest])."""

    name = KIND

    def __init__(
        self,
        *,
        images: ImageRepository,
        store: ObjectStore,
        generator: ImageGenerator,
        catalog: Callable[[], ModelCatalog],
        models: ModelService | None = None,
        budgets: BudgetService | None = None,
        imagework: ImageWork | None = None,
        events: EventBus | None = None,
        grounding_cost: int = 0,
    ) -> None:
        self.images = images
        #: Coins a grounded image costs on top of its price (GROUNDING_COST).
        self.grounding_cost = grounding_cost
        self.store = store
        self.generator = generator
        self._catalog = catalog
        self.models = models
        self.budgets = budgets
        #: Where thumbnails are made (a bounded process pool); threads when None.
        self.imagework = imagework
        #: `ImageCreated` for every stored result (the moderation log).
        self.events = events or EventBus()
        # Results being shown before they are stored (delivery first), by job id: the image
        # as shown (its buttons work at once) and an event set when its job ends, stored or
        # failed (see GenerationService.settled).
        self.settling: dict[str, Settling] = {}

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog()

    # Pricing -----------------------------------------------------------------------------

    def price(self, payer: Payer, request: GenerationRequest) -> Priced[GenerationRequest]:
        """The request checked against its model (in memory) and priced for `payer`."""
        catalog = self.catalog
        profile = catalog.profile(request.model)
        ratio = catalog.ratio(profile, request.aspect_ratio)
        size = catalog.size(profile, request.image_size)
        earlier = sum(1 for turn in request.history for p in turn.parts if p.image is not None)
        catalog.check_images(profile, len(request.inputs) + earlier)
        if request.grounded:
            check_grounding(profile)
        cost = catalog.cost(profile.model, size, default=payer.cost)
        cost += self.grounding_cost if request.grounded else 0
        # The server's blocklist, before any charge; the message never repeats the entry.
        payer.content.check(request.prompt)
        request = replace(
            request, aspect_ratio=ratio, model=profile.model, image_size=size,
            follows_default=request.model is None and catalog.auto,
            daily_image_cap=payer.caps.daily_images if payer.guild_id is not None else None,
        )  # fmt: skip
        claim = None
        if self.budgets is not None:
            claim = self.budgets.claim(
                payer.guild_id, payer.caps, model=profile.model, size=size,
                prompt_chars=len(request.prompt), input_images=len(request.inputs) + earlier,
                grounded=request.grounded,
            )  # fmt: skip
        record: dict[str, Any] = {
            "prompt": request.prompt,
            "aspect_ratio": ratio,
            "model": profile.model,
            **({"image_size": size} if size else {}),
            "source_image_ids": list(request.source_image_ids),
            **({"source_prompts": list(request.source_prompts)} if request.source_prompts else {}),
            "inputs": len(request.inputs),
            **({"grounded": True} if request.grounded else {}),
            **({"context": request.context} if request.context else {}),
            **({"variation": True} if request.variation else {}),
        }
        return Priced(request, cost, record, model=profile.model, claim=claim)

    # The model call ----------------------------------------------------------------------

    async def run(
        self, job: Job[GenerationRequest], engine: JobEngine, *, model_retired: bool
    ) -> Answer | None:
        """The model's answer for the job and where it will be stored, or None when the job
        ended here (failed and refunded)."""
        # A model retired since the reservation (here, or by another process: the database
        # said so just now) is never called: the job moves to the new default (same price, no
        # earlier turns) or ends refunded.
        if (
            model_retired
            and self.models is not None
            and not self.catalog.gone(job.request.model or "")
        ):
            await self.models.reload()
        gone = job.request.model
        if gone and self.catalog.gone(gone) and not self._move_to_default(job):
            await self._fail_retired(job, engine, gone)
            return None
        generated: GeneratedImage | None = None
        for _ in range(2):  # the second call only after a 404 moved the job to a new default
            generated, answered_404 = await self._call_model(job, engine)
            if generated is not None or answered_404 is None:
                break
            if self.models is not None:
                await self.models.model_gone(answered_404, "404 NOT_FOUND on generateContent")
            if not self._move_to_default(job):
                await self._fail_retired(job, engine, answered_404)
                return None
        if generated is None:
            return None
        job.marks.update(
            api_sent=generated.sent_at,
            api_answered=generated.answered_at,
            decoded=generated.decoded_at or time.monotonic(),
        )
        if generated.model_status is not None and self.models is not None:
            engine.spawn(self.models.status_noted(job.request.model or "", generated.model_status))
        return Answer(generated, self._plan(job, generated))

    async def _call_model(
        self, job: Job[GenerationRequest], engine: JobEngine
    ) -> tuple[GeneratedImage | None, str | None]:
        """One model call for the job (the client retries what is worth retrying): the
        answer, or (None, None) when the job ended here (failed and refunded), or (None,
        model) when the model answered 404 (the job is still open)."""
        request = job.request
        catalog = self.catalog
        profile = catalog.profile(request.model) if request.model in catalog.profiles else None
        api_slot = engine.api_slot(job)
        try:
            generated = await self.generator.generate(
                request.sent_prompt,
                request.inputs,
                request.aspect_ratio,
                image_size=request.image_size,
                model=request.model,
                history=request.history,
                slot=api_slot,
                thinking_level=catalog.thinking_level(profile) if profile else None,
                profile=profile,
                grounded=request.grounded,
            )
            return generated, None
        except ModelNotFound as error:
            return None, error.model or request.model or self.generator.model
        except NanobananaError as error:
            if isinstance(error, InvalidRequest) and error.status is not None and profile:
                await self._note_refusal(profile, error, request)
            key, params = failure_reason(error)
            await engine.fail(
                job, key, params, f"{type(error).__name__}: {error}",
                maybe_billed=isinstance(error, ProviderUnavailable) and error.maybe_billed,
            )  # fmt: skip
            return None, None
        finally:
            api_slot.give_back()

    async def _note_refusal(
        self, profile: ModelProfile, error: InvalidRequest, request: GenerationRequest
    ) -> None:
        """The API refused a setting of the request: remember it for the model."""
        if self.models is None:
            return
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

    def _move_to_default(self, job: Job[GenerationRequest]) -> bool:
        """Point a job whose model is gone at the catalog's default, when the member named
        no model, it carries no earlier turns (their signatures belong to the old model),
        the new model takes its ratio and images, and it costs the same. Whether it moved."""
        request = job.request
        catalog = self.catalog
        if not request.follows_default or request.history or not catalog.usable:
            return False
        profile = catalog.default
        if request.grounded and not profile.grounding:
            return False
        if profile.model == request.model or request.aspect_ratio not in profile.aspect_ratios:
            return False
        # The nearest the new model makes: the same size where it has it, else its default.
        size = request.image_size if request.image_size in profile.image_sizes else None
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

    async def _fail_retired(
        self, job: Job[GenerationRequest], engine: JobEngine, model: str
    ) -> None:
        name = self.catalog.lineup.profile(model).name
        await engine.fail(job, "reason.model_retired", {"model": name}, f"model {model} retired")

    def _plan(self, job: Job[GenerationRequest], generated: GeneratedImage) -> StorePlan:
        """The object keys of everything the job will store."""
        images = generated.images or (
            OutputImage(generated.data, generated.mime_type, generated.width, generated.height),
        )
        request = job.request
        slug = request.prompt[:40]
        keys = [image_key(job.user_id, slug, turns.extension(i.mime_type)) for i in images]
        input_keys = [
            f"inputs/{job.user_id}/{job.id}-{n}.{turns.extension(i.mime_type)}"
            for n, i in enumerate(request.inputs)
        ]
        history_objects, history = turns.history_to_store(request.history, job.user_id, job.id)
        return StorePlan(
            tuple(images), keys, [thumbnail_key(key) for key in keys], input_keys,
            history_objects, history,
        )  # fmt: skip

    # Finishing ---------------------------------------------------------------------------

    async def finish(self, job: Job[GenerationRequest], answer: Answer, engine: JobEngine) -> None:
        """Deliver a checked answer at once and store it meanwhile (outside the slot); what
        the call cost the host is recorded alongside."""
        generated = answer.generated
        delivery: asyncio.Task[None] | None = None
        billing: asyncio.Task[None] | None = None
        self.settling[job.id] = Settling(pending_image(job))
        try:
            plan = await self._within_daily_cap(job, answer.plan, engine)
            billing = asyncio.create_task(self._bill(job, generated, engine, kept=len(plan.images)))
            images = plan.images
            extra_ids = [str(uuid.uuid4()) for _ in images[1:]]
            # The member's part is done once they see it: their job slot is free for the next
            # one while this is stored (memory stays bounded by the finishers).
            engine.release(job)
            delivery = asyncio.create_task(
                self._deliver(
                    job, self.preview(job, images, extra_ids, answer_metadata(generated)), engine
                )
            )
            try:
                result = await self._store(job, generated, plan, extra_ids, engine)
            except (InvalidTransition, NotFound):
                log.info("job %s ended before its image was stored; dropped", job.id)
                return
            except (ObjectsReclaimed, StorageError, DatabaseError) as error:
                # Storing failed for good (or this process's lease lapsed and another process
                # took the objects back): the member keeps what they were shown; refunded.
                await asyncio.shield(delivery)
                await engine.fail(job, "reason.storage", {}, f"storage: {error}")
                return
            # Stored: a Reroll or Edit waiting for it goes on (not after the events below).
            self._settle(job.id)
            await engine.completed(job)  # committed: it counts from now
            await asyncio.shield(delivery)
            log.info(
                "job done image=%s user=%s images=%d latency=%.2fs api=%.2fs",
                job.id,
                job.user_id,
                1 + len(result.extras),
                time.monotonic() - job.submitted_at,
                generated.latency,
            )
            await engine.notify(job, "completed", result)
            await self.events.publish(ImageCreated(result.image))
        finally:
            self._settle(job.id)
            if billing is not None:
                await asyncio.shield(billing)  # never raises

    def _settle(self, job_id: str) -> None:
        """The job's image is stored or failed: whoever waits for it goes on."""
        ended = self.settling.pop(job_id, None)
        if ended is not None:
            ended.event.set()

    async def _within_daily_cap(
        self, job: Job[GenerationRequest], plan: StorePlan, engine: JobEngine
    ) -> StorePlan:
        """The plan without the further images of the answer that its server's daily image
        cap has no room for (they are neither shown nor stored). If that can't be counted
        now, only the job's own image (counted at its reservation) is kept. Never raises."""
        images = len(plan.images)
        cap = job.request.daily_image_cap
        if self.budgets is None or cap is None or images <= 1:
            return plan
        try:
            kept = await engine.persist(
                f"job {job.id}: counting its images",
                functools.partial(self.budgets.keep_images, job.id, images, cap),
                budget=min(engine.retry_seconds, 10.0),
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

    async def _bill(
        self, job: Job[GenerationRequest], generated: GeneratedImage, engine: JobEngine,
        *, kept: int,
    ) -> None:  # fmt: skip
        """Record what the answer cost the host (from its usageMetadata) and the images it
        keeps, whatever happens to the job next: Google bills the call either way. Never
        fails the job."""
        if self.budgets is None:
            return
        request = job.request
        images = max(1, len(generated.images))
        try:
            await engine.persist(
                f"job {job.id}: recording its cost",
                functools.partial(
                    self.budgets.bill, job.id, request.model or self.generator.model,
                    request.image_size, generated.usage, images, kept=min(kept, images),
                    searches=generated.grounding.billed_queries if generated.grounding else 0,
                ),
                budget=min(engine.retry_seconds, 10.0),
            )  # fmt: skip
        except Exception as error:
            # The reservation's estimate still counts against the budgets.
            log.error("job %s: cost not recorded (%s); its estimate stands", job.id, error)

    async def _deliver(
        self, job: Job[GenerationRequest], preview: Result, engine: JobEngine
    ) -> None:
        """Hand the checked answer to the listener (the member sees it now)."""
        job.marks["delivering"] = time.monotonic()
        job.shown = True
        await engine.notify(job, "ready", preview)
        job.marks["delivered"] = time.monotonic()

    def preview(
        self,
        job: Job[GenerationRequest],
        images: Sequence[OutputImage],
        extra_ids: list[str],
        said: dict[str, Any] | None = None,
    ) -> Result:
        """The result as the member sees it before it is stored: the row the job will write
        (its id, prompt, ratio, model and cost are known since the reservation), what the
        model said beside it (`said`: see `answer_metadata`) and the ids its further images
        will get."""
        first = pending_image(job)
        if said:
            first = first.model_copy(update={"metadata": {**first.metadata, **said}})
        extras = tuple(
            ExtraImage(first.model_copy(update={"id": extra_id, "coins_used": 0}),
                       images[n].data, images[n].mime_type)
            for n, extra_id in enumerate(extra_ids, start=1)
        )  # fmt: skip
        return Result(first, images[0].data, images[0].mime_type, job.balance, extras)

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
        self,
        job: Job[GenerationRequest],
        generated: GeneratedImage,
        plan: StorePlan,
        extra_ids: Sequence[str],
        engine: JobEngine,
    ) -> Result:
        """Put every image of the answer (while their thumbnails are made in the image pool),
        the thumbnails, the inputs and earlier turns' images, then write the image rows and
        complete the job in one transaction; each step is retried while storage is
        unavailable. If anything still fails, the objects written so far are deleted, so no
        object outlives a row."""
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
            await engine.persist(
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
            recorded = await engine.record_intents(job, plan.all_keys)
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
                **job_metadata(job),
                **answer_metadata(generated),
                **({"history": history} if history else {}),
                # What an Edit sends back to keep its context (answers with signatures only).
                **({"turn": turn} if turn else {}),
            }
            extras_meta = [
                (self._stored(keys[n], thumb_keys[n]), {**describe(n), "index": n})
                for n in range(1, len(images))
            ]
            image, extra_rows = await engine.persist(
                f"job {job.id}: recording the result",
                functools.partial(
                    self.images.complete_with_extras,
                    job.id,
                    self._stored(keys[0], thumb_keys[0]),
                    metadata,
                    extras_meta,
                    owner=engine.process.id,
                    intents=plan.all_keys if recorded else (),
                    extra_ids=extra_ids,
                ),
            )
            job.marks["committed"] = time.monotonic()
        except asyncio.CancelledError:
            # The completion may still commit on the database thread: keep the objects. If no
            # row points to them, the start-up reconciliation removes them.
            thumbnailing.cancel()
            raise
        except BaseException:
            thumbnailing.cancel()
            for written_key in written:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.delete(written_key))
            if recorded:
                with contextlib.suppress(Exception):
                    await engine.leases.forget_intents(engine.process.id, plan.all_keys)
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


#: The most of a model's text kept with its image (members see it trimmed to Discord's limits).
MAX_ANSWER_TEXT = 3000


def answer_metadata(generated: GeneratedImage) -> dict[str, Any]:
    """What the model said beside its image, kept with it: its text (thought parts never
    reach here), cut to MAX_ANSWER_TEXT, and a grounded answer's sources and queries."""
    text = (generated.text or "").strip()
    said: dict[str, Any] = {"text": text[:MAX_ANSWER_TEXT]} if text else {}
    grounding = generated.grounding
    if grounding is not None:
        said["sources"] = [{"title": s.title, "uri": s.uri} for s in grounding.sources]
        said["search_queries"] = list(grounding.queries)
    return said


def check_grounding(profile: ModelProfile) -> None:
    """Refuse grounding on a model that can't search (Google answers such a request 400)."""
    if not profile.grounding:
        raise InvalidInput("grounding.unsupported", model=profile.name)


def job_metadata(job: Job[GenerationRequest]) -> dict[str, Any]:
    """What the image rows keep of the job's request (beside what the answer was)."""
    request = job.request
    return {
        "source_image_ids": list(request.source_image_ids),
        **({"source_prompts": list(request.source_prompts)} if request.source_prompts else {}),
        "inputs": len(request.inputs),
        **({"grounded": True} if request.grounded else {}),
        **({"context": request.context} if request.context else {}),
        **({"variation": True} if request.variation else {}),
    }


@dataclass(eq=False)
class Settling:
    """A result shown and not stored yet: the image as shown, and an event set once its job
    ends (stored, or failed and refunded)."""

    image: Image
    event: asyncio.Event = field(default_factory=asyncio.Event)


def pending_image(job: Job[GenerationRequest]) -> Image:
    """The image row a job will write, as it can be shown before it is stored."""
    request = job.request
    now = job.row.created_at
    assert now is not None
    return Image(
        id=job.id,
        user_id=job.user_id,
        type=ImageType.GENERATED,
        status=ImageStatus.PROCESSING,
        guild_id=job.guild_id,
        wallet_id=job.row.wallet_id,
        prompt=request.prompt,
        metadata={
            "aspect_ratio": request.aspect_ratio,
            "model": request.model,
            **({"image_size": request.image_size} if request.image_size else {}),
            **job_metadata(job),
        },
        coins_used=job.cost,
        created_at=now,
        updated_at=now,
    )
