"""Captions (`/describe`): a paid job of its own kind on the job engine, with no money code of
its own: the engine reserves, charges, refunds exactly once, queues, leases and recovers it as
it does an image job. The kind says what a caption costs (DESCRIBE_COST), asks a text model
about the image (the cheapest current one, see bot/nanobanana/text_models.toml) and keeps the
text as the job's result.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from bot.nanobanana import InputImage, ModelNotFound, NanobananaError, TextAnswer
from bot.services.errors import InvalidInput
from bot.services.generation.reasons import failure_reason
from bot.services.jobs import Admission, Job, JobEngine, JobListener, Priced
from bot.services.members import Payer

log = logging.getLogger(__name__)

KIND = "caption"
#: What a caption may be: a description to read, or a prompt that would make the image again.
Style = Literal["caption", "prompt"]
STYLES: tuple[Style, ...] = ("caption", "prompt")
#: The longest answer asked for (a caption is a few sentences; a prompt at most ~100 words).
MAX_OUTPUT_TOKENS = 400
#: The languages a caption can be written in (the bot's own), by catalogue code.
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


class Describer(Protocol):
    """Asks a text model about one image (NanobananaClient.describe)."""

    async def describe(
        self,
        image: InputImage,
        instruction: str,
        *,
        model: str,
        max_output_tokens: int = ...,
        slot: AbstractAsyncContextManager[Any] | None = None,
    ) -> TextAnswer: ...


@dataclass(frozen=True)
class CaptionRequest:
    """What to describe (the image as the input pipeline shrank it), how, in which language,
    and where it was asked for; `model` is filled in when the job is priced."""

    image: InputImage = field(repr=False)
    style: Style = "caption"
    language: str = "en"
    context: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class Caption:
    """What a caption job made."""

    text: str
    style: Style
    model: str
    cost: int
    balance: int


def instruction_for(style: Style, language: str) -> str:
    """What the text model is asked (English: the model's instructions, not a message)."""
    if style == "prompt":
        return (
            "Write a prompt, in English, that an image generation model could use to make "
            "this image: subject, setting, style, composition, lighting and colours. Answer "
            "with the prompt only, in at most 80 words."
        )
    name = LANGUAGE_NAMES.get(language, "English")
    return (
        f"Write a short caption for this image in {name}: one or two sentences saying what it "
        "shows. Answer with the caption only."
    )


class CaptionJobs:
    """The caption kind of paid job (see bot.services.jobs.JobKind)."""

    name = KIND

    def __init__(
        self, *, describer: Describer, model: Callable[[], str | None], cost: int,
        model_gone: Callable[[str], Any] | None = None,
    ) -> None:  # fmt: skip
        self.describer = describer
        #: The text model to use now (ModelService.caption_model): Google's lineup moves.
        self.model = model
        self.cost = cost
        self.model_gone = model_gone

    def price(self, payer: Payer, request: CaptionRequest) -> Priced[CaptionRequest]:
        """DESCRIBE_COST, with the text model chosen now; refused (free) when there is none."""
        model = self.model()
        if model is None:
            raise InvalidInput("describe.unavailable")
        if request.style not in STYLES:
            raise InvalidInput("describe.bad_style", choices=", ".join(STYLES))
        record = {
            "style": request.style,
            "language": request.language,
            "model": model,
            **({"context": request.context} if request.context else {}),
        }
        return Priced(replace(request, model=model), self.cost, record)

    async def run(
        self, job: Job[CaptionRequest], engine: JobEngine, *, model_retired: bool
    ) -> TextAnswer | None:
        request = job.request
        model = request.model or self.model()
        if model is None:
            await engine.fail(job, "describe.unavailable", {}, "no text model")
            return None
        slot = engine.api_slot(job)
        try:
            return await self.describer.describe(
                request.image, instruction_for(request.style, request.language), model=model,
                max_output_tokens=MAX_OUTPUT_TOKENS, slot=slot,
            )  # fmt: skip
        except ModelNotFound:
            if self.model_gone is not None:
                await self.model_gone(model)
            await engine.fail(job, "describe.unavailable", {}, f"text model {model} gone")
        except NanobananaError as error:
            key, params = failure_reason(error)
            if key == "reason.no_image":
                key = "describe.no_text"
            await engine.fail(job, key, params, f"{type(error).__name__}: {error}")
        finally:
            slot.give_back()
        return None

    async def finish(self, job: Job[CaptionRequest], answer: TextAnswer, engine: JobEngine) -> None:
        """The text is the job's result, written as the job completes; then the member sees
        it. Raising (the database refusing for good) fails the job with its refund."""
        text = answer.text.strip()[:3500]
        result = {"text": text, "model": answer.model, "usage": answer.usage}
        await engine.persist(
            f"job {job.id}: storing its caption",
            functools.partial(engine.jobs.complete, job.id, result),
        )
        engine.release(job)
        await engine.completed(job)
        caption = Caption(text, job.request.style, answer.model, job.cost, job.balance)
        log.info("caption done job=%s user=%s model=%s", job.id, job.user_id, answer.model)
        await engine.notify(job, "completed", caption)


class CaptionService:
    """Captions on a job engine (shared with the image jobs), as `orders` uses them."""

    def __init__(self, engine: JobEngine, kind: CaptionJobs) -> None:
        self.engine = engine
        self.kind = kind
        engine.register(kind)

    @property
    def cost(self) -> int:
        return self.kind.cost

    def check_available(self) -> None:
        """Refuse (free, from memory) when no text model can describe images now."""
        if not self.engine.enabled:
            raise InvalidInput("gen.not_configured")
        if self.kind.model() is None:
            raise InvalidInput("describe.unavailable")

    def admit(self, key: Hashable, limit: int) -> Admission:
        return self.engine.admit(key, limit)

    async def reserve(
        self,
        payer: Payer,
        request: CaptionRequest,
        listener: JobListener | None = None,
        *,
        admission: Admission,
    ) -> Job[CaptionRequest]:
        """Price the caption and reserve it (see JobEngine.reserve); nothing is charged on
        refusal and the admission's slot goes back."""
        try:
            priced = self.kind.price(payer, request)
        except BaseException:
            admission.release()
            raise
        return await self.engine.reserve(self.kind, payer, priced, listener, admission)

    async def enqueue(self, job: Job[Any]) -> int:
        return await self.engine.enqueue(job)
