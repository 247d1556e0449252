"""Multi-turn requests (issue 22): the fake Gemini refuses what the real API refuses (roles out
of turn; on the Gemini 3 Flash image models, a model turn's image without its
`thoughtSignature`; Pro does not check), and the client sends earlier turns back as received.
The conversation service's trimming keeps requests within the model's limits."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.nanobanana import InputImage, InvalidRequest, ModelPart, NanobananaClient, Turn
from bot.nanobanana.profiles import profile_for
from bot.services.conversations import images_in, trim
from tests.fakes.nanobanana_server import FakeNanobanana

KEY = "test-key"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "purple").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeNanobanana]:
    async with FakeNanobanana(image_size=64) as server:
        yield server


async def post(fake: FakeNanobanana, model: str, contents: list[Any]) -> tuple[int, Any]:
    url = f"{fake.base_url}/v1beta/models/{model}:generateContent"
    body = {"contents": contents, "generationConfig": {"responseModalities": ["IMAGE"]}}
    async with (
        aiohttp.ClientSession(headers={"x-goog-api-key": KEY}) as session,
        session.post(url, json=body) as response,
    ):
        return response.status, await response.json()


def image_part(signature: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {
        "inline_data": {"mime_type": "image/png", "data": base64.b64encode(png()).decode()}
    }
    if signature is not None:
        part["thought_signature"] = signature
    return part


SIGNED = base64.b64encode(b"a signature the model gave").decode()


async def test_a_model_image_without_its_signature_is_refused_on_flash(
    fake: FakeNanobanana,
) -> None:
    unsigned = [
        {"role": "user", "parts": [{"text": "a cat"}]},
        {"role": "model", "parts": [image_part()]},
        {"role": "user", "parts": [{"text": "now a hat"}]},
    ]
    status, body = await post(fake, "gemini-nano-banana-2.1", unsigned)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "missing a thought_signature" in body["error"]["message"]
    # Signed, it is taken; on Pro (which does not validate) unsigned is taken too.
    unsigned[1]["parts"] = [image_part(SIGNED)]
    assert (await post(fake, "gemini-nano-banana-2.1", unsigned))[0] == 200
    unsigned[1]["parts"] = [image_part()]
    assert (await post(fake, "gemini-3-pro-image", unsigned))[0] == 200


async def test_roles_must_alternate_from_the_user(fake: FakeNanobanana) -> None:
    twice = [
        {"role": "user", "parts": [{"text": "a cat"}]},
        {"role": "user", "parts": [{"text": "a dog"}]},
    ]
    status, body = await post(fake, "gemini-3-pro-image", twice)
    assert status == 400 and "alternate between user and model" in body["error"]["message"]
    model_first = [
        {"role": "model", "parts": [image_part(SIGNED)]},
        {"role": "user", "parts": [{"text": "a dog"}]},
    ]
    assert (await post(fake, "gemini-3-pro-image", model_first))[0] == 400


async def test_the_client_sends_earlier_turns_back_with_their_signatures(
    fake: FakeNanobanana,
) -> None:
    async with NanobananaClient(KEY, base_url=fake.base_url, max_attempts=1) as client:
        first = await client.generate("a cat", model="gemini-nano-banana-2.1")
        parts = tuple(
            ModelPart(
                image=InputImage(first.images[p.image_index].data, first.mime_type)
                if p.image_index is not None
                else None,
                text=p.text,
                thought_signature=p.thought_signature,
            )
            for p in first.parts
        )
        await client.generate(
            "now a hat", model="gemini-nano-banana-2.1", history=(Turn("a cat", parts),)
        )
        # The same turn stripped of its signatures: refused, as Google refuses it.
        bare = tuple(replace(p, thought_signature=None) for p in parts)
        with pytest.raises(InvalidRequest):
            await client.generate(
                "now a hat", model="gemini-nano-banana-2.1", history=(Turn("a cat", bare),)
            )
    sent = fake.requests[1]
    assert [c["role"] for c in sent.contents] == ["user", "model", "user"]
    assert sent.signatures and set(sent.signatures) <= set(fake.signatures)


def test_trimming_keeps_the_latest_turns_within_the_model_limits() -> None:
    profile = replace(profile_for("gemini-nano-banana-2.1"), max_reference_images=3)
    turn = Turn("p", (ModelPart(image=InputImage(b"x", "image/png"), thought_signature=SIGNED),))
    history = [replace(turn, prompt=f"turn {n}") for n in range(6)]
    kept = trim(history, profile, 1, "next")
    assert [t.prompt for t in kept] == ["turn 4", "turn 5"] and images_in(kept) == 2
    # The token limit too: a tiny one keeps nothing.
    tiny = replace(profile, max_reference_images=14, input_token_limit=2000)
    assert [t.prompt for t in trim(history, tiny, 0, "next")] == ["turn 5"]
    assert trim(history, replace(tiny, input_token_limit=100), 0, "next") == []
