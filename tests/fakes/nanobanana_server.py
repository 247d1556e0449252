"""A fake Nano Banana (Gemini `generateContent`) server on loopback, for tests and local runs.

It serves a dated lineup, as Google does: `models.list` (paged: `pageSize` 50 by default, at most
1000, `pageToken`/`nextPageToken`) and `models.get` show the models served on the fake's
`today` (a clock tests move: `fake.today = date(...)`, or `fake.retire(model)`); a model not
served (retired, not yet released, unknown) answers 404 NOT_FOUND on `generateContent` and
`models.get`, in Google's words, and is missing from the list. The default lineup of every test
is today's (December 2026).

It answers like the real API, shape for shape (response bodies recorded from Google's API):
real PNGs (Nano Banana) or JPEGs with thought parts and `thoughtSignature`s (Nano Banana Pro and
Nano Banana 2) at the requested ratio and size, `usageMetadata`, Google's error shape
(`{"error": {"code", "status", "message", "details"}}` with `QuotaFailure`/`RetryInfo` in the
body and no `Retry-After` header, as Google sends it), HTML 502 pages from Google's front end,
and the refusals the real API gives (a size or ratio the model lacks, too many reference images,
an oversized request).

    async with FakeNanobanana() as fake:
        fake.script([Mode.RATE_LIMIT, Mode.OK])          # queued replies, then `fake.default`
        fake.default = Behaviour(Mode.UNAVAILABLE)       # what every other request gets
        fake.latency = 0.2                               # seconds before every answer
        fake.failure_rate = 0.3                          # random failures (after the script)
        fake.failure_modes = [Mode.SERVER_ERROR, Behaviour(Mode.RATE_LIMIT, delay=0.01)]
        fake.rng = random.Random(1234)
        client = NanobananaClient("key", base_url=fake.base_url)
        ...
        fake.requests[-1].prompt, fake.requests[-1].aspect_ratio, fake.requests[-1].images

Standalone, for pointing `NANOBANANA_BASE_URL` at it:

    python -m tests.fakes.nanobanana_server --port 8089 [--latency 2] [--image-size 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import functools
import io
import json
import random
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from PIL import Image, ImageChops

__all__ = [
    "MODELS",
    "TODAY",
    "Behaviour",
    "FakeModel",
    "FakeNanobanana",
    "Mode",
    "RecordedRequest",
    "image_dimensions",
]

BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
ASPECT_RATIOS = BASE_RATIOS  # kept for callers of the old name
MAX_REQUEST_BYTES = 20 * 1024 * 1024
THOUGHT_IMAGE_SIZE = 256
# Long side of each imageSize, relative to the fake's `image_size` (the "1K" side).
SIZE_FACTORS = {"512": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}


#: The fake's "today": its lineup as Google serves it on this day unless a test moves it.
TODAY = date(2026, 12, 7)
EXTREME_RATIOS = ("1:4", "4:1", "1:8", "8:1")


@dataclass(frozen=True)
class FakeModel:
    """What the real API accepts from a model, how that model answers, and when Google
    served it (the fake's own table, kept apart from the bot's profiles on purpose: a test
    compares the two)."""

    ratios: tuple[str, ...] = BASE_RATIOS
    sizes: tuple[str, ...] = ()
    max_images: int = 3
    mime_type: str = "image/png"
    thinking: bool = False
    # Output tokens of one image by imageSize ("" = no size), as Google counts and bills them.
    image_tokens: Mapping[str, int] = field(default_factory=lambda: {"": 1290})
    display_name: str = ""
    released: date | None = None
    #: The first day it is no longer served (404 from then on).
    shutdown: date | None = None
    #: `thinkingConfig.thinkingLevel` values it takes (any case); () refuses the setting.
    thinking_levels: tuple[str, ...] = ()
    #: False for the text and embedding models the list also holds (no images).
    image: bool = True
    methods: tuple[str, ...] = ("generateContent", "countTokens", "batchGenerateContent")
    input_token_limit: int = 65536
    output_token_limit: int = 32768
    #: `modelStatus.modelStage` its answers carry (None: no modelStatus).
    stage: str | None = None
    #: Google Search grounding (`tools: [{"google_search": {}}]`); refused with 400 when not.
    grounding: bool = False
    #: A model turn's images sent back without their `thoughtSignature` are refused with 400
    #: (Gemini 3 models validate signatures; Gemini 3 Pro Image does not: see docs/models.md,
    #: "Conversations").
    signatures_required: bool = False

    def served_on(self, day: date) -> bool:
        return (self.released is None or self.released <= day) and (
            self.shutdown is None or day < self.shutdown
        )


def _flash(**changes: Any) -> FakeModel:
    base = FakeModel(
        ratios=(*BASE_RATIOS, *EXTREME_RATIOS),
        sizes=("512", "1K", "2K", "4K"),
        max_images=14,
        mime_type="image/jpeg",
        thinking=True,
        image_tokens={"": 1120, "512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
        thinking_levels=("minimal", "high"),
        grounding=True,
        signatures_required=True,
    )
    return replace(base, **changes)


def _pro(**changes: Any) -> FakeModel:
    base = FakeModel(
        sizes=("1K", "2K", "4K"),
        max_images=14,
        mime_type="image/jpeg",
        thinking=True,
        image_tokens={"": 1120, "1K": 1120, "2K": 1120, "4K": 2000},
        grounding=True,
    )
    return replace(base, **changes)


#: Every model the fake knows, with the dates Google served it (December 2026's view).
MODELS: Mapping[str, FakeModel] = {
    "gemini-nano-banana-2.1": _flash(
        display_name="Nano Banana 2.1",
        released=date(2026, 10, 6),
        sizes=("1K", "2K", "4K"),
        image_tokens={"": 1120, "1K": 1120, "2K": 1680, "4K": 3780},
        thinking_levels=("minimal", "medium", "high"),
        input_token_limit=131072,
    ),
    "gemini-3.1-flash-image": _flash(
        display_name="Nano Banana 2", released=date(2026, 5, 28), stage="DEPRECATED"
    ),
    "gemini-3.1-flash-lite-image": _flash(
        display_name="Nano Banana 2 Lite",
        released=date(2026, 6, 30),
        ratios=BASE_RATIOS,
        sizes=("1K",),
        image_tokens={"": 1120, "1K": 1120},
        output_token_limit=4096,
        grounding=False,  # Google's model page: no Search grounding
    ),
    "gemini-3-pro-image": _pro(display_name="Nano Banana Pro", released=date(2026, 5, 28)),
    "gemini-2.5-flash-image": FakeModel(
        display_name="Nano Banana", released=date(2025, 10, 2), shutdown=date(2026, 10, 2)
    ),
    "gemini-3-pro-image-preview": _pro(
        display_name="Nano Banana Pro", released=date(2025, 11, 20), shutdown=date(2026, 6, 25)
    ),
    "gemini-3.1-flash-image-preview": _flash(
        display_name="Nano Banana 2", released=date(2026, 2, 26), shutdown=date(2026, 6, 25)
    ),
    # What else a key's list holds: text models (they caption images for /describe; no
    # images out) and embedding models. Dates from Google's changelog (2026-05-07: 3.1
    # Flash-Lite GA; 2026-05-19: 3.5 Flash GA; 2026-07-21: 3.6 Flash and 3.5 Flash-Lite GA;
    # 2026-10-08: 3.5 Flash deprecated for 3.6 Flash, requests routed there).
    "gemini-3.1-flash-lite": FakeModel(
        display_name="Gemini 3.1 Flash-Lite", released=date(2026, 5, 7), image=False
    ),
    "gemini-3.5-flash": FakeModel(
        display_name="Gemini 3.5 Flash", released=date(2026, 5, 19), image=False
    ),
    "gemini-3.6-flash": FakeModel(
        display_name="Gemini 3.6 Flash", released=date(2026, 7, 21), image=False
    ),
    "gemini-3.5-flash-lite": FakeModel(
        display_name="Gemini 3.5 Flash-Lite", released=date(2026, 7, 21), image=False
    ),
    "gemini-embedding-001": FakeModel(
        display_name="Gemini Embedding 001",
        released=date(2025, 7, 14),
        image=False,
        methods=("embedContent", "countTextTokens"),
    ),
}
#: Kept for callers of the old name: the default model's answer shape (Nano Banana 2.1).
GENERIC_MODEL = MODELS["gemini-nano-banana-2.1"]


class Mode(StrEnum):
    """What the fake does with a request."""

    OK = "ok"  # the model's normal answer: `images` images (plus `text` if given)
    THOUGHTS = "thoughts"  # `thoughts` thought parts (text + 256px image) before the images
    BLOCK_PROMPT = "block_prompt"  # promptFeedback.blockReason (`reason`, default SAFETY)
    BLOCK_OUTPUT = "block_output"  # finishReason (`reason`, default IMAGE_SAFETY) + message
    NO_IMAGE = "no_image"  # finishReason NO_IMAGE with `content: {}`
    TEXT_ONLY = "text_only"  # a text part, finishReason STOP, no image
    RATE_LIMIT = "rate_limit"  # 429 per-minute quota; `delay` as RetryInfo in the body
    RATE_LIMIT_DETAIL = "rate_limit_detail"  # the same, RetryInfo 1 s unless `delay`
    QUOTA_ZERO = "quota_zero"  # 429 with quotaValue "0" (a key without image billing)
    QUOTA_DAY = "quota_day"  # 429 on a PerDay quota id
    SERVER_ERROR = "server_error"  # 500 INTERNAL
    UNAVAILABLE = "unavailable"  # 503 UNAVAILABLE ("The model is overloaded")
    HTML_502 = "html_502"  # 502 with Google front end's HTML page, no JSON
    LOCATION = "location"  # 400 FAILED_PRECONDITION "User location is not supported..."
    PAYLOAD_TOO_LARGE = "payload_too_large"  # 400 "Request payload size exceeds the limit"
    ERROR = "error"  # any `status` (default 500) in Google's error shape
    BAD_REQUEST = "bad_request"  # 400 INVALID_ARGUMENT
    FORBIDDEN = "forbidden"  # 403 PERMISSION_DENIED
    NOT_FOUND = "not_found"  # 404 NOT_FOUND
    MALFORMED_JSON = "malformed_json"  # 200 with a cut-off JSON body
    TRUNCATED_BASE64 = "truncated_base64"  # 200 whose image data is cut in half
    HANG = "hang"  # no answer for `fake.hang_seconds` (or until stop)
    DISCONNECT = "disconnect"  # drop the connection without answering


@dataclass(frozen=True)
class Behaviour:
    """One reply: a `Mode` and its knobs. Unused knobs are ignored."""

    mode: Mode = Mode.OK
    delay: float | None = None  # server-given retry delay, seconds (RetryInfo; 429/503)
    header: bool = False  # also send `Retry-After` (as a proxy might; Google doesn't)
    reason: str | None = None  # blockReason / finishReason
    message: str | None = None  # finishMessage for BLOCK_OUTPUT
    text: str | None = None  # text part for OK/THOUGHTS/TEXT_ONLY
    status: int | None = None  # HTTP status for Mode.ERROR
    latency: float | None = None  # overrides `fake.latency` for this reply
    thoughts: int = 2  # thought parts for Mode.THOUGHTS
    images: int = 1  # images in one answer (OK, THOUGHTS)


BehaviourLike = Behaviour | Mode | str


def as_behaviour(value: BehaviourLike) -> Behaviour:
    """Accept a Behaviour, a Mode or a mode's string value."""
    if isinstance(value, Behaviour):
        return value
    return Behaviour(Mode(value))


