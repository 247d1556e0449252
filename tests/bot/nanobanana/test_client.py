"""NanobananaClient against the fake Nano Banana server over real loopback HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.config import Settings
from bot.nanobanana import (
    PROFILES,
    SUPPORTED_ASPECT_RATIOS,
    AuthenticationFailed,
    ContentBlocked,
    GeneratedImage,
    InputImage,
    InvalidRequest,
    MalformedResponse,
    ModelPart,
    NanobananaClient,
    NanobananaError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    Turn,
)
from bot.nanobanana.client import _read_answer
from bot.nanobanana.wire import parse_retry_after as _parse_retry_after
from tests.fakes.nanobanana_server import (
    MODELS,
    Behaviour,
    FakeNanobanana,
    Mode,
    image_dimensions,
)

KEY = "AIzaFAKE-test-key-0123456789abcdefghijkl"
MiB = 1024 * 1024


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
async def fake() -> AsyncIterator[FakeNanobanana]:
    async with FakeNanobanana() as server:
        yield server


def make_client(fake: FakeNanobanana, **options: Any) -> NanobananaClient:
    settings: dict[str, Any] = {
        "base_url": fake.base_url,
        "timeout": 5.0,
        "max_attempts": 3,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    settings.update(options)
    return NanobananaClient(KEY, **settings)


@pytest.fixture
async def client(fake: FakeNanobanana) -> AsyncIterator[NanobananaClient]:
    async with make_client(fake) as nano:
        yield nano


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def small_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(Image.new("RGB", size, (200, 40, 40)), fmt)


@functools.cache
def noisy_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """Incompressible noise: PNG bytes about width * height * channels."""
    raw = random.Random(f"{width}x{height}{mode}").randbytes(width * height * len(mode))
    return encode(Image.frombytes(mode, (width, height), raw), "PNG", compress_level=0)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ------------------------------------------------------------------------------ success


async def test_generate_sends_the_documented_request(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    source = small_image("PNG")
    result = await client.generate(
        "a banana in a tuxedo", [InputImage(source, "image/png")], aspect_ratio="16:9"
    )

    assert len(fake.requests) == 1
    seen = fake.requests[0]
    assert seen.method == "POST"
    assert seen.path == "/v1beta/models/gemini-nano-banana-2.1:generateContent"
    assert seen.api_key == KEY
    assert seen.json["contents"][0]["role"] == "user"
    parts = seen.json["contents"][0]["parts"]
    assert parts[0] == {"text": "a banana in a tuxedo"}
    assert parts[1]["inline_data"]["mime_type"] == "image/png"
    assert parts[1]["inline_data"]["data"] == base64.b64encode(source).decode()
    assert seen.json["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9"},
    }

    assert isinstance(result, GeneratedImage)
    assert (result.width, result.height) == (1024, 576) == size_of(result.data)
    assert result.mime_type == "image/jpeg"  # today's models answer JPEG, after thinking
    assert result.model == "gemini-nano-banana-2.1"
    assert result.attempts == 1
    assert result.latency > 0
    assert result.text is None
    assert result.thought_signatures == (fake.signatures[-1],)
    assert result.usage == {
        "promptTokenCount": seen_usage_prompt(seen.prompt or "", 1),
        "candidatesTokenCount": 1120,
        "thoughtsTokenCount": 212,
        "totalTokenCount": seen_usage_prompt(seen.prompt or "", 1) + 1120 + 212,
        "promptTokensDetails.TEXT": seen_usage_prompt(seen.prompt or "", 0),
        "promptTokensDetails.IMAGE": 258,
    }
    assert "data" not in repr(result)  # no megabytes of bytes in reprs


def seen_usage_prompt(prompt: str, images: int) -> int:
    return len(prompt) // 4 + 1 + 258 * images


async def test_no_aspect_ratio_means_no_image_config(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    result = await client.generate("a cat")
    assert fake.requests[0].json["generationConfig"] == {"responseModalities": ["TEXT", "IMAGE"]}
    assert (result.width, result.height) == (1024, 1024)


@pytest.mark.parametrize("ratio", ["1:1", "9:16", "21:9", "4:5"])
async def test_width_and_height_come_from_the_returned_image(
    fake: FakeNanobanana, client: NanobananaClient, ratio: str
) -> None:
    result = await client.generate("a cat", aspect_ratio=ratio)
    assert (result.width, result.height) == image_dimensions(ratio, 1024) == size_of(result.data)


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_inputs_are_sent_untouched_with_the_sniffed_mime_type(
    fake: FakeNanobanana, client: NanobananaClient, fmt: str, mime: str
) -> None:
    data = small_image(fmt)
    # The caller's mime type is wrong on purpose: the bytes decide.
    await client.generate("edit this", [InputImage(data, "image/gif")])
    assert fake.requests[0].images == [(mime, data)]


async def test_thought_images_are_skipped(fake: FakeNanobanana, client: NanobananaClient) -> None:
    fake.script([Behaviour(Mode.THOUGHTS, thoughts=3, text="Here is your banana.")])
    result = await client.generate("a banana", aspect_ratio="3:2")
    assert (result.width, result.height) == image_dimensions("3:2", 1024)
    assert result.text == "Here is your banana."  # thought text excluded


async def test_concurrent_calls_share_one_client(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    results = await asyncio.gather(*(client.generate(f"cat {n}") for n in range(8)))
    assert len(results) == 8 and len(fake.requests) == 8
    assert {r.width for r in results} == {1024}


# ------------------------------------------------------------------------------ no image


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT"])
async def test_blocked_prompt(fake: FakeNanobanana, client: NanobananaClient, reason: str) -> None:
    fake.script([Behaviour(Mode.BLOCK_PROMPT, reason=reason)])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("something bad")
    assert caught.value.reason == reason
    assert caught.value.retryable is False
    assert len(fake.requests) == 1


async def test_blocked_output(fake: FakeNanobanana, client: NanobananaClient) -> None:
    fake.script([Mode.BLOCK_OUTPUT])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("something borderline")
    assert caught.value.reason == "IMAGE_SAFETY"
    assert "blocked" in caught.value.user_message
    assert len(fake.requests) == 1


async def test_text_only_answer_is_no_image(fake: FakeNanobanana, client: NanobananaClient) -> None:
    fake.script([Behaviour(Mode.TEXT_ONLY, text="I would rather describe it.")])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("a cat")
    assert caught.value.reason == "NO_IMAGE"
    assert caught.value.text == "I would rather describe it."


# ------------------------------------------------------------------------------ retries


@pytest.mark.parametrize(
    "first",
    [
        Behaviour(Mode.RATE_LIMIT, delay=0.05, header=True),
        Behaviour(Mode.RATE_LIMIT, delay=0.05),
        Behaviour(Mode.UNAVAILABLE, delay=0.05),
    ],
    ids=["retry-after-header-from-a-proxy", "retry-info-in-the-body", "503-retry-after"],
)
async def test_server_given_delay_is_honoured(
    fake: FakeNanobanana, client: NanobananaClient, first: Behaviour
) -> None:
    fake.script([first])
    started = time.perf_counter()
    result = await client.generate("a cat")
    assert time.perf_counter() - started >= 0.05
    assert result.attempts == 2
    assert [r.status for r in fake.requests] == [first_status(first), 200]


def first_status(behaviour: Behaviour) -> int:
    return 503 if behaviour.mode is Mode.UNAVAILABLE else 429


@pytest.mark.parametrize(
    "first",
    [
        Mode.SERVER_ERROR,
        Mode.UNAVAILABLE,
        *(Behaviour(Mode.ERROR, status=s) for s in (408, 502, 504)),
    ],
)
async def test_transient_errors_are_retried(
    fake: FakeNanobanana, client: NanobananaClient, first: Mode | Behaviour
) -> None:
    fake.script([first])
    result = await client.generate("a cat")
    assert result.attempts == 2
    assert len(fake.requests) == 2


async def test_dropped_connection_is_retried(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.script([Mode.DISCONNECT])
    result = await client.generate("a cat")
    assert result.attempts == 2


async def test_persistent_503_stops_at_max_attempts(fake: FakeNanobanana) -> None:
    fake.default = Mode.UNAVAILABLE
    async with make_client(fake, max_attempts=4) as nano:
        with pytest.raises(ProviderUnavailable) as caught:
            await nano.generate("a cat")
    assert len(fake.requests) == 4
    assert caught.value.attempts == 4
    assert caught.value.status == 503
    assert caught.value.retryable is True


async def test_persistent_429_raises_rate_limited_with_retry_after(fake: FakeNanobanana) -> None:
    fake.default = Behaviour(Mode.RATE_LIMIT_DETAIL, delay=0.02)
    async with make_client(fake, max_attempts=3) as nano:
        started = time.perf_counter()
        with pytest.raises(RateLimited) as caught:
            await nano.generate("a cat")
    assert time.perf_counter() - started >= 0.04  # two waits of the server's delay
    assert len(fake.requests) == 3
    assert caught.value.retry_after == pytest.approx(0.02)


async def test_backoff_is_capped_by_backoff_max(fake: FakeNanobanana) -> None:
    fake.default = Mode.SERVER_ERROR
    async with make_client(fake, max_attempts=4, backoff_base=10.0, backoff_max=0.02) as nano:
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable):
            await nano.generate("a cat")
    assert time.perf_counter() - started < 3.0  # uncapped, the waits would be 10 s+
    assert len(fake.requests) == 4


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (Behaviour(Mode.BAD_REQUEST), InvalidRequest),
        (Behaviour(Mode.FORBIDDEN), AuthenticationFailed),
        (Behaviour(Mode.ERROR, status=401), AuthenticationFailed),
        (Behaviour(Mode.NOT_FOUND), InvalidRequest),
    ],
    ids=["400", "403", "401", "404"],
)
async def test_client_errors_are_never_retried(
    fake: FakeNanobanana, behaviour: Behaviour, error: type[NanobananaError]
) -> None:
    fake.default = behaviour
    async with make_client(fake, max_attempts=4) as nano:
        with pytest.raises(error) as caught:
            await nano.generate("a cat")
    assert len(fake.requests) == 1
    assert caught.value.attempts == 1
    assert caught.value.retryable is False


async def test_invalid_api_key_is_authentication_failure(fake: FakeNanobanana) -> None:
    fake.expected_api_key = "some-other-key-entirely"
    async with make_client(fake) as nano:
        with pytest.raises(AuthenticationFailed):
            await nano.generate("a cat")
    assert len(fake.requests) == 1


async def test_fake_requires_a_key(fake: FakeNanobanana) -> None:
    url = f"{fake.base_url}/v1beta/models/gemini-nano-banana-2.1:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        assert response.status == 403
        error = (await response.json())["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED" and error["message"]


async def test_malformed_json_is_malformed_response(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.script([Mode.MALFORMED_JSON])
    with pytest.raises(MalformedResponse):
        await client.generate("a cat")
    assert len(fake.requests) == 1


async def test_truncated_base64_is_malformed_response(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.script([Mode.TRUNCATED_BASE64])
    with pytest.raises(MalformedResponse):
        await client.generate("a cat")


# ------------------------------------------------------------------------------ time limits


async def test_timeout_becomes_provider_unavailable_after_retries(fake: FakeNanobanana) -> None:
    fake.default = Mode.HANG
    async with make_client(fake, timeout=0.2, max_attempts=2) as nano:
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable) as caught:
            await nano.generate("a cat")
    elapsed = time.perf_counter() - started
    assert 0.4 <= elapsed < 4.0
    assert len(fake.requests) == 2
    assert caught.value.attempts == 2


async def test_deadline_cuts_a_hanging_request_short(fake: FakeNanobanana) -> None:
    fake.default = Mode.HANG
    async with make_client(fake, timeout=10.0, max_attempts=4, deadline=0.3) as nano:
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable):
            await nano.generate("a cat")
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 3.0
    assert len(fake.requests) == 1


async def test_never_sleeps_past_the_deadline(fake: FakeNanobanana) -> None:
    fake.default = Behaviour(Mode.RATE_LIMIT_DETAIL, delay=5.0)
    async with make_client(fake, max_attempts=4, deadline=1.0) as nano:
        started = time.perf_counter()
        with pytest.raises(RateLimited) as caught:
            await nano.generate("a cat")
    assert time.perf_counter() - started < 2.5  # failed at once instead of waiting 5 s
    assert caught.value.retry_after == pytest.approx(5.0)
    assert len(fake.requests) == 1


async def test_connection_refused_is_provider_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nano = NanobananaClient(
        KEY, base_url=f"http://127.0.0.1:{port}", max_attempts=2, backoff_base=0.01
    )
    async with nano:
        with pytest.raises(ProviderUnavailable) as caught:
            await nano.generate("a cat")
    assert caught.value.attempts == 2


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("prompt", "images", "ratio"),
    [
        ("a cat", [], "7:3"),
        ("a cat", [], ""),
        ("   ", [], None),
        ("", [], None),
        ("a cat", [InputImage(small_image(), "image/png")] * 15, None),
        ("a cat", [InputImage(b"definitely not an image", "image/png")], None),
        ("a cat", [InputImage(small_image("GIF"), "image/gif")], None),
        ("a cat", [InputImage(small_image("BMP"), "image/png")], None),
        ("a cat", [InputImage(small_image()[:60], "image/png")], None),
        ("a cat", [InputImage(b"", "image/png")], None),
    ],
    ids=[
        "bad-ratio",
        "empty-ratio",
        "blank-prompt",
        "empty-prompt",
        "fifteen-images",
        "not-an-image",
        "gif",
        "bmp",
        "truncated-png",
        "empty-image",
    ],
)
async def test_invalid_requests_fail_before_any_request(
    fake: FakeNanobanana,
    client: NanobananaClient,
    prompt: str,
    images: list[InputImage],
    ratio: str | None,
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await client.generate(prompt, images, aspect_ratio=ratio)
    assert fake.requests == []
    assert caught.value.user_message
    assert caught.value.attempts == 0


def test_supported_aspect_ratios() -> None:
    assert SUPPORTED_ASPECT_RATIOS == (
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


async def test_huge_input_is_downscaled_under_the_limit(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    huge = noisy_png(6000, 6000, "L")
    assert len(huge) > 30 * MiB
    result = await client.generate("make it blue", [InputImage(huge, "image/png")])
    assert result.width == 1024
    seen = fake.requests[0]
    assert seen.body_size < 20 * MiB
    [(mime, sent)] = seen.images
    assert mime == "image/jpeg"
    assert max(size_of(sent)) <= 2048


async def test_several_large_inputs_share_the_budget(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    small = small_image("PNG")
    big = noisy_png(2048, 2048)  # fine alone by size, too big as a pair
    assert 2 * len(big) * 4 / 3 > 20 * MiB
    await client.generate(
        "combine these",
        [InputImage(big, "image/png"), InputImage(small, "image/png"), InputImage(big, "")],
    )
    seen = fake.requests[0]
    assert seen.body_size < 20 * MiB
    sent = seen.images
    assert sent[1] == ("image/png", small)  # the small one passes untouched
    for mime, data in (sent[0], sent[2]):
        assert mime == "image/jpeg"
        assert max(size_of(data)) <= 2048


async def test_transparent_input_keeps_its_alpha(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    image = Image.new("RGBA", (3000, 1000), (10, 200, 10, 128))
    await client.generate("add a sky", [InputImage(encode(image, "PNG"), "image/png")])
    [(mime, sent)] = fake.requests[0].images
    assert mime == "image/png"
    with Image.open(io.BytesIO(sent)) as received:
        assert received.size == (2048, 683)
        assert received.mode == "RGBA"


# ------------------------------------------------------------------------------ keys and logs


async def test_logs_never_contain_the_key_payloads_or_full_prompt(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prompt = "a very long prompt about bananas " * 10
    source = small_image("PNG", (300, 200))
    fake.script([Behaviour(Mode.RATE_LIMIT, delay=0.01), Mode.OK, Mode.FORBIDDEN])
    result = await client.generate(prompt, [InputImage(source, "image/png")])
    with pytest.raises(AuthenticationFailed) as caught:
        await client.generate("second")

    text = caplog.text
    assert KEY not in text
    assert prompt not in text and prompt[:40] in text
    b64_in = base64.b64encode(source).decode()
    b64_out = base64.b64encode(result.data).decode()
    assert b64_in[100:160] not in text and b64_out[100:160] not in text
    infos = [r for r in caplog.records if r.name == "bot.nanobanana" and r.levelno == logging.INFO]
    assert len(infos) == 2
    assert "outcome=ok" in infos[0].getMessage() and "attempts=2" in infos[0].getMessage()
    assert "AuthenticationFailed" in infos[1].getMessage()
    assert KEY not in str(caught.value) and KEY not in caught.value.user_message


@pytest.mark.parametrize(
    "behaviour",
    [
        Mode.BLOCK_PROMPT,
        Mode.BLOCK_OUTPUT,
        Mode.TEXT_ONLY,
        Mode.RATE_LIMIT,
        Mode.SERVER_ERROR,
        Mode.BAD_REQUEST,
        Mode.FORBIDDEN,
        Mode.NOT_FOUND,
        Mode.MALFORMED_JSON,
        Mode.TRUNCATED_BASE64,
    ],
)
async def test_user_messages_are_short_and_plain(fake: FakeNanobanana, behaviour: Mode) -> None:
    fake.default = behaviour
    async with make_client(fake, max_attempts=1) as nano:
        with pytest.raises(NanobananaError) as caught:
            await nano.generate("a cat")
    message = caught.value.user_message
    assert 10 < len(message) < 200
    for forbidden in (KEY, "Traceback", "HTTP", "{", "googleapis"):
        assert forbidden not in message


async def test_missing_key_fails_without_a_request(fake: FakeNanobanana) -> None:
    async with NanobananaClient("", base_url=fake.base_url) as nano:
        assert not nano.configured
        with pytest.raises(AuthenticationFailed):
            await nano.generate("a cat")
    assert fake.requests == []


# ------------------------------------------------------------------------------ wiring


async def test_from_settings(fake: FakeNanobanana) -> None:
    settings = Settings(
        discord_token="discord-token",
        gemini_api_key=KEY,
        nanobanana_base_url=fake.base_url,
        nanobanana_model="gemini-custom-image",  # a proxy's own name for a model
        nanobanana_timeout=7.0,
        nanobanana_max_attempts=2,
    )
    fake.add_model("gemini-custom-image", MODELS["gemini-3.1-flash-lite-image"])
    async with NanobananaClient.from_settings(settings) as nano:
        assert (nano.timeout, nano.max_attempts, nano.deadline) == (7.0, 2, 14.0)
        result = await nano.generate("a cat")
    assert result.model == "gemini-custom-image"
    assert fake.requests[0].path == "/v1beta/models/gemini-custom-image:generateContent"
    assert fake.requests[0].api_key == KEY


async def test_borrowed_session_is_left_open(fake: FakeNanobanana) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(fake, session=session) as nano:
            await nano.generate("a cat")
        assert not session.closed
        with pytest.raises(ProviderUnavailable):
            await nano.generate("after close")


def test_constructor_rejects_nonsense() -> None:
    for options in ({"max_attempts": 0}, {"timeout": 0}, {"deadline": -1.0}):
        with pytest.raises(ValueError):
            NanobananaClient(KEY, **options)
    with pytest.raises(ValueError):
        NanobananaClient(KEY, base_url="ftp://example.com")


async def test_random_failures_are_seeded_and_survivable(fake: FakeNanobanana) -> None:
    fake.failure_rate = 0.4
    fake.failure_modes = [Mode.SERVER_ERROR, Behaviour(Mode.RATE_LIMIT, delay=0.001)]
    runs: list[list[Mode]] = []
    async with make_client(fake, max_attempts=6, backoff_base=0.001) as nano:
        for _ in range(2):
            fake.requests.clear()
            fake.rng = random.Random(42)
            for n in range(15):
                await nano.generate(f"cat {n}")
            runs.append([r.behaviour.mode for r in fake.requests if r.behaviour])
    assert runs[0] == runs[1]  # same seed, same failures
    assert runs[0].count(Mode.OK) == 15
    assert {Mode.SERVER_ERROR, Mode.RATE_LIMIT} <= set(runs[0])


# ------------------------------------------------------------------------------ parsing edge cases


def _parse_success(payload: bytes) -> GeneratedImage:
    """The client's whole reading of a 200 answer: the wire format, then each image's bytes."""
    return _read_answer(payload, "gemini-2.5-flash-image")


def _doc(document: Any) -> bytes:
    return json.dumps(document).encode()


def _png_b64() -> str:
    return base64.b64encode(small_image("PNG")).decode()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b"null",
        b"\xff\xfe",
        _doc({"candidates": "nope"}),
        _doc({"candidates": [None]}),
        _doc({"candidates": [{"content": {"parts": [1, "x", None]}}]}),
        _doc({"candidates": [{"content": {"parts": [{"inlineData": {"data": 5}}]}}]}),
        _doc({"candidates": [{"content": {"parts": [{"inlineData": {"data": "!!!"}}]}}]}),
        _doc({"candidates": [{"content": {"parts": [{"inlineData": {"data": "aGVsbG8="}}]}}]}),
        _doc({"candidates": [{"content": {"parts": [{"inlineData": "str"}]}}]}),
        _doc({"candidates": [{"finishReason": 7}], "promptFeedback": []}),
    ],
)
def test_parser_raises_only_nanobanana_errors(payload: bytes) -> None:
    with pytest.raises(NanobananaError) as caught:
        _parse_success(payload)
    assert isinstance(caught.value, ContentBlocked | MalformedResponse)


def test_parser_accepts_snake_case_and_keeps_every_non_thought_image() -> None:
    first = base64.b64encode(small_image("PNG", (10, 10))).decode()
    last = base64.b64encode(small_image("JPEG", (30, 20))).decode()
    thought = base64.b64encode(small_image("PNG", (99, 99))).decode()
    parsed = _parse_success(
        _doc(
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [
                                {"inline_data": {"mime_type": "image/png", "data": first}},
                                {"text": "done"},
                                {"inlineData": {"mimeType": "image/png", "data": last}},
                                {"inlineData": {"data": thought}, "thought": True},
                            ]
                        },
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 5, "x": "y"},
            }
        )
    )
    # The first image is the result; the second is kept (its type read from the bytes, not
    # the declared mime type); the thought image is left out.
    assert (parsed.width, parsed.height, parsed.mime_type) == (10, 10, "image/png")
    assert [(i.width, i.height, i.mime_type) for i in parsed.images] == [
        (10, 10, "image/png"),
        (30, 20, "image/jpeg"),
    ]
    assert parsed.text == "done"
    assert parsed.usage == {"promptTokenCount": 3, "totalTokenCount": 5}


def test_no_image_with_stop_is_no_image() -> None:
    document = {"candidates": [{"content": {"parts": [{"text": "hm"}]}, "finishReason": "STOP"}]}
    with pytest.raises(ContentBlocked) as caught:
        _parse_success(_doc(document))
    assert caught.value.reason == "NO_IMAGE"


def test_prompt_block_reason_wins_over_finish_reason() -> None:
    document = {
        "promptFeedback": {"blockReason": "OTHER"},
        "candidates": [{"finishReason": "SAFETY"}],
    }
    with pytest.raises(ContentBlocked) as caught:
        _parse_success(_doc(document))
    assert caught.value.reason == "OTHER"


def test_retry_after_parsing() -> None:
    assert _parse_retry_after("2") == 2.0
    assert _parse_retry_after("0.25") == 0.25
    assert _parse_retry_after("-3") == 0.0
    assert _parse_retry_after("soon") is None
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


# ------------------------------------------------------------------------ the real API's failures

PRO = "gemini-3-pro-image"
NB2 = "gemini-3.1-flash-image"
LITE = "gemini-3.1-flash-lite-image"
FINISH_REASONS = [
    "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "MALFORMED_FUNCTION_CALL", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    "IMAGE_OTHER", "MAX_TOKENS", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
]  # fmt: skip
BLOCK_REASONS = ["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"]


def owner_lines(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "owner" in r.msg
    )


async def test_fake_429_is_shaped_like_googles(fake: FakeNanobanana) -> None:
    """Google sends the delay as RetryInfo in the body, beside QuotaFailure and Help, and no
    Retry-After header: the fake does the same by default."""
    fake.default = Mode.QUOTA_ZERO
    url = f"{fake.base_url}/v1beta/models/gemini-nano-banana-2.1:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"x-goog-api-key": KEY}) as response,
    ):
        assert response.status == 429 and "Retry-After" not in response.headers
        error = (await response.json())["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and "limit: 0" in error["message"]
    kinds = [d["@type"].rsplit(".", 1)[-1] for d in error["details"]]
    assert kinds == ["QuotaFailure", "Help", "RetryInfo"]
    assert error["details"][0]["violations"][0]["quotaValue"] == "0"
    assert error["details"][2]["retryDelay"] == "54s"


async def test_a_quota_of_zero_fails_at_once_and_tells_the_owner(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.default = Mode.QUOTA_ZERO
    started = time.perf_counter()
    with pytest.raises(QuotaExhausted) as caught:
        await client.generate("a cat")
    assert time.perf_counter() - started < 5  # not 4 tries over ~160 s
    assert len(fake.requests) == 1 and caught.value.attempts == 1
    assert caught.value.kind == "none" and caught.value.retryable is False
    assert caught.value.retry_after == 54.0
    assert "billing" in owner_lines(caplog) and client.model in owner_lines(caplog)


async def test_a_used_up_daily_quota_fails_at_once(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.default = Mode.QUOTA_DAY
    with pytest.raises(QuotaExhausted) as caught:
        await client.generate("a cat")
    assert len(fake.requests) == 1
    assert caught.value.kind == "daily" and "PerDay" in (caught.value.quota_id or "")
    assert "resets" in owner_lines(caplog)


async def test_a_per_minute_429_waits_as_the_body_says(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.script([Behaviour(Mode.RATE_LIMIT, delay=0.2)])
    started = time.perf_counter()
    result = await client.generate("a cat")
    assert time.perf_counter() - started >= 0.2
    assert result.attempts == 2


async def test_html_502_from_googles_front_end_is_retried(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.script([Mode.HTML_502])
    assert (await client.generate("a cat")).attempts == 2
    fake.default = Mode.HTML_502
    with pytest.raises(ProviderUnavailable) as caught:
        await client.generate("a cat")
    assert caught.value.status == 502 and caught.value.attempts == 3
    assert "HTML error page" in str(caught.value) and "<" not in str(caught.value)


async def test_location_not_supported_is_its_own_error(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.default = Mode.LOCATION
    with pytest.raises(InvalidRequest) as caught:
        await client.generate("a cat")
    assert caught.value.code == "location" and len(fake.requests) == 1
    assert "region" in owner_lines(caplog)


async def test_payload_too_large_is_its_own_error(
    fake: FakeNanobanana, client: NanobananaClient
) -> None:
    fake.default = Mode.PAYLOAD_TOO_LARGE
    with pytest.raises(InvalidRequest) as caught:
        await client.generate("a cat")
    assert caught.value.code == "too_large" and caught.value.status == 400
    assert len(fake.requests) == 1


@pytest.mark.parametrize("reason", FINISH_REASONS)
async def test_every_finish_reason_and_its_message_are_kept(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger="bot.nanobanana")
    fake.script([Behaviour(Mode.BLOCK_OUTPUT, reason=reason, message=f"Because {reason}.")])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("a cat")
    assert (caught.value.stage, caught.value.reason) == ("output", reason)
    assert caught.value.finish_message == f"Because {reason}."
    assert f"Because {reason}." in caplog.text  # finishMessage reaches the log


@pytest.mark.parametrize("reason", BLOCK_REASONS)
async def test_every_prompt_block_reason(
    fake: FakeNanobanana, client: NanobananaClient, reason: str
) -> None:
    fake.script([Behaviour(Mode.BLOCK_PROMPT, reason=reason)])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("a cat")
    assert (caught.value.stage, caught.value.reason) == ("prompt", reason)


async def test_no_image_with_empty_content(fake: FakeNanobanana, client: NanobananaClient) -> None:
    fake.script([Mode.NO_IMAGE])
    with pytest.raises(ContentBlocked) as caught:
        await client.generate("a cat")
    assert (caught.value.stage, caught.value.reason) == ("output", "NO_IMAGE")


# ------------------------------------------------------------------------------ models


@pytest.fixture
async def small_fake() -> AsyncIterator[FakeNanobanana]:
    """A fake whose "1K" images are 128 px, so 4K answers stay cheap to draw."""
    async with FakeNanobanana(image_size=128) as server:
        yield server


def test_profiles_match_what_the_api_accepts() -> None:
    for model, profile in PROFILES.items():
        real = MODELS.get(model)
        if real is None:  # retired before the fake's time
            continue
        assert set(profile.aspect_ratios) == set(real.ratios), model
        assert profile.image_sizes == real.sizes, model
        assert profile.max_reference_images == real.max_images, model
        assert profile.output_mime_type == real.mime_type, model
        assert profile.thinking == real.thinking, model


async def test_pro_answers_a_jpeg_after_thought_parts_with_a_signature(
    small_fake: FakeNanobanana,
) -> None:
    async with make_client(small_fake, model=PRO) as pro:
        result = await pro.generate("a knight", aspect_ratio="3:4", image_size="2K")
    assert result.mime_type == "image/jpeg" and size_of(result.data) == (192, 256)
    assert len(result.images) == 1  # the thought image is not a result
    assert result.thought_signatures == (small_fake.signatures[-1],)
    assert result.usage["thoughtsTokenCount"] > 0
    assert small_fake.requests[0].image_size == "2K"


async def test_several_images_in_one_answer_are_all_returned(
    small_fake: FakeNanobanana,
) -> None:
    small_fake.script([Behaviour(Mode.OK, images=3, text="Three takes.")])
    async with make_client(small_fake) as nano:
        result = await nano.generate("three cats")
    assert len(result.images) == 3 and result.extras == result.images[1:]
    assert result.text == "Three takes."
    assert [p.image_index for p in result.parts if p.image_index is not None] == [0, 1, 2]


@pytest.mark.parametrize(
    ("model", "size", "ratio"),
    [
        (LITE, "1K", "21:9"),
        (PRO, "1K", "4:5"),
        (PRO, "4K", "16:9"),
        (NB2, "512", "1:8"),
        (NB2, "4K", "4:1"),
    ],
)
async def test_each_model_gets_what_it_accepts(
    small_fake: FakeNanobanana, model: str, size: str | None, ratio: str
) -> None:
    async with make_client(small_fake) as nano:
        result = await nano.generate("a cat", aspect_ratio=ratio, image_size=size, model=model)
    seen = small_fake.requests[0]
    assert seen.model == model and (seen.image_size, seen.aspect_ratio) == (size, ratio)
    expected = image_dimensions(ratio, 128, size)
    assert (result.width, result.height) == expected == size_of(result.data)


@pytest.mark.parametrize(
    ("model", "size", "ratio", "images", "code"),
    [
        (LITE, "2K", None, 0, "size"),  # Nano Banana 2 Lite makes 1K only
        (PRO, "512", None, 0, "size"),  # 512 is Nano Banana 2's only
        ("gemini-nano-banana-2.1", "512", None, 0, "size"),  # not even 2.1's
        (PRO, "8K", None, 0, "size"),
        (PRO, None, "1:8", 0, "ratio"),  # the extreme ratios are Nano Banana 2's
        (LITE, None, "4:1", 0, "ratio"),
        (LITE, None, None, 15, "too_many_images"),
        (PRO, None, None, 15, "too_many_images"),
    ],
)
async def test_each_model_refuses_what_the_api_would_before_sending(
    small_fake: FakeNanobanana, model: str, size: str | None, ratio: str | None, images: int,
    code: str,
) -> None:  # fmt: skip
    inputs = [InputImage(small_image(), "image/png")] * images
    async with make_client(small_fake, model=model) as nano:
        with pytest.raises(InvalidRequest) as caught:
            await nano.generate("a cat", inputs, aspect_ratio=ratio, image_size=size)
    assert caught.value.code == code and small_fake.requests == []


async def test_pro_takes_fourteen_reference_images(small_fake: FakeNanobanana) -> None:
    inputs = [InputImage(small_image(size=(16 + n, 16)), "image/png") for n in range(14)]
    async with make_client(small_fake, model=PRO) as pro:
        await pro.generate("combine them all", inputs)
    assert len(small_fake.requests[0].images) == 14


@pytest.mark.parametrize(
    ("model", "config", "images"),
    [
        (LITE, {"imageSize": "2K"}, 0),
        ("gemini-nano-banana-2.1", {"imageSize": "512"}, 0),
        (PRO, {"imageSize": "512"}, 0),
        (PRO, {"aspectRatio": "8:1"}, 0),
        (PRO, {}, 15),
        (LITE, {}, 15),
    ],
)
async def test_the_fake_refuses_what_the_real_api_refuses(
    fake: FakeNanobanana, model: str, config: dict[str, str], images: int
) -> None:
    data = base64.b64encode(small_image()).decode()
    parts: list[dict[str, Any]] = [{"text": "hi"}]
    parts += [{"inline_data": {"mime_type": "image/png", "data": data}}] * images
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": parts}]}
    if config:
        body["generationConfig"] = {"responseModalities": ["IMAGE"], "imageConfig": config}
    url = f"{fake.base_url}/v1beta/models/{model}:generateContent"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"x-goog-api-key": KEY}) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["status"] == "INVALID_ARGUMENT"


# ------------------------------------------------------------------------------ multi-turn


async def test_a_pro_edit_sends_the_previous_turn_and_its_signature_back(
    small_fake: FakeNanobanana,
) -> None:
    async with make_client(small_fake, model=PRO) as pro:
        first = await pro.generate("a knight", aspect_ratio="3:4")
        turn = Turn(
            "a knight",
            tuple(
                ModelPart(
                    text=part.text,
                    image=(
                        InputImage(first.images[part.image_index].data, "image/jpeg")
                        if part.image_index is not None
                        else None
                    ),
                    thought_signature=part.thought_signature,
                )
                for part in first.parts
            ),
        )
        second = await pro.generate("now in winter", aspect_ratio="3:4", history=[turn])
    seen = small_fake.requests[-1]
    assert [c["role"] for c in seen.contents] == ["user", "model", "user"]
    assert seen.contents[0]["parts"] == [{"text": "a knight"}]
    assert seen.prompt == "now in winter" and seen.images == []
    assert seen.history_images == [("image/jpeg", first.data)]
    assert seen.signatures == list(first.thought_signatures) == [small_fake.signatures[0]]
    assert second.thought_signatures == (small_fake.signatures[1],)


async def test_the_models_own_large_image_goes_back_unchanged(small_fake: FakeNanobanana) -> None:
    """A 4K answer sent back in the next turn keeps its size (members' inputs are capped at
    2048 px; the model's own image is not, unless the byte budget needs it)."""
    big = small_image("JPEG", (3000, 2000))
    turn = Turn(
        "a harbour", (ModelPart(image=InputImage(big, "image/jpeg"), thought_signature="c2ln"),)
    )
    async with make_client(small_fake, model=PRO) as pro:
        await pro.generate("at night", history=[turn], images=[InputImage(big, "image/jpeg")])
    seen = small_fake.requests[0]
    assert seen.history_images == [("image/jpeg", big)]
    [(_, sent)] = seen.images
    assert max(size_of(sent)) == 2048


async def test_a_slot_that_refuses_is_the_callers_outcome_not_a_bug(
    fake: FakeNanobanana, client: NanobananaClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller's slot may refuse to be taken (its service is stopping): the error reaches
    the caller as it is, no request is sent, and the log names it as the slot's."""

    class Stopping(Exception):
        pass

    class RefusingSlot:
        async def __aenter__(self) -> None:
            raise Stopping()

        async def __aexit__(self, *exc_info: object) -> None:
            return None

    caplog.set_level(logging.INFO)
    with pytest.raises(Stopping):
        await client.generate("a cat", slot=RefusingSlot())
    assert fake.requests == []
    assert "outcome=slot:Stopping" in caplog.text and "bug:" not in caplog.text
