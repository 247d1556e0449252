"""The Gemini API's wire format, as pure functions: no I/O, no Pillow, no clock.

- `build_body`: a `generateContent` request: earlier turns (with their `thought_signature`s),
  the prompt and input images, and `generationConfig.imageConfig`.
- `parse_answer`: a 200 answer into its images, texts and signatures, or `ContentBlocked` /
  `MalformedResponse`.
- `error_for_status`: any other answer (Google's `{"error": {...}}` with its `details`, an HTML
  page from Google's front end, or nothing) into a typed error and the server's delay.

Shapes follow the REST reference (`GenerateContentResponse`, `google.rpc.Status` with
`QuotaFailure`, `RetryInfo`, `ErrorInfo`) as the official python-genai SDK reads them.
"""

from __future__ import annotations

import binascii
import email.utils
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import pybase64

from bot.nanobanana.errors import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    MalformedResponse,
    ModelNotFound,
    NanobananaError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from bot.nanobanana.values import AnswerPart, Grounding, InputImage, Source, TextAnswer, Turn

OK_FINISH_REASONS: Final = frozenset({"STOP", "FINISH_REASON_UNSPECIFIED"})
#: What an image request asks for: "The model will generate a response that includes all the
#: specified modalities" (GenerationConfig.responseModalities, googleapis.github.io/java-genai,
#: checked 2026-12-07): text beside the images.
RESPONSE_MODALITIES: Final = ("TEXT", "IMAGE")
_DURATION_RE: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_LIMIT_ZERO_RE: Final = re.compile(r"\blimit:\s*0\b")
_PAYLOAD_TOO_LARGE: Final = "request payload size exceeds the limit"
# A 400 naming the image config's ratio or size: the model doesn't take that value.
_REFUSED_RATIO: Final = re.compile(r"aspect[_ ]?ratio", re.IGNORECASE)
_REFUSED_SIZE: Final = re.compile(r"image[_ ]?size", re.IGNORECASE)
_REFUSED_THINKING: Final = re.compile(r"thinking[_ ]?level", re.IGNORECASE)


def refused_option(message: str) -> str | None:
    """ "ratio", "size" or "thinking" when a 400's message says the model refused that
    setting (e.g. "* GenerationConfig.image_config.aspect_ratio: unsupported value"), else
    None."""
    if _REFUSED_RATIO.search(message):
        return "ratio"
    if _REFUSED_SIZE.search(message):
        return "size"
    if _REFUSED_THINKING.search(message):
        return "thinking"
    return None


# --------------------------------------------------------------------------------------------
# Request
# --------------------------------------------------------------------------------------------


def _inline(image: InputImage) -> dict[str, Any]:
    return {
        "inline_data": {
            "mime_type": image.mime_type,
            # pybase64 (SIMD): ~20x the stdlib's speed on multi-MB images (bench_nanobanana).
            "data": pybase64.b64encode(image.data).decode("ascii"),
        }
    }