def _inline_of(part: Mapping[str, Any]) -> dict[str, Any] | None:
    inline = part.get("inline_data") or part.get("inlineData")
    return inline if isinstance(inline, dict) else None


def _signature_of(part: Mapping[str, Any]) -> str | None:
    value = part.get("thought_signature") or part.get("thoughtSignature")
    return value if isinstance(value, str) else None


@dataclass
class RecordedRequest:
    """One request the fake received, whatever it answered."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body_size: int
    received_at: float
    behaviour: Behaviour | None = None
    status: int = 0
    handler_seconds: float = 0.0  # time spent in the handler (latency included)
    # The usageMetadata of an answer that carried images: what Google would bill.
    billed_usage: dict[str, Any] | None = None
    # time.monotonic() when the request arrived: on Linux the same clock in every process, so
    # a benchmark in another process can line it up with its own stamps.
    received_monotonic: float = 0.0

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def api_key(self) -> str | None:
        return self.header("x-goog-api-key")

    @property
    def model(self) -> str:
        return self.path.rsplit("/", 1)[-1].split(":", 1)[0]

    @property
    def contents(self) -> list[dict[str, Any]]:
        contents = self.json.get("contents") if isinstance(self.json, dict) else None
        if not isinstance(contents, list):
            return []
        return [c for c in contents if isinstance(c, dict)]

    @staticmethod
    def _parts_of(content: Mapping[str, Any]) -> list[dict[str, Any]]:
        parts = content.get("parts")
        return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []

    @property
    def _parts(self) -> list[dict[str, Any]]:
        """The parts of the new (last) user turn."""
        contents = self.contents
        return self._parts_of(contents[-1]) if contents else []

    @property
    def prompt(self) -> str | None:
        texts = [p["text"] for p in self._parts if isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else None

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """(mime_type, decoded bytes) for each inline image of the new turn."""
        found: list[tuple[str, bytes]] = []
        for part in self._parts:
            inline = _inline_of(part)
            if inline is not None:
                mime = inline.get("mime_type") or inline.get("mimeType") or ""
                found.append((str(mime), base64.b64decode(inline.get("data", ""))))
        return found

    @property
    def history(self) -> list[dict[str, Any]]:
        """The earlier turns sent before the new one (user and model contents)."""
        return self.contents[:-1]

    @property
    def signatures(self) -> list[str]:
        """Every thought signature sent back in the model's earlier turns."""
        return [
            signature
            for content in self.history
            if content.get("role") == "model"
            for part in self._parts_of(content)
            if (signature := _signature_of(part)) is not None
        ]

    @property
    def history_images(self) -> list[tuple[str, bytes]]:
        """(mime_type, bytes) of the images in the model's earlier turns."""
        found: list[tuple[str, bytes]] = []
        for content in self.history:
            for part in self._parts_of(content):
                inline = _inline_of(part)
                if inline is not None:
                    mime = inline.get("mime_type") or inline.get("mimeType") or ""
                    found.append((str(mime), base64.b64decode(inline.get("data", ""))))
        return found

    @property
    def generation_config(self) -> dict[str, Any]:
        config = self.json.get("generationConfig") if isinstance(self.json, dict) else None
        return config if isinstance(config, dict) else {}

    @property
    def _image_config(self) -> dict[str, Any]:
        image_config = self.generation_config.get("imageConfig")
        return image_config if isinstance(image_config, dict) else {}

    @property
    def aspect_ratio(self) -> str | None:
        ratio = self._image_config.get("aspectRatio")
        return ratio if isinstance(ratio, str) else None

    @property
    def image_size(self) -> str | None:
        size = self._image_config.get("imageSize")
        return size if isinstance(size, str) else None


