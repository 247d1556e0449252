"""Async client for Google's Nano Banana image models (the Gemini API's `generateContent`).

One `NanobananaClient` per process: it owns (or borrows) one aiohttp session, validates and
shrinks input images before anything goes on the wire, retries only what is worth retrying
(408/429/5xx, timeouts, dropped connections) with full-jitter backoff or the server's own delay,
never sleeps past its deadline, and turns every failure into a `NanobananaError` subclass whose
`user_message` is safe to show a Discord user.

    async with NanobananaClient(api_key) as client:
        image = await client.generate("a banana in a tuxedo", aspect_ratio="16:9")

DESIGN section 6 is the contract.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import io
import json
import logging
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self
from urllib.parse import quote

import aiohttp
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "SUPPORTED_ASPECT_RATIOS",
    "AuthenticationFailed",
    "ContentBlocked",
    "GeneratedImage",
    "InputImage",
    "InvalidRequest",
    "MalformedResponse",
    "NanobananaClient",
    "NanobananaError",
    "ProviderUnavailable",
    "RateLimited",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL: Final = "gemini-2.5-flash-image"

SUPPORTED_ASPECT_RATIOS: tuple[str, ...] = (
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

#: At most this many input images per request.
MAX_INPUT_IMAGES: Final = 3
#: Inputs whose longest side is larger are downscaled to this.
MAX_INPUT_SIDE: Final = 2048
#: The API's limit for a whole inline request.
MAX_REQUEST_BYTES: Final = 20 * 1024 * 1024
#: What all base64 image payloads of one request may add up to (headroom below the limit).
INLINE_IMAGE_BUDGET: Final = 18 * 1024 * 1024
#: A response larger than this is refused rather than buffered.
MAX_RESPONSE_BYTES: Final = 96 * 1024 * 1024
#: Statuses worth another attempt.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
#: Hard bounds on `max_attempts`.
MAX_ATTEMPTS_LIMIT: Final = 20

_INPUT_FORMATS: Final[Mapping[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
}
_PROMPT_LOG_CHARS: Final = 60
_OK_FINISH_REASONS: Final = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})
_URLSAFE: Final = str.maketrans("-_", "+/")
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class NanobananaError(Exception):
    """Base of every error the client raises.

    `str(error)` is for logs (no secrets, no payloads); `user_message` is short and plain, fit
    to show a Discord user; `retryable` says whether trying again later may succeed.
    """

    default_user_message: ClassVar[str] = "Image generation failed. Please try again later."
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        user_message: str | None = None,
        retryable: bool | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message or self.default_user_message)
        self.user_message: str = user_message or self.default_user_message
        self.retryable: bool = self.default_retryable if retryable is None else retryable
        #: The HTTP status that caused the error, when there was one.
        self.status: int | None = status
        #: How many HTTP attempts the failed `generate` call made (set by the client).
        self.attempts: int = 0


_BLOCKED_MESSAGES: Final[Mapping[str, str]] = {
    "NO_IMAGE": "The model didn't return an image this time. Try rewording your prompt.",
    "IMAGE_SAFETY": (
        "The generated image was blocked by the model's safety filters. Try a different prompt."
    ),
    "RECITATION": (
        "The image was blocked because it was too close to existing content. "
        "Try a different prompt."
    ),
    "IMAGE_RECITATION": (
        "The image was blocked because it was too close to existing content. "
        "Try a different prompt."
    ),
}
_BLOCKED_DEFAULT: Final = (
    "Your request was blocked by the image model's safety filters. Try rewording your prompt."
)


class ContentBlocked(NanobananaError):
    """The API answered but gave no image: a safety block or simply no image.

    `reason` is the `promptFeedback.blockReason` or the candidate's `finishReason`
    (SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT, ...), or NO_IMAGE. `text` is whatever text the
    model sent instead (for logs; don't show it to users unfiltered).
    """

    def __init__(self, reason: str, message: str | None = None, *, text: str | None = None) -> None:
        self.reason: str = reason
        self.text: str | None = text
        super().__init__(
            message or f"no image in the response (reason: {reason})",
            user_message=_BLOCKED_MESSAGES.get(reason, _BLOCKED_DEFAULT),
            retryable=False,
        )


class RateLimited(NanobananaError):
    """HTTP 429 after every attempt; `retry_after` is the server's delay in seconds, if given."""

    default_user_message: ClassVar[str] = (
        "The image service is busy right now. Please try again in a minute."
    )
    default_retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        user_message: str | None = None,
        status: int | None = 429,
    ) -> None:
        super().__init__(message, user_message=user_message, status=status)
        self.retry_after: float | None = retry_after


