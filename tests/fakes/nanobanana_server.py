"""A fake Nano Banana (Gemini `generateContent`) server on loopback, for tests and local runs.

It speaks the API's JSON: real PNGs made with Pillow at the requested aspect ratio, Google's
error shape (`{"error": {"code", "status", "message", "details"}}`), and switchable failures.

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
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from PIL import Image, ImageChops

__all__ = ["Behaviour", "FakeNanobanana", "Mode", "RecordedRequest", "image_dimensions"]

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
MAX_REQUEST_BYTES = 20 * 1024 * 1024
THOUGHT_IMAGE_SIZE = 256


class Mode(StrEnum):
    """What the fake does with a request."""

    OK = "ok"  # an image (plus `text` if given)
    BLOCK_PROMPT = "block_prompt"  # promptFeedback.blockReason (`reason`, default SAFETY)
    BLOCK_OUTPUT = "block_output"  # finishReason (`reason`, default IMAGE_SAFETY), no image
    TEXT_ONLY = "text_only"  # a text part, finishReason STOP, no image
    THOUGHTS = "thoughts"  # `thoughts` thought images (256px) before the final image
    RATE_LIMIT = "rate_limit"  # 429, `delay` in a Retry-After header (if given)
    RATE_LIMIT_DETAIL = "rate_limit_detail"  # 429, `delay` as RetryInfo.retryDelay (default 1s)
    SERVER_ERROR = "server_error"  # 500 INTERNAL
    UNAVAILABLE = "unavailable"  # 503, `delay` in a Retry-After header (if given)
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
    delay: float | None = None  # server-given retry delay, seconds (429/503)
    reason: str | None = None  # blockReason / finishReason
    text: str | None = None  # text part for OK/THOUGHTS/TEXT_ONLY
    status: int | None = None  # HTTP status for Mode.ERROR
    latency: float | None = None  # overrides `fake.latency` for this reply
    thoughts: int = 2  # thought images for Mode.THOUGHTS


BehaviourLike = Behaviour | Mode | str


def as_behaviour(value: BehaviourLike) -> Behaviour:
    """Accept a Behaviour, a Mode or a mode's string value."""
    if isinstance(value, Behaviour):
        return value
    return Behaviour(Mode(value))


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
    def _parts(self) -> list[dict[str, Any]]:
        try:
            parts = self.json["contents"][0]["parts"]
        except (KeyError, IndexError, TypeError):
            return []
        return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []

    @property
    def prompt(self) -> str | None:
        texts = [p["text"] for p in self._parts if isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else None

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """(mime_type, decoded bytes) for each inline image sent."""
        found: list[tuple[str, bytes]] = []
        for part in self._parts:
            inline = part.get("inline_data") or part.get("inlineData")
            if isinstance(inline, dict):
                mime = inline.get("mime_type") or inline.get("mimeType") or ""
                found.append((str(mime), base64.b64decode(inline.get("data", ""))))
        return found

    @property
    def generation_config(self) -> dict[str, Any]:
        config = self.json.get("generationConfig") if isinstance(self.json, dict) else None
        return config if isinstance(config, dict) else {}

    @property
    def aspect_ratio(self) -> str | None:
        image_config = self.generation_config.get("imageConfig")
        if isinstance(image_config, dict):
            ratio = image_config.get("aspectRatio")
            return ratio if isinstance(ratio, str) else None
        return None


def image_dimensions(aspect_ratio: str | None, long_side: int = 1024) -> tuple[int, int]:
    """The (width, height) the fake draws for an aspect ratio (1:1 when none is given)."""
    a, b = (int(x) for x in (aspect_ratio or "1:1").split(":"))
    if a >= b:
        return long_side, max(1, round(long_side * b / a))
    return max(1, round(long_side * a / b)), long_side


@functools.lru_cache(maxsize=32)
def render_png(width: int, height: int) -> bytes:
    """A PNG that compresses like a real picture (gradients plus mild noise), cached by size."""
    gradient = Image.linear_gradient("L")
    across = gradient.rotate(90).resize((width, height))
    down = gradient.resize((width, height))
    noise = Image.effect_noise((width, height), 8)
    red = ImageChops.add(down, noise, 1.0, -128)
    image = Image.merge("RGB", (red, across, noise))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


@functools.lru_cache(maxsize=32)
def render_png_b64(width: int, height: int) -> str:
    return base64.b64encode(render_png(width, height)).decode("ascii")


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


def error_response(
    status: int,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Google's error JSON shape."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
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
    ) -> None:
        self.host = host
        self.port = port
        #: Long side, in pixels, of generated images.
        self.image_size = image_size
        #: Seconds to wait before every answer.
        self.latency = latency
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
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        self._script: deque[Behaviour] = deque()
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1beta/models/{model_action}", self._handle_generate)
        self.app.router.add_get("/v1beta/models/{model}", self._handle_get_model)
        self.app.router.add_route("*", "/{tail:.*}", self._handle_unknown)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._stopping = asyncio.Event()
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

    def script(self, behaviours: Iterable[BehaviourLike]) -> None:
        """Queue replies for the next requests, in order; then `default` applies again."""
        self._script.extend(as_behaviour(b) for b in behaviours)

    def reset(self) -> None:
        """Back to a healthy, instant server with no history."""
        self._script.clear()
        self.requests.clear()
        self.default = Mode.OK
        self.latency = 0.0
        self.failure_rate = 0.0
        self.expected_api_key = None

    def _next_behaviour(self) -> Behaviour:
        if self._script:
            return self._script.popleft()
        if self.failure_rate > 0 and self.failure_modes and self.rng.random() < self.failure_rate:
            return as_behaviour(self.rng.choice(self.failure_modes))
        return as_behaviour(self.default)

    # ---------------------------------------------------------------- handlers

    async def _handle_get_model(self, request: web.Request) -> web.StreamResponse:
        """`models.get`, as `python -m bot check` uses it to test the key and the model."""
        key = request.headers.get("x-goog-api-key", "").strip()
        if not key:
            return error_response(403, "Method doesn't allow unregistered callers.")
        if self.expected_api_key is not None and key != self.expected_api_key:
            return error_response(400, "API key not valid. Please pass a valid API key.")
        model = request.match_info["model"]
        if not model.startswith("gemini"):
            return error_response(404, f"models/{model} is not found")
        return web.json_response(
            {
                "name": f"models/{model}",
                "displayName": model,
                "supportedGenerationMethods": ["generateContent"],
            }
        )

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return error_response(404, f"Method not found: {request.method} {request.path}")

    async def _handle_generate(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
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
        )
        self.requests.append(record)
        response: web.StreamResponse | None = None
        try:
            response = await self._answer(request, record, body)
            return response
        finally:
            record.status = response.status if response is not None else 0
            record.handler_seconds = time.perf_counter() - started

    async def _answer(
        self, request: web.Request, record: RecordedRequest, body: Any
    ) -> web.StreamResponse:
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
        model, _, action = request.match_info["model_action"].partition(":")
        if action != "generateContent" or not model:
            return error_response(404, f"Method not found: {request.path}")
        problem = _request_problem(body, record.body_size)
        if problem is not None:
            return error_response(400, problem)

        behaviour = self._next_behaviour()
        record.behaviour = behaviour
        latency = behaviour.latency if behaviour.latency is not None else self.latency
        if latency > 0:
            await asyncio.sleep(latency)
        return await self._reply(request, record, behaviour, model)

    async def _reply(
        self, request: web.Request, record: RecordedRequest, b: Behaviour, model: str
    ) -> web.StreamResponse:
        mode = b.mode
        usage = _usage(record)
        width, height = image_dimensions(record.aspect_ratio, self.image_size)

        if mode in (Mode.OK, Mode.THOUGHTS, Mode.TRUNCATED_BASE64):
            parts: list[dict[str, Any]] = []
            if mode is Mode.THOUGHTS:
                tw, th = image_dimensions(record.aspect_ratio, THOUGHT_IMAGE_SIZE)
                for n in range(b.thoughts):
                    parts.append({"text": f"Drafting composition {n + 1}...", "thought": True})
                    parts.append(
                        {
                            "inlineData": {"mimeType": "image/png", "data": render_png_b64(tw, th)},
                            "thought": True,
                        }
                    )
            if b.text:
                parts.append({"text": b.text})
            data = render_png_b64(width, height)
            if mode is Mode.TRUNCATED_BASE64:
                data = data[: len(data) // 2 - 1]
            parts.append({"inlineData": {"mimeType": "image/png", "data": data}})
            return _candidate_response(model, parts, "STOP", usage)

        if mode is Mode.TEXT_ONLY:
            text = b.text or "I can't create that image, but I can describe it instead."
            return _candidate_response(model, [{"text": text}], "STOP", usage)
        if mode is Mode.BLOCK_OUTPUT:
            return web.json_response(
                {
                    "candidates": [{"finishReason": b.reason or "IMAGE_SAFETY", "index": 0}],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex,
                }
            )
        if mode is Mode.BLOCK_PROMPT:
            return web.json_response(
                {
                    "promptFeedback": {"blockReason": b.reason or "SAFETY"},
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": uuid.uuid4().hex,
                }
            )
        if mode is Mode.RATE_LIMIT:
            headers = {"Retry-After": _seconds(b.delay)} if b.delay is not None else None
            return error_response(
                429,
                "Resource has been exhausted (e.g. check quota).",
                headers=headers,
                details=[_quota_failure()],
            )
        if mode is Mode.RATE_LIMIT_DETAIL:
            delay = 1.0 if b.delay is None else b.delay
            return error_response(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                details=[
                    _quota_failure(),
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{_seconds(delay)}s",
                    },
                ],
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


def _request_problem(body: Any, size: int) -> str | None:
    """What the real API would reject with 400, or None."""
    if size > MAX_REQUEST_BYTES:
        return f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for content in contents:
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            return "* GenerateContentRequest.contents.parts: contents.parts must not be empty."
        for part in parts:
            if not isinstance(part, dict):
                return "* GenerateContentRequest.contents.parts: invalid part."
            inline = part.get("inline_data") or part.get("inlineData")
            if isinstance(inline, dict):
                try:
                    base64.b64decode(inline.get("data", ""), validate=True)
                except (binascii.Error, ValueError, TypeError):
                    return "Invalid value at 'contents[0].parts[1].inline_data.data' (TYPE_BYTES)"
    config = body.get("generationConfig")
    image_config = config.get("imageConfig") if isinstance(config, dict) else None
    if isinstance(image_config, dict):
        ratio = image_config.get("aspectRatio")
        if ratio is not None and ratio not in ASPECT_RATIOS:
            return f"* GenerationConfig.image_config.aspect_ratio: unsupported value {ratio!r}"
    return None


def _usage(record: RecordedRequest) -> dict[str, int]:
    prompt_tokens = len(record.prompt or "") // 4 + 1 + 258 * len(record.images)
    candidates = 1290
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt_tokens + candidates,
    }


def _candidate_response(
    model: str, parts: list[dict[str, Any]], finish_reason: str, usage: dict[str, int]
) -> web.Response:
    document = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": uuid.uuid4().hex,
    }
    return web.Response(body=json.dumps(document).encode(), content_type="application/json")


def _quota_failure() -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
            }
        ],
    }


def _seconds(value: float | None) -> str:
    return f"{value or 0:g}"


async def _serve(host: str, port: int, latency: float, image_size: int) -> None:
    fake = FakeNanobanana(host=host, port=port, latency=latency, image_size=image_size)
    await fake.start()
    print(f"FakeNanobanana listening on {fake.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Nano Banana API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--image-size", type=int, default=1024, help="long side in pixels")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.latency, args.image_size))


if __name__ == "__main__":
    main()