def image_dimensions(
    aspect_ratio: str | None, long_side: int = 1024, image_size: str | None = None
) -> tuple[int, int]:
    """The (width, height) the fake draws for an aspect ratio (1:1 when none is given) and an
    image size (`long_side` is the "1K" side)."""
    side = max(1, round(long_side * SIZE_FACTORS.get(image_size or "1K", 1.0)))
    a, b = (int(x) for x in (aspect_ratio or "1:1").split(":"))
    if a >= b:
        return side, max(1, round(side * b / a))
    return max(1, round(side * a / b)), side


@functools.lru_cache(maxsize=64)
def _picture(width: int, height: int) -> Image.Image:
    """Gradients plus mild noise: compresses like a real picture."""
    gradient = Image.linear_gradient("L")
    across = gradient.rotate(90).resize((width, height))
    down = gradient.resize((width, height))
    noise = Image.effect_noise((width, height), 8)
    red = ImageChops.add(down, noise, 1.0, -128)
    return Image.merge("RGB", (red, across, noise))


@functools.lru_cache(maxsize=32)
def render_png(width: int, height: int) -> bytes:
    """A PNG that compresses like a real picture, cached by size."""
    out = io.BytesIO()
    _picture(width, height).save(out, "PNG", compress_level=1)
    return out.getvalue()


@functools.lru_cache(maxsize=32)
def render_jpeg(width: int, height: int) -> bytes:
    """A JPEG as Nano Banana Pro answers, cached by size."""
    out = io.BytesIO()
    _picture(width, height).save(out, "JPEG", quality=90)
    return out.getvalue()