class ProviderUnavailable(NanobananaError):
    """5xx answers, timeouts or connection errors that outlasted the retries (or the deadline)."""

    default_user_message: ClassVar[str] = (
        "The image service is unavailable right now. Please try again later."
    )
    default_retryable: ClassVar[bool] = True


class InvalidRequest(NanobananaError):
    """HTTP 400/404 or a request the client refused to send (bad ratio, images, prompt)."""

    default_user_message: ClassVar[str] = "The image service couldn't accept this request."


class AuthenticationFailed(NanobananaError):
    """HTTP 401/403 or an invalid/missing API key."""

    default_user_message: ClassVar[str] = (
        "Image generation isn't available: the bot's API key was rejected. "
        "Please tell the bot's owner."
    )


class MalformedResponse(NanobananaError):
    """The API answered 200 with something unreadable: bad JSON, bad base64, a broken image."""

    default_user_message: ClassVar[str] = (
        "The image service sent an answer the bot couldn't read. Please try again."
    )
    default_retryable: ClassVar[bool] = True


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputImage:
    """An image to send along with the prompt (to edit or to draw from).

    `mime_type` is a hint only: the format is sniffed from the bytes.
    """

    data: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image; `width`/`height`/`mime_type` are read from the bytes themselves."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    model: str
    text: str | None
    usage: dict[str, int]
    attempts: int
    latency: float


@dataclass(frozen=True)
class _ParsedImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    model: str | None
    text: str | None
    usage: dict[str, int]


