"""The wire format on bodies shaped exactly like the real API's (recorded answers and errors)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from bot.nanobanana import (
    AuthenticationFailed,
    ContentBlocked,
    InputImage,
    InvalidRequest,
    MalformedResponse,
    ModelPart,
    NanobananaError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    Turn,
)
from bot.nanobanana.wire import (
    LIFT_MIN_BYTES,
    build_body,
    error_for_status,
    lift_inline_data,
    parse_answer,
    release_views,
)
from tests.fakes.nanobanana_server import GOOGLE_502_HTML

KEY = "AIzaFAKE-wire-key-0123456789abcdefghijklm"
MODEL = "gemini-2.5-flash-image"


def jpeg(width: int = 24, height: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "navy").save(out, "JPEG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ------------------------------------------------------------------------------ requests


def test_body_of_a_first_turn() -> None:
    body = json.loads(
        build_body("a cat", [InputImage(b"\x89PNG", "image/png")], aspect_ratio="4:5",
                   image_size="2K")
    )  # fmt: skip
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "a cat"},
                    {"inline_data": {"mime_type": "image/png", "data": b64(b"\x89PNG")}},
                ],
            }
        ],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "4:5", "imageSize": "2K"},
        },
    }


def test_body_of_a_later_turn_sends_the_model_turn_with_its_signatures() -> None:
    turn = Turn(
        "a knight",
        (
            ModelPart(text="Here is your knight.", thought_signature="c2lnMQ=="),
            ModelPart(image=InputImage(b"JPEGDATA", "image/jpeg"), thought_signature="c2lnMg=="),
            ModelPart(),  # nothing to send: skipped
        ),
    )
    body = json.loads(build_body("now in winter", history=[turn]))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a knight"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Here is your knight.", "thought_signature": "c2lnMQ=="},
                {
                    "inline_data": {"mime_type": "image/jpeg", "data": b64(b"JPEGDATA")},
                    "thought_signature": "c2lnMg==",
                },
            ],
        },
        {"role": "user", "parts": [{"text": "now in winter"}]},
    ]
    assert body["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}


# ------------------------------------------------------------------------------ answers


def test_a_pro_answer_with_thoughts_and_signatures() -> None:
    final, thought = jpeg(40, 30), jpeg(8, 6)
    answer = parse_answer(
        json.dumps(
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [
                                {"text": "**Composing the scene**", "thought": True},
                                {"inlineData": {"mimeType": "image/png", "data": b64(thought)},
                                 "thought": True},
                                {"inlineData": {"mimeType": "image/jpeg", "data": b64(final)},
                                 "thoughtSignature": "RXhhbXBsZVNpZw=="},
                            ],
                            "role": "model",
                        },
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 12, "candidatesTokenCount": 1120, "totalTokenCount": 1344,
                    "thoughtsTokenCount": 212,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
                },
                "modelVersion": "gemini-3-pro-image-preview",
                "responseId": "VbRVaeKZLv2GxN8Pj5S1gAU",
            }
        ).encode()
    )  # fmt: skip
    assert [i.data for i in answer.images] == [final]
    assert answer.images[0].thought_signature == "RXhhbXBsZVNpZw=="
    assert answer.thoughts == 2 and answer.text is None
    assert answer.usage == {
        "promptTokenCount": 12, "candidatesTokenCount": 1120, "totalTokenCount": 1344,
        "thoughtsTokenCount": 212, "promptTokensDetails.TEXT": 12,
    }  # fmt: skip
    assert answer.model == "gemini-3-pro-image-preview"


@pytest.mark.parametrize(
    ("document", "stage", "reason", "message"),
    [
        (
            {"candidates": [{"content": {}, "finishReason": "NO_IMAGE", "index": 0}],
             "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
             "modelVersion": MODEL, "responseId": "abc"},
            "output", "NO_IMAGE", None,
        ),
        (
            {"candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0,
                             "finishMessage": "Unable to show the generated image."}],
             "modelVersion": MODEL},
            "output", "IMAGE_SAFETY", "Unable to show the generated image.",
        ),
        (
            {"promptFeedback": {"blockReason": "IMAGE_SAFETY"},
             "usageMetadata": {"promptTokenCount": 9}, "modelVersion": MODEL},
            "prompt", "IMAGE_SAFETY", None,
        ),
        (
            {"promptFeedback": {"blockReason": "OTHER"}, "modelVersion": MODEL},
            "prompt", "OTHER", None,
        ),
        (
            {"candidates": [{"content": {"parts": [{"text": "I can't draw that."}],
                                         "role": "model"}, "finishReason": "STOP"}]},
            "output", "NO_IMAGE", None,
        ),
    ],
)  # fmt: skip
def test_answers_without_an_image(
    document: dict[str, Any], stage: str, reason: str, message: str | None
) -> None:
    with pytest.raises(ContentBlocked) as caught:
        parse_answer(json.dumps(document).encode())
    assert (caught.value.stage, caught.value.reason) == (stage, reason)
    assert caught.value.finish_message == message


# ------------------------------------------------------------------------------ errors


def error(status: int, api_status: str, message: str, *details: dict[str, Any]) -> bytes:
    body: dict[str, Any] = {"code": status, "message": message, "status": api_status}
    if details:
        body["details"] = list(details)
    return json.dumps({"error": body}).encode()


HELP = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [{"description": "Learn more about Gemini API quotas",
               "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}],
}  # fmt: skip
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


def violation(quota_id: str, value: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": MODEL},
    }
    if value is not None:
        item["quotaValue"] = value
    return item


def quota(*violations: dict[str, Any]) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": list(violations)}


def retry(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


CASES: list[tuple[str, int, bytes, dict[str, str], type[NanobananaError], str, float | None]] = [
    (
        "429 limit 0 (no billing)", 429,
        error(429, "RESOURCE_EXHAUSTED",
              QUOTA_MESSAGE + " \n* Quota exceeded for metric: generativelanguage.googleapis.com/"
              "generate_content_free_tier_requests, limit: 0, model: gemini-2.5-flash-image\n"
              "Please retry in 54.3s.",
              quota(violation("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "0")),
              HELP, retry("54s")),
        {}, QuotaExhausted, "none", 54.0,
    ),
    (
        "429 free tier per minute and per day", 429,
        error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
              quota(violation("GenerateContentInputTokensPerModelPerMinute-FreeTier"),
                    violation("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                    violation("GenerateRequestsPerDayPerProjectPerModel-FreeTier")),
              HELP, retry("47s")),
        {}, QuotaExhausted, "daily", 47.0,
    ),
    (
        "429 per minute", 429,
        error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE,
              quota(violation("GenerateContentInputTokensPerModelPerMinute-FreeTier", "250000")),
              HELP, retry("26s")),
        {}, RateLimited, "retry", 26.0,
    ),
    (
        "429 with only a help link", 429,
        error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE, HELP), {}, RateLimited, "retry", None,
    ),
    (
        "400 payload too large", 400,
        error(400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes."),
        {}, InvalidRequest, "too_large", None,
    ),
    (
        "400 user location", 400,
        error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        {}, InvalidRequest, "location", None,
    ),
    (
        "400 free tier not offered", 400,
        error(400, "FAILED_PRECONDITION", "Gemini API free tier is not available in your "
              "country. Please enable billing on your project in Google AI Studio."),
        {}, InvalidRequest, "billing", None,
    ),
    (
        "400 bad key", 400,
        error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
              {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
               "domain": "googleapis.com"}),
        {}, AuthenticationFailed, "", None,
    ),
    (
        "502 HTML page", 502, GOOGLE_502_HTML.encode(),
        {"Content-Type": "text/html; charset=UTF-8"}, ProviderUnavailable, "retry", None,
    ),
    (
        "503 overloaded", 503,
        error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        {}, ProviderUnavailable, "retry", None,
    ),
    (
        "error wrapped in a list", 500,
        b"[" + error(500, "INTERNAL", "An internal error has occurred.") + b"]",
        {}, ProviderUnavailable, "retry", None,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "payload", "headers", "kind", "detail", "delay"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_real_error_bodies(
    status: int,
    payload: bytes,
    headers: dict[str, str],
    kind: type[NanobananaError],
    detail: str,
    delay: float | None,
) -> None:
    found, server_delay = error_for_status(status, headers, payload, api_key=KEY, model=MODEL)
    assert type(found) is kind
    assert server_delay == delay
    if isinstance(found, QuotaExhausted):
        assert found.kind == detail and found.retryable is False and found.owner_hint
    elif isinstance(found, InvalidRequest):
        assert found.code == detail and found.retryable is False
    elif detail == "retry":
        assert found.retryable is True
    assert "<" not in str(found) and KEY not in str(found)


# Long base64 values are read without the JSON parser (lift_inline_data) -------------------


def _answer_bytes(*datas: str, text: str = "Here you go", indent: int | None = None) -> bytes:
    parts: list[dict[str, Any]] = [{"text": text}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": d}, "thoughtSignature": "c2ln"}
              for d in datas]  # fmt: skip
    document = {"candidates": [{"content": {"role": "model", "parts": parts},
                                "finishReason": "STOP"}],
                "usageMetadata": {"totalTokenCount": 1290}}  # fmt: skip
    return json.dumps(document, indent=indent).encode()


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_long_image_data_is_lifted_and_read_exactly(indent: int | None) -> None:
    first, second = _png(96, 64), _png(64, 96)
    payload = bytearray(_answer_bytes(b64(first), b64(second), indent=indent))
    lifted, blobs = lift_inline_data(bytes(payload))
    assert len(blobs) == 2 and len(lifted) < 1000  # the parser sees a few hundred bytes
    release_views(blobs)
    answer = parse_answer(payload)
    assert [i.data for i in answer.images] == [first, second]
    assert [i.thought_signature for i in answer.images] == ["c2ln", "c2ln"]
    assert answer.text == "Here you go" and answer.usage == {"totalTokenCount": 1290}
    assert payload == bytearray()  # the caller's buffer is freed once decoded


def test_values_the_parser_must_read_are_left_to_it() -> None:
    big = _png(96, 64)
    escaped = b64(big).replace("/", "\\/")  # valid JSON: "\/" is "/"
    payload = json.dumps({"candidates": [{"content": {"parts": [
        {"text": 'a quote: \\"data\\": \\"' + "A" * 5000 + '\\"'},
        {"inlineData": {"mimeType": "image/png", "data": "PLACEHOLDER"}},
    ]}}]}).encode().replace(b"PLACEHOLDER", escaped.encode())  # fmt: skip
    lifted, blobs = lift_inline_data(payload)
    assert blobs == [] and lifted is payload  # nothing lifted: an escape, and a string
    answer = parse_answer(payload)
    assert answer.images[0].data == big
    assert answer.text is not None and answer.text.startswith('a quote: \\"data\\"')


def test_short_data_is_left_to_the_parser_and_bad_lifted_data_is_malformed() -> None:
    small = jpeg()
    assert lift_inline_data(_answer_bytes(b64(small)))[1] == []
    assert parse_answer(_answer_bytes(b64(small))).images[0].data == small
    with pytest.raises(MalformedResponse, match="base64"):
        parse_answer(_answer_bytes("!" * (LIFT_MIN_BYTES + 4)))
    with pytest.raises(MalformedResponse, match="JSON"):
        parse_answer(_answer_bytes(b64(_png(96, 64)))[:-3])  # cut short
