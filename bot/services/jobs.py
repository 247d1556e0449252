"""The values of a generation job: what to make, the job itself, and how it ends."""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.logcontext import log_context
from bot.nanobanana import GeneratedImage, InputImage, ModelProfile, Turn
from storage.models import Image

#: An image to edit or draw from, as adapters hand it over (bytes and their MIME type).
SourceImage = InputImage


class ImageGenerator(Protocol):
    """What the service needs from the model client (NanobananaClient satisfies it)."""

    model: str

    async def generate(
        self,
        prompt: str,
        images: Sequence[InputImage] = (),
        aspect_ratio: str | None = None,
        *,
        image_size: str | None = None,
        model: str | None = None,
        history: Sequence[Turn] = (),
        slot: AbstractAsyncContextManager[Any] | None = None,
        thinking_level: str | None = None,
        profile: ModelProfile | None = None,
    ) -> GeneratedImage: ...


@dataclass(frozen=True)
class GenerationRequest:
    """What to make: a prompt, a ratio, input images to edit or combine, and optionally the
    model, the size, and an earlier turn to continue (multi-turn editing)."""

    prompt: str
    aspect_ratio: str = "1:1"
    inputs: tuple[InputImage, ...] = ()
    source_image_ids: tuple[str, ...] = ()
    # Where the request came from (channel id, guild id...): kept in the image's metadata.
    context: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    image_size: str | None = None
    history: tuple[Turn, ...] = ()
    #: The member named no model and the owner lets the bot choose (NANOBANANA_MODEL=auto):
    #: if the model is retired before the job calls it, the job may move to the new default.
    follows_default: bool = False
    # An edit's earlier prompts, oldest first (the original, then each edit before this one):
    # its result shows them with its own instruction.
    source_prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failure:
    """Why a job failed, as a message key and params, plus the refund it got (or is owed)."""

    key: str
    params: dict[str, Any]
    refunded: int
    balance: int | None
    owed: int = 0


@dataclass(frozen=True)
class ExtraImage:
    """A further image of the same answer, stored as a row of its own."""

    image: Image
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class Result:
    """A finished image: its row, its bytes and the owner's balance after paying; `extras`
    holds any further images of the same answer."""

    image: Image
    data: bytes
    mime_type: str
    balance: int
    extras: tuple[ExtraImage, ...] = ()


class JobListener(Protocol):
    """How a job reports progress (the Discord adapter edits its message from these).

    `completed` comes once the job is COMPLETED in the database. A listener may also have:
    - `ready(job, result)`: the answer's bytes are checked and good, before anything is
      stored (the rows in `result` are not yet COMPLETED): deliver now, store meanwhile;
    - `unsaved(job, failure)`: after `ready`, storing failed for good: the job ended FAILED
      and refunded, but the member already has the image they were shown.
    A listener without `unsaved` gets `failed` instead."""

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
    # The member was shown the answer (the listener's `ready`): a later failure is `unsaved`.
    shown: bool = False
    # What the member's jobs are counted by (their Discord id, else their user id).
    slot_key: Hashable = ""
    # The model answered 404 NOT_FOUND (set by the worker while it decides what to do).
    retired_model: str | None = None
    # The server's daily image cap when the job was reserved (None: none): further images
    # of the answer beyond it are dropped, not stored (BudgetService.keep_images).
    daily_image_cap: int | None = None
    # time.monotonic() when each step ended (queued, started, api_sent, api_answered,
    # decoded, delivering, delivered, thumbnails, stored, committed): logs and benchmarks.
    marks: dict[str, float] = field(default_factory=dict)
    # The log ids of where it was asked (the interaction), carried into its worker's lines.
    log_ids: Mapping[str, str] = field(default_factory=log_context)

    @property
    def id(self) -> str:
        return self.image.id

    @property
    def user_id(self) -> str:
        return self.image.user_id

    @property
    def cost(self) -> int:
        return self.image.coins_used


def recorded_refund(image: Image) -> tuple[int, int]:
    """(refunded, owed) for a FAILED job, from its row: a failed paid job was refunded its
    cost exactly once (ImageRepository.fail_and_refund) unless the refund could not be applied
    (`metadata.refund_owed`); a job no wallet paid for was free."""
    if image.wallet_id is None or not image.coins_used:
        return 0, 0
    owed = image.metadata.get("refund_owed")
    if isinstance(owed, int) and owed > 0:
        return 0, owed
    return image.coins_used, 0