@functools.lru_cache(maxsize=32)
def render_png_b64(width: int, height: int) -> str:
    return base64.b64encode(render_png(width, height)).decode("ascii")


@functools.lru_cache(maxsize=32)
def render_b64(mime_type: str, width: int, height: int) -> str:
    if mime_type == "image/jpeg":
        return base64.b64encode(render_jpeg(width, height)).decode("ascii")
    return render_png_b64(width, height)


@functools.lru_cache(maxsize=32)
def _b64_bytes(mime_type: str, width: int, height: int) -> bytes:
    """The base64 of a picture as bytes, ready to splice into an answer (cached)."""
    return render_b64(mime_type, width, height).encode("ascii")


@dataclass(frozen=True)
class _Blob:
    """Base64 image data in an answer under construction: spliced into the serialised JSON
    as it is, so a 7 MB image is neither re-encoded nor re-serialised on every call."""

    data: bytes


_STATUS_NAMES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# What Google's front end answers when the backend is unreachable: HTML, not JSON.
GOOGLE_502_HTML = """<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <meta name=viewport content="initial-scale=1, minimum-scale=1, width=device-width">
  <title>Error 502 (Server Error)!!1</title>
  <style>*{margin:0;padding:0}html,code{font:15px/22px arial,sans-serif}</style>
  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>
  <p><b>502.</b> <ins>That\u2019s an error.</ins>
  <p>The server encountered a temporary error and could not complete your request.<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>
"""  # noqa: E501

_FINISH_MESSAGES: Mapping[str, str] = {
    "IMAGE_SAFETY": "Unable to show the generated image. The generated image was filtered out "
    "because it violated Google's Generative AI Prohibited Use policy. You will not be charged "
    "for blocked images. Try rephrasing the prompt.",
    "IMAGE_PROHIBITED_CONTENT": "Unable to show the generated image. The image was filtered "
    "out because it may contain prohibited content.",
    "IMAGE_RECITATION": "Unable to show the generated image. The image may resemble an "
    "existing source too closely.",
    "IMAGE_OTHER": "Unable to show the generated image. The image was filtered out for an "
    "unspecified reason.",
}


