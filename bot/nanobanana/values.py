"""The values that go in and out of the client: images, earlier turns, and answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.nanobanana.wire import ModelStatus


@dataclass(frozen=True)
class InputImage:
    """An image to send along with the prompt (to edit or to draw from).

    `mime_type` is a hint only: the format is sniffed from the bytes.
    """

    data: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class ModelPart:
    """One non-thought part of an earlier answer, sent back as the model's turn of a
    conversation: a text or an image, with the `thoughtSignature` the API gave it."""

    text: str | None = None
    image: InputImage | None = None
    thought_signature: str | None = None


@dataclass(frozen=True)
class Turn:
    """An earlier exchange: the prompt a member sent and what the model answered.

    Sent before the new prompt so that a thinking model (Nano Banana Pro, Nano Banana 2)
    keeps its context across edits (Google's multi-turn image editing).
    """

    prompt: str
    parts: tuple[ModelPart, ...]


@dataclass(frozen=True)
class OutputImage:
    """One image of an answer; size and type are read from the bytes themselves."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    thought_signature: str | None = None


@dataclass(frozen=True)
class AnswerPart:
    """A non-thought part of an answer, in order: a text, or an image by its index in
    `GeneratedImage.images`; with its `thoughtSignature` (to send back in a later turn)."""

    text: str | None = None
    image_index: int | None = None
    thought_signature: str | None = None


@dataclass(frozen=True)
class Source:
    """A web page an answer was grounded in (`groundingMetadata.groundingChunks[].web`)."""

    title: str
    uri: str


@dataclass(frozen=True)
class Grounding:
    """What Google Search grounding used for an answer (`candidates[0].groundingMetadata`):
    the pages (`groundingChunks`) and the search queries it ran (`webSearchQueries`; Gemini 3
    models are billed per query, empty ones not counted)."""

    sources: tuple[Source, ...] = ()
    queries: tuple[str, ...] = ()

    @property
    def billed_queries(self) -> int:
        """The queries Google bills: the unique non-empty ones."""
        return len({q.strip() for q in self.queries if q.strip()})


@dataclass(frozen=True)
class GeneratedImage:
    """An answer with at least one image. `data`/`mime_type`/`width`/`height` describe the
    first image (the result); `images` holds every image, the first included, so none is
    dropped; `parts` is the answer as a turn to send back later."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    model: str
    text: str | None
    usage: dict[str, int]
    attempts: int
    latency: float
    images: tuple[OutputImage, ...] = ()
    parts: tuple[AnswerPart, ...] = ()
    finish_reason: str | None = None
    #: What the API said of the model's life in this answer (a deprecation notice), if any.
    model_status: ModelStatus | None = None
    #: The sources and queries of a grounded answer (None when not grounded).
    grounding: Grounding | None = None
    # time.monotonic() stamps of the attempt that answered: request sent (an API slot held),
    # answer read (slot given back), answer decoded and checked. For logs and benchmarks.
    sent_at: float = 0.0
    answered_at: float = 0.0
    decoded_at: float = 0.0

    @property
    def extras(self) -> tuple[OutputImage, ...]:
        """Every image after the first."""
        return self.images[1:]

    @property
    def thought_signatures(self) -> tuple[str, ...]:
        return tuple(p.thought_signature for p in self.parts if p.thought_signature)


@dataclass(frozen=True)
class TextAnswer:
    """A text model's answer (a caption): its text, the model that answered, what Google
    bills (usageMetadata's counts) and how the call went."""

    text: str
    model: str
    usage: dict[str, int]
    finish_reason: str | None = None
    attempts: int = 0
    latency: float = 0.0