@dataclass
class _CallState:
    attempts: int = 0


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class NanobananaClient:
    """Calls `POST {base_url}/v1beta/models/{model}:generateContent` for image generation.

    - `timeout`: seconds for one HTTP attempt (connect, send, wait, read).
    - `max_attempts`: total HTTP attempts per `generate` call (1 = no retries).
    - `deadline`: seconds for the whole `generate` call, retries and waits included
      (default `timeout * max_attempts`); the client never sleeps past it.
    - `backoff_base`/`backoff_max`: full-jitter backoff, `uniform(0, min(max, base * 2**n))`,
      used when the server doesn't say how long to wait.
    - `session`: an aiohttp session to borrow (not closed by `close()`); otherwise the client
      creates one on first use and closes it in `close()`.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        model: str = DEFAULT_MODEL,
        timeout: float = 120.0,
        max_attempts: int = 4,
        session: aiohttp.ClientSession | None = None,
        deadline: float | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if deadline is not None and not deadline > 0:
            raise ValueError("deadline must be > 0")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        model = model.strip().removeprefix("models/")
        if not model:
            raise ValueError("model must not be empty")

        self._api_key = api_key.strip()
        self.base_url: str = base_url.rstrip("/")
        self.model: str = model
        self.timeout: float = float(timeout)
        self.max_attempts: int = max_attempts
        self.deadline: float = float(deadline) if deadline is not None else timeout * max_attempts
        self.backoff_base: float = float(backoff_base)
        self.backoff_max: float = float(backoff_max)
        self._url = f"{self.base_url}/v1beta/models/{quote(model, safe='-._~')}:generateContent"
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._random = random.Random()

    @classmethod
    def from_settings(cls, settings: Settings) -> NanobananaClient:
        """Build a client from `Settings`. Without `GEMINI_API_KEY` every call fails fast with
        `AuthenticationFailed` (and no request), so the bot can still start."""
        key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else ""
        return cls(
            key,
            base_url=settings.nanobanana_base_url or DEFAULT_BASE_URL,
            model=settings.nanobanana_model,
            timeout=settings.nanobanana_timeout,
            max_attempts=settings.nanobanana_max_attempts,
        )

    @property
    def configured(self) -> bool:
        """Whether an API key was given."""
        return bool(self._api_key)

    def __repr__(self) -> str:
        return f"NanobananaClient(base_url={self.base_url!r}, model={self.model!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client created it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    # ---------------------------------------------------------------- generate

    async def generate(
        self,
        prompt: str,
        images: Sequence[InputImage] = (),
        aspect_ratio: str | None = None,
    ) -> GeneratedImage:
        """Generate one image from `prompt` (and optional input images to edit/draw from).

        Raises a `NanobananaError` subclass on any failure.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        state = _CallState()
        outcome = "cancelled"
        try:
            result = await self._generate(prompt, images, aspect_ratio, started, state)
            outcome = "ok"
            return result
        except NanobananaError as error:
            error.attempts = state.attempts
            outcome = _describe_outcome(error)
            raise
        except Exception as error:  # a bug, not an API failure: log it plainly and re-raise
            outcome = f"bug:{type(error).__name__}"
            raise
        finally:
            logger.info(
                "nanobanana generate outcome=%s model=%s attempts=%d latency=%.3fs images=%d "
                "aspect_ratio=%s prompt=%r",
                outcome,
                self.model,
                state.attempts,
                loop.time() - started,
                len(images),
                aspect_ratio,
                _shorten(prompt),
            )

    async def _generate(
        self,
        prompt: str,
        images: Sequence[InputImage],
        aspect_ratio: str | None,
        started: float,
        state: _CallState,
    ) -> GeneratedImage:
        if self._closed:
            raise ProviderUnavailable("the client is closed", retryable=False)
        _validate(prompt, images, aspect_ratio)
        if not self._api_key:
            raise AuthenticationFailed(
                "no API key configured (GEMINI_API_KEY)",
                user_message="Image generation isn't set up on this bot yet.",
            )
        body = await asyncio.to_thread(_build_request_body, prompt, tuple(images), aspect_ratio)

        loop = asyncio.get_running_loop()
        deadline_at = started + self.deadline
        last_error: NanobananaError | None = None
        for retry_index in range(self.max_attempts):
            remaining = deadline_at - loop.time()
            if remaining <= 0:
                break
            state.attempts += 1
            server_delay: float | None = None
            try:
                status, headers, payload = await self._post(body, min(self.timeout, remaining))
            except TimeoutError:
                last_error = ProviderUnavailable(
                    f"no answer within {min(self.timeout, remaining):.2f}s"
                )
            except (aiohttp.InvalidURL, aiohttp.ClientSSLError) as error:
                raise ProviderUnavailable(
                    f"cannot reach the API: {type(error).__name__}", retryable=False
                ) from None
            except aiohttp.ClientError as error:
                last_error = ProviderUnavailable(f"connection error: {type(error).__name__}")
            else:
                if status == 200:
                    parsed = await asyncio.to_thread(_parse_success, payload)
                    return GeneratedImage(
                        data=parsed.data,
                        mime_type=parsed.mime_type,
                        width=parsed.width,
                        height=parsed.height,
                        model=parsed.model or self.model,
                        text=parsed.text,
                        usage=parsed.usage,
                        attempts=state.attempts,
                        latency=loop.time() - started,
                    )
                api_error, server_delay = _error_for_status(status, headers, payload, self._api_key)
                if status not in RETRYABLE_STATUSES:
                    raise api_error
                last_error = api_error

            if retry_index + 1 >= self.max_attempts:
                break
            delay = server_delay if server_delay is not None else self._backoff(retry_index)
            if loop.time() + delay >= deadline_at:
                logger.debug(
                    "nanobanana not retrying: waiting %.2fs would pass the deadline", delay
                )
                break
            logger.debug(
                "nanobanana attempt %d failed (%s); retrying in %.2fs",
                state.attempts,
                last_error,
                delay,
            )
            await asyncio.sleep(delay)

        if last_error is None:
            last_error = ProviderUnavailable(
                f"deadline of {self.deadline:.2f}s passed before a request could be sent"
            )
        raise last_error

    def _backoff(self, retry_index: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retry_index)
        return self._random.uniform(0.0, ceiling)

    async def _post(
        self, body: bytes, seconds: float
    ) -> tuple[int, Mapping[str, str], bytes | bytearray]:
        """One HTTP attempt: status, headers and the (size-capped) body."""
        session = self._get_session()
        headers = {"x-goog-api-key": self._api_key, "Content-Type": "application/json"}
        async with session.post(
            self._url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,  # never hand the key to another host
        ) as response:
            status = response.status
            length = response.content_length
            if length is not None and length > MAX_RESPONSE_BYTES:
                return status, response.headers, _oversized(status)
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(1 << 20):
                buffer.extend(chunk)
                if len(buffer) > MAX_RESPONSE_BYTES:
                    return status, response.headers, _oversized(status)
            return status, response.headers, buffer