def error_response(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    api_status: str | None = None,
) -> web.Response:
    """Google's error JSON shape."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": api_status or _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status, headers=headers)


class FakeNanobanana:
    """The fake server. Switches are plain attributes, read on every request."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        image_size: int = 1024,
        latency: float = 0.0,
        expected_api_key: str | None = None,
        today: date = TODAY,
        lineup: Mapping[str, FakeModel] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        #: Long side, in pixels, of generated "1K" images (other sizes scale from it).
        self.image_size = image_size
        #: Seconds to wait before every answer.
        self.latency = latency
        #: When set, every answer also waits until this event is set: a test holds calls "at
        #: the API" for exactly as long as it needs, whatever the machine's speed.
        self.gate: asyncio.Event | None = None
        #: When set, any other non-empty key gets 400 API_KEY_INVALID (like the real API).
        self.expected_api_key = expected_api_key
        #: What requests get once the script is used up (and no random failure is drawn).
        self.default: BehaviourLike = Mode.OK
        #: Fraction of (unscripted) requests that fail with a mode drawn from `failure_modes`.
        self.failure_rate = 0.0
        self.failure_modes: list[BehaviourLike] = [
            Behaviour(Mode.RATE_LIMIT, delay=0.01),
            Mode.SERVER_ERROR,
            Behaviour(Mode.UNAVAILABLE),
        ]
        self.rng = random.Random(0)
        #: How long Mode.HANG holds a request (stop() releases it sooner).
        self.hang_seconds = 3600.0
        #: Every generateContent request received, in order.
        self.requests: list[RecordedRequest] = []
        #: Every models.list / models.get request, in order.
        self.model_requests: list[RecordedRequest] = []
        self._arrived = asyncio.Condition()
        #: generateContent calls being answered now, and the most there ever were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        #: Every thought signature handed out, so a test can check what comes back.
        self.signatures: list[str] = []
        #: The fake's clock: what it serves is what Google served on this day.
        self.today = today
        #: Every model it knows, by id (tests add, change and retire models here).
        self.lineup: dict[str, FakeModel] = dict(MODELS if lineup is None else lineup)
        #: Google returns at most 1000 models a page whatever is asked; tests lower this to
        #: see several pages.
        self.max_page_size = 1000
        self._script: deque[Behaviour] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1beta/models/{model_action}", self._handle_generate)
        self.app.router.add_get("/v1beta/models", self._handle_list_models)
        self.app.router.add_get("/v1beta/models/{model}", self._handle_get_model)
        # For benchmarks running the fake in its own process: what it received, and when.
        self.app.router.add_get("/_fake/requests", self._handle_list_requests)
        self.app.router.add_delete("/_fake/requests", self._handle_clear_requests)
        self.app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._arrived = asyncio.Condition()
        runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---------------------------------------------------------------- switches

    async def received(self, count: int = 1, timeout: float = 30) -> list[RecordedRequest]:
        """Wait until `count` generateContent requests have arrived (the event a test needs
        instead of guessing how long a job takes to reach the API); the requests so far."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    def script(self, behaviours: Iterable[BehaviourLike]) -> None:
        """Queue replies for the next requests, in order; then `default` applies again."""
        self._script.extend(as_behaviour(b) for b in behaviours)

    def reset(self) -> None:
        """Back to a healthy, instant server with no history."""
        self._script.clear()
        self.requests.clear()
        self.model_requests.clear()
        self.signatures.clear()
        self.default = Mode.OK
        self.latency = 0.0
        self.gate = None
        self.failure_rate = 0.0
        self.expected_api_key = None

    def served(self, model: str) -> FakeModel | None:
        """The model if the fake serves it today, else None (it answers 404)."""
        spec = self.lineup.get(model)
        return spec if spec is not None and spec.served_on(self.today) else None

    def retire(self, model: str, on: date | None = None) -> None:
        """Google shuts `model` down on `on` (today by default): 404 from that day."""
        self.lineup[model] = replace(self.lineup[model], shutdown=on or self.today)

    def keep_serving(self, model: str) -> None:
        """This key keeps `model` past its shutdown (Google kept the 2.5 models for keys that
        had used them: changelog, 2026-09-18)."""
        self.lineup[model] = replace(self.lineup[model], shutdown=None)

    def add_model(self, model: str, spec: FakeModel) -> None:
        """Google releases a model (served from `spec.released`, or at once)."""
        self.lineup[model] = spec

    def _next_behaviour(self) -> Behaviour:
        if self._script:
            return self._script.popleft()
        if self.failure_rate > 0 and self.failure_modes and self.rng.random() < self.failure_rate:
            return as_behaviour(self.rng.choice(self.failure_modes))
        return as_behaviour(self.default)

    # ---------------------------------------------------------------- handlers

    def _key_problem(self, request: web.Request) -> web.StreamResponse | None:
        """Google's answer to a missing or wrong key, or None when the key is fine."""
        key = request.headers.get("x-goog-api-key", "").strip()
        if not key:
            return error_response(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if self.expected_api_key is not None and key != self.expected_api_key:
            return error_response(
                400,
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        return None

    @staticmethod
    def _describe(model: str, spec: FakeModel) -> dict[str, Any]:
        """A Model resource as ListModels and models.get return it."""
        version = "001"
        return {
            "name": f"models/{model}",
            "version": version,
            "displayName": spec.display_name or model,
            "description": f"{spec.display_name or model} (the fake's)",
            "inputTokenLimit": spec.input_token_limit,
            "outputTokenLimit": spec.output_token_limit,
            "supportedGenerationMethods": list(spec.methods),
            "temperature": 1,
            "maxTemperature": 2,
            "topP": 0.95,
            "topK": 64,
            **({"thinking": True} if spec.thinking else {}),
        }

    async def _handle_get_model(self, request: web.Request) -> web.StreamResponse:
        """`models.get`: a model served today, else 404 NOT_FOUND."""
        self._record_get(request)
        problem = self._key_problem(request)
        if problem is not None:
            return problem
        model = request.match_info["model"]
        spec = self.served(model)
        if spec is None:
            return error_response(404, f"models/{model} is not found for API version v1beta.")
        return web.json_response(self._describe(model, spec))

    async def _handle_list_models(self, request: web.Request) -> web.StreamResponse:
        """`models.list`: the models served today, `pageSize` (default 50, at most 1000) a
        page, with an opaque `nextPageToken` until the last."""
        self._record_get(request)
        problem = self._key_problem(request)
        if problem is not None:
            return problem
        raw_size = request.query.get("pageSize", "50")
        try:
            size = int(raw_size)
        except ValueError:
            return error_response(400, f"Invalid value at 'page_size' (TYPE_INT32), {raw_size!r}")
        if size < 0:
            return error_response(400, "page_size must not be negative.")
        size = min(size or 50, 1000, self.max_page_size)
        offset = 0
        token = request.query.get("pageToken")
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return error_response(400, "Invalid page token.")
        served = [(m, spec) for m, spec in self.lineup.items() if spec.served_on(self.today)]
        page = served[offset : offset + size]
        body: dict[str, Any] = {"models": [self._describe(m, spec) for m, spec in page]}
        if offset + size < len(served):
            body["nextPageToken"] = base64.urlsafe_b64encode(f"o:{offset + size}".encode()).decode()
        return web.json_response(body)

    def _record_get(self, request: web.Request) -> None:
        self.model_requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path_qs,
                headers=dict(request.headers),
                json=None,
                body_size=0,
                received_at=time.time(),
                received_monotonic=time.monotonic(),
                status=0,
            )
        )

    async def _handle_list_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            [
                {
                    "prompt": r.prompt,
                    "status": r.status,
                    "received_monotonic": r.received_monotonic,
                    "handler_seconds": r.handler_seconds,
                    "body_size": r.body_size,
                }
                for r in self.requests
            ]
        )

    async def _handle_clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.requests.clear()
        return web.Response(status=204)

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return error_response(404, f"Method not found: {request.method} {request.path}")

    async def _handle_generate(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        arrived = time.monotonic()
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            json=body,
            body_size=len(raw),
            received_at=time.time(),
            received_monotonic=arrived,
        )
        self.requests.append(record)
        async with self._arrived:
            self._arrived.notify_all()
        response: web.StreamResponse | None = None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._answer(request, record, body)
            return response
        finally:
            self.in_flight -= 1
            record.status = response.status if response is not None else 0
            record.handler_seconds = time.perf_counter() - started

    async def _answer(
        self, request: web.Request, record: RecordedRequest, body: Any
    ) -> web.StreamResponse:
        problem = self._key_problem(request)
        if problem is not None:
            return problem
        model, _, action = request.match_info["model_action"].partition(":")
        if action != "generateContent" or not model:
            return error_response(404, f"Method not found: {request.path}")
        spec = self.served(model)
        if spec is None or "generateContent" not in spec.methods:
            return error_response(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for generateContent. Call ListModels to see the list of available models "
                "and their supported methods.",
            )
        refusal = _request_problem(body, record.body_size, model, spec)
        if refusal is not None:
            return error_response(400, refusal)

        behaviour = self._next_behaviour()
        record.behaviour = behaviour
        latency = behaviour.latency if behaviour.latency is not None else self.latency
        if latency > 0:
            await asyncio.sleep(latency)
        if self.gate is not None:
            await self.gate.wait()
        return await self._reply(request, record, behaviour, model, spec)

    def _signature(self) -> str:
        # Real signatures are opaque base64 blobs of a few hundred bytes.
        value = base64.b64encode(b"fake-signature:" + uuid.uuid4().bytes * 8).decode()
        self.signatures.append(value)
        return value

    def _image_parts(
        self, record: RecordedRequest, b: Behaviour, spec: FakeModel
    ) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        thoughts = b.thoughts if b.mode is Mode.THOUGHTS else (1 if spec.thinking else 0)
        tw, th = image_dimensions(record.aspect_ratio, THOUGHT_IMAGE_SIZE)
        for n in range(thoughts):
            parts.append({"text": f"**Drafting composition {n + 1}**\n\n...", "thought": True})
            parts.append(
                {
                    "inlineData": {
                        "mimeType": "image/png",
                        "data": _Blob(_b64_bytes("image/png", tw, th)),
                    },
                    "thought": True,
                }
            )
        width, height = image_dimensions(record.aspect_ratio, self.image_size, record.image_size)
        # Text beside the images only when the request asks for it: with responseModalities
        # ["IMAGE"] the API answers images alone (GenerationConfig.responseModalities: "the
        # response will include all the specified modalities", googleapis java-genai docs).
        if b.text and "TEXT" in _modalities(record):
            text_part: dict[str, Any] = {"text": b.text}
            if spec.thinking:
                text_part["thoughtSignature"] = self._signature()
            parts.append(text_part)
        for _ in range(max(1, b.images)):
            data = _b64_bytes(spec.mime_type, width, height)
            if b.mode is Mode.TRUNCATED_BASE64:
                data = data[: len(data) // 2 - 1]
            image_part: dict[str, Any] = {
                "inlineData": {"mimeType": spec.mime_type, "data": _Blob(data)}
            }
            if spec.thinking:
                image_part["thoughtSignature"] = self._signature()
            parts.append(image_part)
        return parts

    async def _reply(
        self,
        request: web.Request,
        record: RecordedRequest,
        b: Behaviour,
        model: str,
        spec: FakeModel,
    ) -> web.StreamResponse:
        mode = b.mode
        usage = _usage(record, spec)

        if not spec.image and mode in (Mode.OK, Mode.THOUGHTS, Mode.TEXT_ONLY):
            # A text model: it describes what it was shown.
            usage = _text_usage(record)
            record.billed_usage = usage
            return _candidate_response(model, [{"text": b.text or _caption(record)}], "STOP", usage)
        if mode in (Mode.OK, Mode.THOUGHTS, Mode.TRUNCATED_BASE64):
            usage = _usage(record, spec, images=max(1, b.images))
            record.billed_usage = usage
            return _candidate_response(
                model, self._image_parts(record, b, spec), "STOP", usage, spec.stage,
                grounding=_grounding_metadata(record) if _searches(record) else None,
            )  # fmt: skip
        if mode is Mode.TEXT_ONLY:
            text = b.text or "I can't create that image, but I can describe it instead."
            return _candidate_response(model, [{"text": text}], "STOP", usage)
        if mode is Mode.NO_IMAGE:
            return _json(
                {
                    "candidates": [{"content": {}, "finishReason": "NO_IMAGE", "index": 0}],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex[:22],
                }
            )
        if mode is Mode.BLOCK_OUTPUT:
            reason = b.reason or "IMAGE_SAFETY"
            candidate: dict[str, Any] = {"content": {}, "finishReason": reason, "index": 0}
            message = b.message or _FINISH_MESSAGES.get(reason)
            if message:
                candidate["finishMessage"] = message
            return _json(
                {
                    "candidates": [candidate],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex[:22],
                }
            )
        if mode is Mode.BLOCK_PROMPT:
            return _json(
                {
                    "promptFeedback": {"blockReason": b.reason or "SAFETY"},
                    "usageMetadata": {k: v for k, v in usage.items() if k.startswith("prompt")},
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex[:22],
                }
            )
        if mode in (Mode.RATE_LIMIT, Mode.RATE_LIMIT_DETAIL):
            delay = b.delay if b.delay is not None or mode is Mode.RATE_LIMIT else 1.0
            return _quota_response(
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits.",
                [_violation("GenerateRequestsPerMinutePerProjectPerModel", model, "10")],
                delay,
                header=b.header,
            )
        if mode is Mode.QUOTA_ZERO:
            delay = 54.0 if b.delay is None else b.delay
            metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
            return _quota_response(
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
                "usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for "
                f"metric: {metric}, limit: 0, model: {model}\nPlease retry in {delay:g}s.",
                [
                    _violation("GenerateRequestsPerDayPerProjectPerModel-FreeTier", model, "0"),
                    _violation("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", model, "0"),
                ],
                delay,
                header=b.header,
            )
        if mode is Mode.QUOTA_DAY:
            delay = 54.0 if b.delay is None else b.delay
            return _quota_response(
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, head to: "
                "https://ai.google.dev/gemini-api/docs/rate-limits.",
                [_violation("GenerateRequestsPerDayPerProjectPerModel", model, "250")],
                delay,
                header=b.header,
            )
        if mode is Mode.SERVER_ERROR:
            return error_response(
                500, "An internal error has occurred. Please retry or report the issue."
            )
        if mode is Mode.UNAVAILABLE:
            headers = {"Retry-After": _seconds(b.delay)} if b.delay is not None else None
            return error_response(
                503, "The model is overloaded. Please try again later.", headers=headers
            )
        if mode is Mode.HTML_502:
            return web.Response(
                status=502, text=GOOGLE_502_HTML, content_type="text/html", charset="UTF-8"
            )
        if mode is Mode.LOCATION:
            return error_response(
                400,
                "User location is not supported for the API use.",
                api_status="FAILED_PRECONDITION",
            )
        if mode is Mode.PAYLOAD_TOO_LARGE:
            return error_response(
                400, f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
            )
        if mode is Mode.ERROR:
            status = b.status or 500
            return error_response(status, f"Fake error with status {status}.")
        if mode is Mode.BAD_REQUEST:
            return error_response(400, "Request contains an invalid argument.")
        if mode is Mode.FORBIDDEN:
            return error_response(403, "The caller does not have permission.")
        if mode is Mode.NOT_FOUND:
            return error_response(
                404,
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for generateContent.",
            )
        if mode is Mode.MALFORMED_JSON:
            return web.Response(
                body=b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeT',
                content_type="application/json",
            )
        if mode is Mode.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
            return error_response(504, "Deadline expired before operation could complete.")
        if mode is Mode.DISCONNECT:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never delivered: the connection is gone
        raise AssertionError(f"unhandled mode {mode}")  # pragma: no cover


def _modalities(record: RecordedRequest) -> list[str]:
    """The response modalities a request asked for (upper-case)."""
    config = record.json.get("generationConfig") if isinstance(record.json, dict) else None
    modalities = config.get("responseModalities") if isinstance(config, dict) else None
    return [str(m).upper() for m in modalities] if isinstance(modalities, list) else []


def _searches(record: RecordedRequest) -> bool:
    """Whether the request asks for Google Search grounding (`tools: [{"google_search": {}}]`,
    or the camel-case `googleSearch`)."""
    tools = record.json.get("tools") if isinstance(record.json, dict) else None
    return isinstance(tools, list) and any(
        isinstance(tool, dict) and ("google_search" in tool or "googleSearch" in tool)
        for tool in tools
    )


def _grounding_metadata(record: RecordedRequest) -> dict[str, Any]:
    """A grounded answer's `groundingMetadata` in Google's shape: the queries it ran (one
    empty, as Google sometimes sends; not billed), the pages as Google's redirect links with
    the site as the title, and the Search suggestion chip."""
    topic = " ".join((record.prompt or "image").split()[:6])
    return {
        "webSearchQueries": [topic, "", f"{topic} reference photos"],
        "groundingChunks": [
            {
                "web": {
                    "uri": f"https://vertexaisearch.cloud.google.com/grounding-api-redirect/{n}",
                    "title": site,
                }
            }
            for n, site in enumerate(("en.wikipedia.org", "example.com"), start=1)
        ],
        "groundingSupports": [],
        "searchEntryPoint": {"renderedContent": '<div class="container">...</div>'},
    }


def _request_problem(body: Any, size: int, model: str, spec: FakeModel) -> str | None:
    """What the real API would reject with 400, or None."""
    if size > MAX_REQUEST_BYTES:
        return f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    images = 0
    previous_role: str | None = None
    for index, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
        role = content.get("role", "user")
        if role not in ("user", "model"):
            return f"Please use a valid role: user, model. (got {role!r})"
        # A conversation starts with the user and alternates user / model (Google's
        # multi-turn examples; see docs/models.md, "Conversations").
        if role == previous_role or (previous_role is None and role != "user"):
            return "Please ensure that multiturn requests alternate between user and model."
        previous_role = role
        if role == "model" and spec.signatures_required:
            for position, part in enumerate(parts):
                unsigned = not (
                    isinstance(part, dict)
                    and (part.get("thought_signature") or part.get("thoughtSignature"))
                )
                if isinstance(part, dict) and _inline_of(part) is not None and unsigned:
                    return (
                        "Image part is missing a thought_signature in content position "
                        f"{index + 1}, part position {position + 1}. Please include the "
                        "thought_signature the model returned with this part."
                    )
        for position, part in enumerate(parts):
            if not isinstance(part, dict):
                return "* GenerateContentRequest.contents.parts: invalid part."
            inline = _inline_of(part)
            if inline is not None:
                images += 1
                try:
                    base64.b64decode(inline.get("data", ""), validate=True)
                except (binascii.Error, ValueError, TypeError):
                    return (
                        f"Invalid value at 'contents[{index}].parts[{position}].inline_data.data' "
                        "(TYPE_BYTES), Base64 decoding failed"
                    )
            signature = part.get("thought_signature", part.get("thoughtSignature"))
            if signature is not None:
                try:
                    base64.b64decode(signature, validate=True)
                except (binascii.Error, ValueError, TypeError):
                    return (
                        f"Invalid value at 'contents[{index}].parts[{position}].thought_signature'"
                        " (TYPE_BYTES), Base64 decoding failed"
                    )
    if images > spec.max_images:
        return (
            f"The number of images in the request ({images}) exceeds the maximum allowed for "
            f"{model} ({spec.max_images})."
        )
    config = body.get("generationConfig")
    tools = body.get("tools")
    searches = isinstance(tools, list) and any(
        isinstance(t, dict) and ("google_search" in t or "googleSearch" in t) for t in tools
    )
    if searches and not spec.grounding:
        return "Search Grounding is not supported."
    if not spec.image:
        modalities = config.get("responseModalities") if isinstance(config, dict) else None
        wants_image = isinstance(modalities, list) and "IMAGE" in modalities
        if wants_image or (isinstance(config, dict) and "imageConfig" in config):
            return "Model does not support the requested response modalities: image"
        return None
    thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
    if isinstance(thinking, dict) and "thinkingLevel" in thinking:
        level = str(thinking["thinkingLevel"]).lower()
        if level not in spec.thinking_levels:
            return (
                "* GenerationConfig.thinking_config.thinking_level: unsupported value "
                f"{thinking['thinkingLevel']!r} for {model}"
            )
    image_config = config.get("imageConfig") if isinstance(config, dict) else None
    if isinstance(image_config, dict):
        ratio = image_config.get("aspectRatio")
        if ratio is not None and ratio not in spec.ratios:
            return f"* GenerationConfig.image_config.aspect_ratio: unsupported value {ratio!r}"
        image_size = image_config.get("imageSize")
        if image_size is not None and image_size not in spec.sizes:
            if not spec.sizes:
                return f"Image size is not supported for model {model}."
            return f"* GenerationConfig.image_config.image_size: unsupported value {image_size!r}"
    return None


def _usage(record: RecordedRequest, spec: FakeModel, images: int = 1) -> dict[str, Any]:
    """Google's shape: totals, the prompt by modality, thoughts apart from the candidates
    (which, for these models, are the output images' tokens)."""
    inputs = len(record.images) + len(record.history_images)
    text_tokens = len(record.prompt or "") // 4 + 1
    prompt_tokens = text_tokens + 258 * inputs
    per_image = spec.image_tokens.get(record.image_size or "", spec.image_tokens.get("", 1290))
    candidates = per_image * images
    details = [{"modality": "TEXT", "tokenCount": text_tokens}]
    if inputs:
        details.append({"modality": "IMAGE", "tokenCount": 258 * inputs})
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt_tokens + candidates,
        "promptTokensDetails": details,
    }
    if spec.thinking:
        usage["thoughtsTokenCount"] = 212
        usage["totalTokenCount"] += 212
    return usage


