"""What each supported Nano Banana model accepts: one table, used to validate and to build.

The service checks a `/generate` against the chosen model's profile before any coin moves, and
the client checks it again before anything goes on the wire, so a request the real API would
refuse (an unknown size, a ratio the model lacks, too many reference images) never costs a
member coins or the owner a paid call. Facts come from Google's model pages (ai.google.dev,
"Nano Banana image generation"; Vertex AI model cards) and the API's own `ImageConfig`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

#: The ten ratios every Nano Banana model accepts.
BASE_ASPECT_RATIOS: Final[tuple[str, ...]] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
#: Nano Banana 2 adds four extreme ratios.
EXTRA_ASPECT_RATIOS: Final[tuple[str, ...]] = ("1:4", "4:1", "1:8", "8:1")

#: Every `imageConfig.imageSize` value the API knows, smallest first ("512" is 512 px).
ALL_IMAGE_SIZES: Final[tuple[str, ...]] = ("512", "1K", "2K", "4K")

#: The whole inline request (prompt, images as base64, JSON) must stay under this.
INLINE_REQUEST_LIMIT: Final = 20 * 1024 * 1024

NANO_BANANA: Final = "gemini-2.5-flash-image"
NANO_BANANA_PRO: Final = "gemini-3-pro-image-preview"
NANO_BANANA_2: Final = "gemini-3.1-flash-image-preview"


@dataclass(frozen=True)
class ModelProfile:
    """What one model accepts and how it answers.

    - `aspect_ratios`: values for `imageConfig.aspectRatio`.
    - `image_sizes`: values for `imageConfig.imageSize`; empty when the model has no size
      setting (sending one is refused); `default_size` is what it makes without one.
    - `max_reference_images`: images one request may carry (inputs plus a previous turn's).
    - `max_request_bytes`: the inline request limit.
    - `output_mime_type`: what its images usually are (the client still reads the real type
      from the bytes).
    - `thinking`: answers carry thought parts and `thoughtSignature`s, and an edit keeps
      context by sending the previous turn back (multi-turn editing).
    """

    model: str
    name: str
    aspect_ratios: tuple[str, ...] = BASE_ASPECT_RATIOS
    image_sizes: tuple[str, ...] = ()
    default_size: str | None = None
    max_reference_images: int = 3
    max_request_bytes: int = INLINE_REQUEST_LIMIT
    output_mime_type: str = "image/png"
    thinking: bool = False
    known: bool = True

    @property
    def has_sizes(self) -> bool:
        return bool(self.image_sizes)

    def label(self) -> str:
        """ "Nano Banana Pro (gemini-3-pro-image-preview)"."""
        return f"{self.name} ({self.model})" if self.name != self.model else self.model


PROFILES: Final[Mapping[str, ModelProfile]] = {
    profile.model: profile
    for profile in (
        ModelProfile(
            model=NANO_BANANA,
            name="Nano Banana",
            max_reference_images=3,
        ),
        ModelProfile(
            model=NANO_BANANA_PRO,
            name="Nano Banana Pro",
            image_sizes=("1K", "2K", "4K"),
            default_size="1K",
            max_reference_images=14,
            output_mime_type="image/jpeg",
            thinking=True,
        ),
        ModelProfile(
            model=NANO_BANANA_2,
            name="Nano Banana 2",
            aspect_ratios=BASE_ASPECT_RATIOS + EXTRA_ASPECT_RATIOS,
            image_sizes=ALL_IMAGE_SIZES,
            default_size="1K",
            max_reference_images=14,
            output_mime_type="image/jpeg",
            thinking=True,
        ),
    )
}


def profile_for(model: str) -> ModelProfile:
    """The profile of `model`; an unknown model (a new alias, a proxy's name) gets Nano
    Banana's conservative limits under its own name, marked `known=False`."""
    model = model.strip().removeprefix("models/")
    known = PROFILES.get(model)
    if known is not None:
        return known
    base = PROFILES[NANO_BANANA]
    return ModelProfile(
        model=model,
        name=model,
        aspect_ratios=base.aspect_ratios,
        max_reference_images=base.max_reference_images,
        known=False,
    )


def ratio_value(ratio: str) -> float:
    """ "16:9" -> 1.777...; ValueError for anything else."""
    across, _, down = ratio.partition(":")
    width, height = float(across), float(down)
    if not (width > 0 and height > 0 and math.isfinite(width / height)):
        raise ValueError(f"not a ratio: {ratio!r}")
    return width / height


def nearest_ratio(width: int, height: int, ratios: Iterable[str]) -> str | None:
    """The supported ratio closest to a width×height shape (by log distance, so 2:1 and 1:2
    are equally far from 1:1), or None when there is no shape or no ratio."""
    if width <= 0 or height <= 0:
        return None
    target = math.log(width / height)
    best: tuple[float, str] | None = None
    for ratio in ratios:
        distance = abs(math.log(ratio_value(ratio)) - target)
        if best is None or distance < best[0]:
            best = (distance, ratio)
    return best[1] if best else None


def union_ratios(profiles: Iterable[ModelProfile]) -> tuple[str, ...]:
    """Every ratio any of `profiles` accepts, the base ones first, in a stable order."""
    seen: dict[str, None] = {}
    for profile in profiles:
        for ratio in profile.aspect_ratios:
            seen.setdefault(ratio, None)
    return tuple(seen)


def union_sizes(profiles: Iterable[ModelProfile]) -> tuple[str, ...]:
    """Every size any of `profiles` accepts, smallest first."""
    sizes = {size for profile in profiles for size in profile.image_sizes}
    return tuple(size for size in ALL_IMAGE_SIZES if size in sizes)
