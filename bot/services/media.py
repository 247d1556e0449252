"""Checking user-supplied image bytes, with problems turned into user-facing errors."""

from __future__ import annotations

import asyncio

from bot import imaging
from bot.services.errors import InvalidInput


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