def _text_usage(record: RecordedRequest) -> dict[str, Any]:
    """A text model's usageMetadata: the prompt (258 tokens an image) and its text out."""
    inputs = len(record.images)
    text_tokens = len(record.prompt or "") // 4 + 1
    prompt_tokens = text_tokens + 258 * inputs
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": 40,
        "totalTokenCount": prompt_tokens + 40,
    }


def _caption(record: RecordedRequest) -> str:
    """What the fake "sees" in the request's first image: its size and main colour (so a
    test can tell which image was described)."""
    if not record.images:
        return "There is no image to describe."
    with Image.open(io.BytesIO(record.images[0][1])) as image:
        width, height = image.size
        red, green, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))  # type: ignore[misc]
    return f"A {width}×{height} picture, mostly rgb({red}, {green}, {blue})."


def _json(document: dict[str, Any]) -> web.Response:
    # Exactly `application/json; charset=UTF-8`, as Google sends it.
    return web.Response(body=_serialise(document), content_type="application/json", charset="UTF-8")


_BLOB_TOKEN = "@@fake-blob-{}@@"


def _serialise(document: dict[str, Any]) -> bytes:
    """`json.dumps` of the document, with each `_Blob` spliced in as a JSON string from its
    cached bytes: only the small rest of the answer is serialised per call."""
    blobs: list[bytes] = []

    def swap(value: Any) -> Any:
        if isinstance(value, _Blob):
            blobs.append(value.data)
            return _BLOB_TOKEN.format(len(blobs) - 1)
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(document))
    if not blobs:
        return text.encode()
    pieces: list[bytes] = []
    for index, blob in enumerate(blobs):
        before, _, text = text.partition(_BLOB_TOKEN.format(index))
        pieces += [before.encode(), blob]
    pieces.append(text.encode())
    return b"".join(pieces)