def build_body(
    prompt: str,
    inputs: Sequence[InputImage] = (),
    *,
    aspect_ratio: str | None = None,
    image_size: str | None = None,
    history: Sequence[Turn] = (),
    thinking_level: str | None = None,
    grounded: bool = False,
) -> bytes:
    """The JSON body of a `generateContent` call, as compact UTF-8 bytes.

    Each earlier turn becomes a `user` content (its prompt) and a `model` content (its parts,
    each with the `thought_signature` it came with), before the new `user` turn.
    `thinking_level` goes in `generationConfig.thinkingConfig.thinkingLevel`, upper-case as
    the python-genai SDK sends its `ThinkingLevel` enum (MINIMAL, LOW, MEDIUM, HIGH).
    `grounded` adds the Google Search tool (`"tools": [{"google_search": {}}]`, Google's
    "Grounding with Google Search" guide).
    """
    contents: list[dict[str, Any]] = []
    for turn in history:
        parts: list[dict[str, Any]] = []
        for part in turn.parts:
            if part.image is not None:
                wire = _inline(part.image)
            elif part.text is not None:
                wire = {"text": part.text}
            else:
                continue
            if part.thought_signature:
                wire["thought_signature"] = part.thought_signature
            parts.append(wire)
        if parts:
            contents.append({"role": "user", "parts": [{"text": turn.prompt}]})
            contents.append({"role": "model", "parts": parts})
    contents.append({"role": "user", "parts": [{"text": prompt}, *map(_inline, inputs)]})
    # Text too: a model that says something beside its image (a caveat, an answer to a
    # question about it) is heard; with ["IMAGE"] alone the API drops it (issue 22 item 6).
    generation_config: dict[str, Any] = {"responseModalities": list(RESPONSE_MODALITIES)}
    image_config: dict[str, str] = {}
    if aspect_ratio is not None:
        image_config["aspectRatio"] = aspect_ratio
    if image_size is not None:
        image_config["imageSize"] = image_size
    if image_config:
        generation_config["imageConfig"] = image_config
    if thinking_level is not None:
        generation_config["thinkingConfig"] = {"thinkingLevel": thinking_level.upper()}
    body: dict[str, Any] = {"contents": contents, "generationConfig": generation_config}
    if grounded:
        body["tools"] = [{"google_search": {}}]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_text_body(prompt: str, image: InputImage, *, max_output_tokens: int) -> bytes:
    """The body of a `generateContent` call to a text model about one image (a caption):
    the image, then the instruction, as Google's image-understanding guide orders them; a
    text answer of at most `max_output_tokens`."""
    contents = [{"role": "user", "parts": [_inline(image), {"text": prompt}]}]
    config = {"maxOutputTokens": max_output_tokens}
    return json.dumps(
        {"contents": contents, "generationConfig": config},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Success answers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawImage:
    """An image of an answer as decoded from base64 (not yet looked at)."""

    data: bytes = field(repr=False)
    declared_mime_type: str | None
    thought_signature: str | None


@dataclass(frozen=True)
class Answer:
    """What a 200 answer holds, thought parts left out."""

    images: list[RawImage]
    parts: list[AnswerPart]
    text: str | None
    usage: dict[str, int]
    model: str | None
    finish_reason: str | None
    finish_message: str | None
    thoughts: int
    #: What the API says of the model's life (`modelStatus`: stage such as DEPRECATED, its
    #: retirement time, a message), when it says anything.
    model_status: ModelStatus | None = None
    #: A grounded answer's sources and search queries (`groundingMetadata`).
    grounding: Grounding | None = None


@dataclass(frozen=True)
class ModelStatus:
    """`GenerateContentResponse.modelStatus` (python-genai `ModelStatus`: `modelStage` one of
    PREVIEW, STABLE, LEGACY, DEPRECATED, RETIRED...; `retirementTime`; `message`)."""

    stage: str | None
    retirement_time: str | None
    message: str | None

    @property
    def ending(self) -> bool:
        """Whether the model is on its way out (the owner should hear of it)."""
        return self.stage in ("LEGACY", "DEPRECATED", "RETIRED") or bool(self.retirement_time)


def parse_model_status(value: object) -> ModelStatus | None:
    """`modelStatus` of an answer, or None when absent or empty."""
    status = _as_dict(value)
    stage = _as_str(status.get("modelStage"))
    retirement = _as_str(status.get("retirementTime"))
    message = _as_str(status.get("message"))
    if not (stage or retirement or message):
        return None
    return ModelStatus(stage, retirement, message[:500] if message else None)


#: The most sources and queries kept of one answer.
MAX_SOURCES = 20


def parse_grounding(value: object) -> Grounding | None:
    """`candidates[0].groundingMetadata`: its web sources (`groundingChunks[].web`: `uri`,
    `title`; Google's redirect links) and `webSearchQueries`, or None when absent or empty."""
    metadata = _as_dict(value)
    sources: list[Source] = []
    for chunk in _as_list(metadata.get("groundingChunks")):
        web = _as_dict(_as_dict(chunk).get("web"))
        uri = _as_str(web.get("uri"))
        if uri and uri.startswith(("https://", "http://")) and len(sources) < MAX_SOURCES:
            title = _as_str(web.get("title")) or _as_str(web.get("domain")) or uri
            sources.append(Source(title[:200], uri[:1000]))
    queries = [q[:200] for q in _as_list(metadata.get("webSearchQueries")) if isinstance(q, str)]
    if not sources and not queries:
        return None
    return Grounding(tuple(sources), tuple(queries[:MAX_SOURCES]))


def _as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_answer(payload: bytes | bytearray) -> Answer:
    """Read a 200 answer; raises ContentBlocked or MalformedResponse, nothing else."""
    try:
        return _parse_answer(payload)
    except NanobananaError:
        raise
    except Exception as error:  # defensive: nothing unexpected escapes as a strange type
        raise MalformedResponse(f"unreadable response ({type(error).__name__})") from None


#: Values of `"data"` keys at least this long are read without the JSON parser (see below).
LIFT_MIN_BYTES = 4096
_DATA_KEY = b'"data"'
_JSON_SPACE = b" \t\r\n"
#: What a lifted value becomes in the document the JSON parser sees: "\x00" + its index
#: (no base64 string holds a NUL, so nothing the API sends is mistaken for one).
_LIFTED = "\x00"


def lift_inline_data(payload: bytes | bytearray) -> tuple[bytes | bytearray, list[memoryview]]:
    """The answer with each long `"data": "..."` value (the base64 of an image: 7 MB at
    2048²) replaced by a short placeholder, and those values as views of `payload`.

    The JSON parser then reads a few kilobytes instead of decoding and scanning megabytes
    of base64 as UTF-8 text (~10 ms of CPU per 2048² answer, all of it holding the GIL), and
    pybase64 decodes each value straight from the response buffer. Only values without a
    backslash are lifted (base64 needs no JSON escape, but `\\/` would be valid JSON: such
    a value is left to the parser). A `"data"` inside a string can't match: its quotes would
    be escaped. Release the views (`release_views`) before resizing `payload`."""
    view = memoryview(payload)
    pieces: list[bytes | memoryview] = []
    blobs: list[memoryview] = []
    start = position = 0
    end = len(payload)
    while (key := payload.find(_DATA_KEY, position)) >= 0:
        position = key + 1
        cursor = key + len(_DATA_KEY)
        while cursor < end and payload[cursor] in _JSON_SPACE:
            cursor += 1
        if cursor >= end or payload[cursor] != ord(":"):
            continue
        cursor += 1
        while cursor < end and payload[cursor] in _JSON_SPACE:
            cursor += 1
        if cursor >= end or payload[cursor] != ord('"'):
            continue
        first = cursor + 1
        closing = payload.find(b'"', first)
        if closing < 0:
            break  # unterminated: the parser reports it
        position = closing + 1
        if closing - first < LIFT_MIN_BYTES or payload.find(b"\\", first, closing) >= 0:
            continue
        pieces.append(view[start:first])
        pieces.append(f"\\u0000{len(blobs)}".encode("ascii"))
        blobs.append(view[first:closing])
        start = closing
    if not blobs:
        view.release()
        return payload, []
    pieces.append(view[start:])
    lifted = b"".join(pieces)
    release_views([p for p in pieces if isinstance(p, memoryview)])
    view.release()
    return lifted, blobs


def release_views(views: list[memoryview]) -> None:
    """Release views of a buffer (so it can be cleared)."""
    for item in views:
        item.release()


def _parse_answer(payload: bytes | bytearray) -> Answer:
    lifted, blobs = lift_inline_data(payload)
    try:
        return _parse_document(lifted, blobs)
    finally:
        release_views(blobs)
        if isinstance(payload, bytearray):
            payload.clear()  # the caller's own buffer: its megabytes are decoded by now


def _parse_document(payload: bytes | bytearray, blobs: list[memoryview]) -> Answer:
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("response is not valid JSON") from None
    if isinstance(payload, bytearray) and not blobs:
        payload.clear()  # the caller's own buffer: free megabytes before decoding
    if not isinstance(document, dict):
        raise MalformedResponse("response JSON is not an object")

    candidates = _as_list(document.get("candidates"))
    candidate = _as_dict(candidates[0]) if candidates else {}
    raw_parts = _as_list(_as_dict(candidate.get("content")).get("parts"))

    images: list[RawImage] = []
    parts: list[AnswerPart] = []
    texts: list[str] = []
    thoughts = 0
    for raw_part in raw_parts:
        part = _as_dict(raw_part)
        if part.get("thought") is True:
            thoughts += 1
            continue
        signature = _as_str(part.get("thoughtSignature", part.get("thought_signature")))
        inline = part.get("inlineData", part.get("inline_data"))
        if isinstance(inline, dict):
            encoded = inline.pop("data", None)  # pop: this string is the only copy left
            if not isinstance(encoded, str) or not encoded:
                raise MalformedResponse("image part has no data")
            mime = _as_str(inline.get("mimeType", inline.get("mime_type")))
            images.append(RawImage(decode_base64(_unlift(encoded, blobs)), mime, signature))
            del encoded
            parts.append(AnswerPart(image_index=len(images) - 1, thought_signature=signature))
            continue
        text = part.get("text")
        if isinstance(text, str):
            if text.strip():
                texts.append(text.strip())
            if text.strip() or signature:
                parts.append(AnswerPart(text=text, thought_signature=signature))
    text_out = "\n".join(texts) or None
    finish_reason = _as_str(candidate.get("finishReason"))
    finish_message = _as_str(candidate.get("finishMessage"))

    if not images:
        feedback = _as_dict(document.get("promptFeedback"))
        block_reason = _as_str(feedback.get("blockReason"))
        if block_reason:
            raise ContentBlocked(
                block_reason,
                stage="prompt",
                text=text_out,
                finish_message=_as_str(feedback.get("blockReasonMessage")) or finish_message,
            )
        reason = (
            finish_reason
            if finish_reason and finish_reason not in OK_FINISH_REASONS
            else "NO_IMAGE"
        )
        raise ContentBlocked(reason, text=text_out, finish_message=finish_message)

    usage = parse_usage(document.get("usageMetadata"))
    return Answer(
        images=images,
        parts=parts,
        text=text_out,
        usage=usage,
        model=_as_str(document.get("modelVersion")),
        finish_reason=finish_reason,
        finish_message=finish_message,
        thoughts=thoughts,
        model_status=parse_model_status(document.get("modelStatus")),
        grounding=parse_grounding(candidate.get("groundingMetadata")),
    )


def parse_usage(metadata: object) -> dict[str, int]:
    """`usageMetadata` as flat counts: the integer fields as they are (`promptTokenCount`,
    `candidatesTokenCount`, `thoughtsTokenCount`, `totalTokenCount`...) and each per-modality
    breakdown as `<field>.<MODALITY>` (e.g. `candidatesTokensDetails.IMAGE`: the image tokens,
    which are billed at their own rate)."""
    usage: dict[str, int] = {}
    for key, value in _as_dict(metadata).items():
        if isinstance(value, int) and not isinstance(value, bool):
            usage[key] = value
        elif isinstance(value, list) and key.endswith("TokensDetails"):
            for item in value:
                detail = _as_dict(item)
                modality = _as_str(detail.get("modality")) or "MODALITY_UNSPECIFIED"
                count = detail.get("tokenCount")
                if isinstance(count, int) and not isinstance(count, bool):
                    name = f"{key}.{modality}"
                    usage[name] = usage.get(name, 0) + count
    return usage


def _unlift(value: str, blobs: list[memoryview]) -> str | memoryview:
    """A `data` value as sent: the lifted view its placeholder names, else the value."""
    if value.startswith(_LIFTED) and value[1:].isdigit() and int(value[1:]) < len(blobs):
        return blobs[int(value[1:])]
    return value


def decode_base64(encoded: str | memoryview) -> bytes:
    """Strict standard base64 (what the API sends), URL-safe accepted; no copies of `encoded`.

    pybase64 (SIMD) decodes a 7 MB answer in ~0.3 ms where `binascii` takes ~16 ms, all of it
    holding the GIL (measured in bench_nanobanana)."""
    try:
        return pybase64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        pass
    text = encoded if isinstance(encoded, str) else bytes(encoded).decode("ascii", "replace")
    if "-" in text or "_" in text:
        try:
            return pybase64.b64decode(encoded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            pass
    raise MalformedResponse("image data is not valid base64")


# --------------------------------------------------------------------------------------------
# Error answers
# --------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
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


def parse_duration(value: object) -> float | None:
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


def scrub(text: str, secret: str) -> str:
    """Cut a server message for logs, masking the API key should the server echo it."""
    if len(secret) >= 8:
        text = text.replace(secret, "***")
    return text[:300]


@dataclass(frozen=True)
class _Violation:
    quota_id: str
    metric: str
    value: str | None


def _violations(detail: Mapping[str, Any]) -> list[_Violation]:
    found = []
    for raw in _as_list(detail.get("violations")):
        item = _as_dict(raw)
        value = item.get("quotaValue")
        found.append(
            _Violation(
                quota_id=str(item.get("quotaId") or ""),
                metric=str(item.get("quotaMetric") or ""),
                value=str(value) if value is not None else None,
            )
        )
    return found


def _is_html(headers: Mapping[str, str], payload: bytes | bytearray) -> bool:
    content_type = headers.get("Content-Type", "").lower()
    return "text/html" in content_type or bytes(payload[:64]).lstrip().lower().startswith(
        (b"<!doctype html", b"<html")
    )


def _quota_error(
    summary: str,
    message: str,
    violations: list[_Violation],
    retry_delay: float | None,
    model: str,
) -> RateLimited:
    """A 429 as a retryable rate limit, or a QuotaExhausted that no waiting will fix."""
    zero = next((v for v in violations if v.value == "0"), None)
    if zero is not None or _LIMIT_ZERO_RE.search(message):
        quota_id = zero.quota_id if zero else None
        return QuotaExhausted(
            summary,
            kind="none",
            quota_id=quota_id,
            retry_after=retry_delay,
            owner_hint=(
                f"the Gemini API gives this key a quota of 0 for {model}"
                + (f" ({quota_id})" if quota_id else "")
                + ": image models need a paid plan. Enable billing for the key's project in "
                "Google AI Studio (https://aistudio.google.com/usage), or set "
                "NANOBANANA_MODEL to a model your plan includes"
            ),
        )
    daily = next((v for v in violations if "perday" in v.quota_id.lower()), None)
    if daily is not None:
        return QuotaExhausted(
            summary,
            kind="daily",
            quota_id=daily.quota_id,
            retry_after=retry_delay,
            owner_hint=(
                f"the daily Gemini API quota {daily.quota_id} for {model} is used up; it "
                "resets at midnight Pacific time. Raise the project's usage tier in Google AI "
                "Studio (https://aistudio.google.com/usage) for more"
                + (
                    " (a free-tier quota: image models need billing enabled on the project)"
                    if "freetier" in daily.quota_id.lower()
                    else ""
                )
            ),
        )
    return RateLimited(summary, retry_after=retry_delay)


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    payload: bytes | bytearray,
    *,
    api_key: str,
    model: str,
) -> tuple[NanobananaError, float | None]:
    """Map a non-200 answer to an error, plus the delay the server asked for
    (`RetryInfo.retryDelay` in the body, or a `Retry-After` header a proxy may add)."""
    api_status = ""
    message = ""
    retry_delay: float | None = None
    reasons: set[str] = set()
    violations: list[_Violation] = []
    html = _is_html(headers, payload)
    document: Any = None
    if payload and not html:
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            document = None
    # Google sometimes wraps the error in a one-element list.
    if isinstance(document, list) and document:
        document = document[0]
    error = _as_dict(_as_dict(document).get("error"))
    if error:
        api_status = _as_str(error.get("status")) or ""
        message = _as_str(error.get("message")) or ""
        for raw_detail in _as_list(error.get("details")):
            detail = _as_dict(raw_detail)
            kind = str(detail.get("@type", ""))
            if kind.endswith("google.rpc.RetryInfo"):
                retry_delay = parse_duration(detail.get("retryDelay"))
            elif kind.endswith("google.rpc.ErrorInfo"):
                reason = _as_str(detail.get("reason"))
                if reason:
                    reasons.add(reason)
            elif kind.endswith("google.rpc.QuotaFailure"):
                violations.extend(_violations(detail))

    header_delay = parse_retry_after(headers.get("Retry-After"))
    delays = [d for d in (retry_delay, header_delay) if d is not None]
    server_delay = max(delays) if delays else None

    summary = f"HTTP {status}"
    if api_status:
        summary += f" {api_status}"
    if message:
        summary += f": {scrub(message, api_key)}"
    elif html:
        summary += " (an HTML error page from Google's front end)"
    lowered = message.lower()

    result: NanobananaError
    if status in (401, 403) or api_status == "UNAUTHENTICATED" or "API_KEY_INVALID" in reasons:
        result = AuthenticationFailed(
            summary,
            status=status,
            owner_hint="the Gemini API refused the key: check GEMINI_API_KEY (create one in "
            "Google AI Studio) and that the Generative Language API is enabled for it",
        )
    elif status == 429:
        result = _quota_error(summary, message, violations, server_delay, model)
    elif status in (408, 500, 502, 503, 504):
        result = ProviderUnavailable(summary, status=status)
    elif status == 404:
        # Google answers a retired or unknown model with 404 NOT_FOUND ("models/X is not
        # found for API version v1beta, or is not supported for generateContent").
        result = ModelNotFound(summary, model=model, status=status)
    elif status == 413 or lowered.startswith(_PAYLOAD_TOO_LARGE):
        result = InvalidRequest(
            summary,
            code="too_large",
            user_message="The request is too large for the image service. Try smaller or "
            "fewer images.",
            status=status,
        )
    elif api_status == "FAILED_PRECONDITION" and "location" in lowered:
        result = InvalidRequest(
            summary,
            code="location",
            user_message="The image service isn't available where this bot runs. Please tell "
            "the bot's owner.",
            status=status,
            owner_hint="the Gemini API is not offered in the region this bot connects from: "
            "run it in a supported region (https://ai.google.dev/gemini-api/docs/"
            "available-regions) or route it through a proxy with NANOBANANA_BASE_URL",
        )
    elif api_status == "FAILED_PRECONDITION":
        result = InvalidRequest(
            summary,
            code="billing",
            user_message="The bot's Google account isn't set up for image generation. Please "
            "tell the bot's owner.",
            status=status,
            owner_hint="the Gemini API refused the request as a precondition failure (usually "
            "the free tier is not offered here): enable billing for the key's project in "
            "Google AI Studio (https://aistudio.google.com/usage)",
        )
    elif 400 <= status < 500 and (refused := refused_option(message)) is not None:
        result = InvalidRequest(summary, code=refused, status=status)
    elif 400 <= status < 500:
        result = InvalidRequest(summary, status=status)
    else:
        result = ProviderUnavailable(summary, status=status, retryable=status >= 500)
    return result, server_delay


def parse_text_answer(payload: bytes | bytearray, model: str) -> TextAnswer:
    """A text model's 200 answer: its text (thought parts left out). Raises ContentBlocked
    when the prompt was blocked or the answer holds no text, MalformedResponse when it is
    not an answer at all. An answer cut at its token limit (MAX_TOKENS) keeps its text."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("response is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedResponse("response JSON is not an object")
    candidates = _as_list(document.get("candidates"))
    candidate = _as_dict(candidates[0]) if candidates else {}
    texts = []
    for raw_part in _as_list(_as_dict(candidate.get("content")).get("parts")):
        part = _as_dict(raw_part)
        text = part.get("text")
        if part.get("thought") is not True and isinstance(text, str) and text.strip():
            texts.append(text.strip())
    finish_reason = _as_str(candidate.get("finishReason"))
    finish_message = _as_str(candidate.get("finishMessage"))
    if not texts:
        feedback = _as_dict(document.get("promptFeedback"))
        block_reason = _as_str(feedback.get("blockReason"))
        if block_reason:
            raise ContentBlocked(
                block_reason,
                stage="prompt",
                finish_message=_as_str(feedback.get("blockReasonMessage")) or finish_message,
            )
        reason = finish_reason if finish_reason and finish_reason not in OK_FINISH_REASONS else ""
        raise ContentBlocked(reason or "NO_TEXT", finish_message=finish_message)
    return TextAnswer(
        text="\n".join(texts),
        model=_as_str(document.get("modelVersion")) or model,
        usage=parse_usage(document.get("usageMetadata")),
        finish_reason=finish_reason,
    )
