"""The values of an image job: what to make, and what it made."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.nanobanana import GeneratedImage, InputImage, ModelProfile, Turn
from storage.jobs import JobRow
from storage.models import Image

#: An image to edit or draw from, as adapters hand it over (bytes and their MIME type).
SourceImage = InputImage

#: What a variation asks of the model beside the image's own prompt (sent in English, like
#: every instruction to the model; the image to vary is the last one attached).
VARIATION_DIRECTIVE = (
    "Make a new variation of the last attached image: keep its subject, style, palette and "
    "composition, and vary the details, as another take on the same prompt."
)


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
        grounded: bool = False,
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
    # The server's daily image cap when the job was ordered (None: none): further images of
    # the answer beyond it are dropped, not stored (BudgetService.keep_images).
    daily_image_cap: int | None = None
    #: A variation of its last input image (the Variations button): the model is asked for
    #: one beside the prompt, which stays the member's own.
    variation: bool = False
    #: Grounded in Google Search (models whose profile says so; GROUNDING_COST coins more).
    grounded: bool = False

    @property
    def sent_prompt(self) -> str:
        """The prompt as the model gets it: a variation says what to do with the image."""
        return f"{self.prompt}\n\n{VARIATION_DIRECTIVE}" if self.variation else self.prompt


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


@dataclass(frozen=True)
class ImageJobView:
    """An image job as its member follows it (the API's job resource): the job as stored,
    where it waits (None: not waiting here), the images it made that still exist, and why
    it failed (a message key and its params, as the member was told), and when it should
    start."""

    job: JobRow
    position: int | None
    images: tuple[Image, ...] = ()
    reason: tuple[str, dict[str, Any]] | None = None
    #: Seconds from now until a waiting job should start (from the queue and the API's
    #: recent latency); None when it is not waiting here or nothing was measured yet.
    starts_in: float | None = None