def _candidate_response(
    model: str,
    parts: list[dict[str, Any]],
    finish_reason: str,
    usage: dict[str, Any],
    stage: str | None = None,
    *,
    grounding: dict[str, Any] | None = None,
) -> web.Response:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": parts},
        "finishReason": finish_reason,
        "index": 0,
    }
    if grounding is not None:
        candidate["groundingMetadata"] = grounding
    document: dict[str, Any] = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:22],
    }
    if stage is not None:
        document["modelStatus"] = {"modelStage": stage}
    return _json(document)


def _violation(quota_id: str, model: str, value: str) -> dict[str, Any]:
    metric = (
        "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        if "FreeTier" in quota_id
        else "generativelanguage.googleapis.com/generate_content_requests"
    )
    return {
        "quotaMetric": metric,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": value,
    }


def _quota_response(
    message: str, violations: list[dict[str, Any]], delay: float | None, *, header: bool
) -> web.Response:
    """429 RESOURCE_EXHAUSTED as Google sends it: QuotaFailure, Help and (when it knows)
    RetryInfo in the body; no Retry-After header unless `header` (a proxy adding one)."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": violations},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay:g}s"}
        )
    headers = {"Retry-After": _seconds(delay)} if header and delay is not None else None
    return error_response(429, message, details=details, headers=headers)


def _seconds(value: float | None) -> str:
    return f"{value or 0:g}"


async def _serve(
    host: str, port: int, latency: float, image_size: int, today: date, keep: list[str]
) -> None:
    fake = FakeNanobanana(host=host, port=port, latency=latency, image_size=image_size, today=today)
    for model in keep:
        fake.keep_serving(model)
    await fake.start()
    print(f"FakeNanobanana listening on {fake.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Nano Banana API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0: any free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--image-size", type=int, default=1024, help="long side in pixels")
    parser.add_argument(
        "--today", type=date.fromisoformat, default=TODAY,
        help=f"serve Google's lineup as of this day (default {TODAY})",
    )  # fmt: skip
    parser.add_argument(
        "--keep-serving", action="append", default=[], metavar="MODEL",
        help="a model this key keeps past its shutdown (e.g. gemini-2.5-flash-image)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.latency, args.image_size, args.today,
                           args.keep_serving))  # fmt: skip


if __name__ == "__main__":
    main()
