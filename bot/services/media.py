"""Images members send: checked (what is declared, before any download; then the bytes), with
problems turned into user-facing errors, and the one pipeline for a job's input images."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot import imaging
from bot.nanobanana import InputImage
from bot.services.errors import InvalidInput
from bot.services.imagework import ImageWork


def problem_to_error(problem: imaging.ImageProblem, name: str) -> InvalidInput:
    """Map imaging's problem codes to messages with the numbers a user needs."""
    detail = problem.detail
    params: dict[str, object] = {"name": name, **detail}
    if problem.code == "too_large":
        params["size_mb"] = _mb(detail.get("size"))
        params["limit_mb"] = _mb(detail.get("limit"))
    if problem.code == "too_many_pixels":
        limit = detail.get("limit")
        params["limit_mp"] = round(limit / 1_000_000) if isinstance(limit, int) else "?"
    params.setdefault("format", "unknown")
    key = f"image.{problem.code}"
    if problem.code == "too_many_pixels" and not {"width", "height"} <= detail.keys():
        # Pillow's own guard fired before the size could be read: say so without numbers.
        key = "image.too_many_pixels_unknown"
    return InvalidInput(key, **params)


def _mb(value: object) -> str:
    return f"{value / (1024 * 1024):.1f}" if isinstance(value, int) else "?"


async def check_image(
    data: bytes, name: str, *, max_bytes: int, max_pixels: int = imaging.DEFAULT_MAX_PIXELS
) -> imaging.ImageInfo:
    """Verify bytes are one still PNG/JPEG/WebP within limits (off the event loop)."""
    try:
        return await asyncio.to_thread(
            imaging.inspect_image, data, max_bytes=max_bytes, max_pixels=max_pixels
        )
    except imaging.ImageProblem as problem:
        raise problem_to_error(problem, name) from None


@dataclass(frozen=True)
class Declared:
    """What a surface says of an image before it is downloaded (Discord declares an
    attachment's size, type and dimensions)."""

    name: str
    size: int
    content_type: str | None = None
    width: int = 0
    height: int = 0


class InputImages:
    """The one pipeline for the images of a paid job, whichever surface sends them: refused
    from what is declared (size, type, pixels) before any download, then checked and shrunk
    at once, in the image pool, to what the model uses (`max_side` on the long side): the
    downloaded megabytes are dropped there and then."""

    def __init__(
        self, imagework: ImageWork | None, *, max_bytes: int, max_pixels: int, max_side: int
    ) -> None:
        self.imagework = imagework
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.max_side = max_side

    def check_declared(self, image: Declared) -> None:
        """Refuse an image from what is declared about it (the bytes are checked again)."""
        if image.size > self.max_bytes:
            raise InvalidInput(
                "image.too_large", name=image.name, size_mb=_mb(image.size),
                limit_mb=_mb(self.max_bytes),
            )  # fmt: skip
        declared = (image.content_type or "").split(";")[0].strip().lower()
        if declared and declared not in imaging.ALLOWED_FORMATS.values():
            raise InvalidInput(
                "image.unsupported_format",
                name=image.name,
                format=declared.removeprefix("image/").upper(),
            )
        if image.width * image.height > self.max_pixels:
            raise InvalidInput(
                "image.too_many_pixels",
                name=image.name,
                width=image.width,
                height=image.height,
                limit_mp=round(self.max_pixels / 1_000_000),
            )

    async def prepare(self, data: bytes, name: str) -> InputImage:
        """The image checked and shrunk for the model (refused when damaged, unsupported or
        over the limits; "busy" when the image pool is full)."""
        if len(data) > self.max_bytes:
            raise InvalidInput(
                "image.too_large", name=name, size_mb=_mb(len(data)), limit_mb=_mb(self.max_bytes)
            )
        try:
            if self.imagework is not None:
                small, mime = await self.imagework.run(
                    imaging.shrink_input, data, max_bytes=self.max_bytes,
                    max_pixels=self.max_pixels, max_side=self.max_side,
                )  # fmt: skip
            else:
                small, mime = await asyncio.to_thread(
                    imaging.shrink_input, data, max_bytes=self.max_bytes,
                    max_pixels=self.max_pixels, max_side=self.max_side,
                )  # fmt: skip
        except imaging.ImageProblem as problem:
            raise problem_to_error(problem, name) from None
        return InputImage(small, mime)