def _oversized(status: int) -> bytes:
    """An over-large success is malformed; an over-large error body is simply dropped."""
    if status == 200:
        raise MalformedResponse(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    return b""


# --------------------------------------------------------------------------------------------
# Request side (runs in a worker thread where Pillow is involved)
# --------------------------------------------------------------------------------------------


def _validate(prompt: str, images: Sequence[InputImage], aspect_ratio: str | None) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("empty prompt", user_message="Please describe the image you want.")
    if aspect_ratio is not None and aspect_ratio not in SUPPORTED_ASPECT_RATIOS:
        raise InvalidRequest(
            f"unsupported aspect ratio {aspect_ratio!r}",
            user_message="Aspect ratio must be one of " + ", ".join(SUPPORTED_ASPECT_RATIOS) + ".",
        )
    if len(images) > MAX_INPUT_IMAGES:
        raise InvalidRequest(
            f"{len(images)} input images (max {MAX_INPUT_IMAGES})",
            user_message=f"You can attach at most {MAX_INPUT_IMAGES} images.",
        )
    for index, image in enumerate(images, 1):
        if not isinstance(image, InputImage) or not image.data:
            raise InvalidRequest(
                f"input image {index} is empty",
                user_message=f"Image {index} is empty.",
            )


def _b64_len(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _not_supported(index: int, detail: str) -> InvalidRequest:
    return InvalidRequest(
        f"input image {index}: {detail}",
        user_message=f"Image {index} isn't a PNG, JPEG or WebP image I can read.",
    )


def _sniff(data: bytes, index: int) -> tuple[str, tuple[int, int]]:
    """The Pillow format name and size of `data`; refuses anything but intact PNG/JPEG/WebP."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            size = image.size
            if fmt not in _INPUT_FORMATS:
                raise _not_supported(index, f"unsupported format {fmt or 'unknown'}")
            image.verify()
    except InvalidRequest:
        raise
    except Image.DecompressionBombError:
        raise InvalidRequest(
            f"input image {index} has too many pixels",
            user_message=f"Image {index} is too large.",
        ) from None
    except Exception as error:  # Pillow raises many types for bad bytes
        raise _not_supported(index, f"unreadable ({type(error).__name__})") from None
    return fmt, size


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=quality, optimize=False)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=quality, method=4)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _shrink(data: bytes, fmt: str, index: int, budget: int) -> tuple[str, bytes]:
    """Downscale and re-encode until the base64 size is within `budget`."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if fmt == "JPEG":
                opened.draft("RGB", (MAX_INPUT_SIDE, MAX_INPUT_SIDE))
            image = ImageOps.exif_transpose(opened)
            image.load()
    except Exception as error:
        raise _not_supported(index, f"cannot decode ({type(error).__name__})") from None

    alpha = _has_alpha(image)
    image = image.convert("RGBA" if alpha else "RGB")
    side = min(max(image.size), MAX_INPUT_SIDE)
    quality = 90
    for _ in range(12):
        scaled = image.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        if alpha:
            # Keep transparency: PNG if it fits, otherwise lossy WebP (also accepted by the API).
            encoded = _encode(scaled, "PNG", quality)
            out_fmt = "PNG"
            if _b64_len(len(encoded)) > budget:
                encoded, out_fmt = _encode(scaled, "WEBP", quality), "WEBP"
        else:
            encoded, out_fmt = _encode(scaled, "JPEG", quality), "JPEG"
        if _b64_len(len(encoded)) <= budget:
            return _INPUT_FORMATS[out_fmt], encoded
        side = max(64, int(side * 0.75))
        quality = max(50, quality - 10)
    raise InvalidRequest(
        f"input image {index} cannot be made small enough",
        user_message=f"Image {index} is too large.",
    )


def _prepare_images(images: Sequence[InputImage]) -> list[tuple[str, bytes]]:
    """Sniff every input, then fit them all in `INLINE_IMAGE_BUDGET`, smallest first so small
    images pass untouched and large ones share what is left."""
    sniffed = [_sniff(image.data, index) for index, image in enumerate(images, 1)]
    prepared: list[tuple[str, bytes] | None] = [None] * len(images)
    remaining = INLINE_IMAGE_BUDGET
    order = sorted(range(len(images)), key=lambda i: len(images[i].data))
    for position, i in enumerate(order):
        share = remaining // (len(order) - position)
        fmt, (width, height) = sniffed[i]
        data = images[i].data
        if max(width, height) <= MAX_INPUT_SIDE and _b64_len(len(data)) <= share:
            item = (_INPUT_FORMATS[fmt], data)
        else:
            item = _shrink(data, fmt, i + 1, share)
        prepared[i] = item
        remaining -= _b64_len(len(item[1]))
    return [item for item in prepared if item is not None]


def _build_request_body(
    prompt: str, images: Sequence[InputImage], aspect_ratio: str | None
) -> bytes:
    parts: list[dict[str, Any]] = [{"text": prompt}]
    for mime_type, data in _prepare_images(images):
        parts.append(
            {"inline_data": {"mime_type": mime_type, "data": base64.b64encode(data).decode()}}
        )
    generation_config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    if aspect_ratio is not None:
        generation_config["imageConfig"] = {"aspectRatio": aspect_ratio}
    body = json.dumps(
        {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation_config},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    if len(body) > MAX_REQUEST_BYTES:
        raise InvalidRequest(
            f"request of {len(body)} bytes exceeds {MAX_REQUEST_BYTES}",
            user_message="The request is too large. Try a shorter prompt or smaller images.",
        )
    return body


# --------------------------------------------------------------------------------------------
# Response side
# --------------------------------------------------------------------------------------------


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_success(payload: bytes | bytearray) -> _ParsedImage:
    """Read a 200 answer; raises ContentBlocked or MalformedResponse, nothing else."""
    try:
        return _parse_success_unchecked(payload)
    except NanobananaError:
        raise
    except Exception as error:  # defensive: nothing unexpected escapes as a strange type
        raise MalformedResponse(f"unreadable response ({type(error).__name__})") from None


def _parse_success_unchecked(payload: bytes | bytearray) -> _ParsedImage:
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("response is not valid JSON") from None
    if isinstance(payload, bytearray):
        payload.clear()  # the client's own buffer: free megabytes before decoding
    if not isinstance(document, dict):
        raise MalformedResponse("response JSON is not an object")

    candidates = _as_list(document.get("candidates"))
    candidate = _as_dict(candidates[0]) if candidates else {}
    parts = _as_list(_as_dict(candidate.get("content")).get("parts"))

    image_part: dict[str, Any] | None = None
    texts: list[str] = []
    for raw_part in parts:
        part = _as_dict(raw_part)
        if part.get("thought") is True:
            continue
        inline = part.get("inlineData", part.get("inline_data"))
        if isinstance(inline, dict):
            image_part = inline
        text = part.get("text")
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
    text_out = "\n".join(texts) or None

    if image_part is None:
        block_reason = _as_str(_as_dict(document.get("promptFeedback")).get("blockReason"))
        finish_reason = _as_str(candidate.get("finishReason"))
        if block_reason:
            reason = block_reason
        elif finish_reason and finish_reason not in _OK_FINISH_REASONS:
            reason = finish_reason
        else:
            reason = "NO_IMAGE"
        raise ContentBlocked(reason, text=text_out)

    encoded = image_part.pop("data", None)  # pop: this string is the only copy left
    if not isinstance(encoded, str) or not encoded:
        raise MalformedResponse("image part has no data")
    data = _decode_base64(encoded)
    del encoded, image_part

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            fmt = image.format or ""
            image.verify()
    except Exception as error:
        raise MalformedResponse(
            f"image data is not a readable image ({type(error).__name__})"
        ) from None
    mime_type = Image.MIME.get(fmt, "application/octet-stream")

    usage = {
        key: value
        for key, value in _as_dict(document.get("usageMetadata")).items()
        if isinstance(value, int) and not isinstance(value, bool)
    }
    return _ParsedImage(
        data=data,
        mime_type=mime_type,
        width=width,
        height=height,
        model=_as_str(document.get("modelVersion")),
        text=text_out,
        usage=usage,
    )


def _decode_base64(encoded: str) -> bytes:
    """Strict standard base64 (what the API sends), URL-safe accepted; no copies of `encoded`."""
    try:
        return binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    if "-" in encoded or "_" in encoded:
        try:
            return binascii.a2b_base64(encoded.translate(_URLSAFE), strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    raise MalformedResponse("image data is not valid base64")


def _parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _parse_duration(value: object) -> float | None:
    """A protobuf Duration in JSON ("1.5s"), or its object form."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            total = float(seconds) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
        return total if math.isfinite(total) and total >= 0 else None
    return None


def _scrub(text: str, secret: str) -> str:
    """Cut a server message for logs, masking the API key should the server echo it."""
    if len(secret) >= 8:
        text = text.replace(secret, "***")
    return text[:300]


def _error_for_status(
    status: int, headers: Mapping[str, str], payload: bytes | bytearray, api_key: str
) -> tuple[NanobananaError, float | None]:
    """Map a non-200 answer (Google's `{"error": {...}}` or anything else) to an error, plus
    the delay the server asked for (`Retry-After` header or `RetryInfo.retryDelay`)."""
    api_status = ""
    message = ""
    retry_delay: float | None = None
    reasons: set[str] = set()
    try:
        document = json.loads(payload) if payload else None
    except (ValueError, UnicodeDecodeError):
        document = None
    error = _as_dict(_as_dict(document).get("error"))
    if error:
        api_status = _as_str(error.get("status")) or ""
        message = _as_str(error.get("message")) or ""
        for raw_detail in _as_list(error.get("details")):
            detail = _as_dict(raw_detail)
            kind = str(detail.get("@type", ""))
            if kind.endswith("google.rpc.RetryInfo"):
                retry_delay = _parse_duration(detail.get("retryDelay"))
            elif kind.endswith("google.rpc.ErrorInfo"):
                reason = _as_str(detail.get("reason"))
                if reason:
                    reasons.add(reason)

    header_delay = _parse_retry_after(headers.get("Retry-After"))
    delays = [d for d in (retry_delay, header_delay) if d is not None]
    server_delay = max(delays) if delays else None

    summary = f"HTTP {status}"
    if api_status:
        summary += f" {api_status}"
    if message:
        summary += f": {_scrub(message, api_key)}"

    result: NanobananaError
    if status in (401, 403) or api_status == "UNAUTHENTICATED" or "API_KEY_INVALID" in reasons:
        result = AuthenticationFailed(summary, status=status)
    elif status == 429:
        result = RateLimited(summary, retry_after=server_delay, status=status)
    elif status in (408, 500, 502, 503, 504):
        result = ProviderUnavailable(summary, status=status)
    elif status == 404:
        result = InvalidRequest(
            summary,
            user_message="The configured image model wasn't found. Please tell the bot's owner.",
            status=status,
        )
    elif 400 <= status < 500:
        user_message = None
        if status == 413:
            user_message = "The request is too large. Try smaller images."
        result = InvalidRequest(summary, user_message=user_message, status=status)
    else:
        result = ProviderUnavailable(summary, status=status, retryable=status >= 500)
    return result, server_delay


# --------------------------------------------------------------------------------------------
# Logging helpers
# --------------------------------------------------------------------------------------------


def _shorten(prompt: object) -> str:
    text = prompt if isinstance(prompt, str) else repr(type(prompt))
    return text if len(text) <= _PROMPT_LOG_CHARS else text[:_PROMPT_LOG_CHARS] + "…"


def _describe_outcome(error: NanobananaError) -> str:
    name = type(error).__name__
    if isinstance(error, ContentBlocked):
        return f"{name}:{error.reason}"
    if error.status is not None:
        return f"{name}:{error.status}"
    return name
