"""The models list and the fake's dated lineup, over real loopback HTTP: which models exist,
every page of the list, 404s in Google's shape, and the settings today's models add."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta

import pytest

from bot.nanobanana import InvalidRequest, ModelNotFound, NanobananaClient
from bot.nanobanana.catalogue import ListedModel, image_models, parse_page
from bot.nanobanana.errors import AuthenticationFailed, MalformedResponse
from bot.nanobanana.profiles import (
    LINEUP,
    NANO_BANANA,
    NANO_BANANA_2,
    NANO_BANANA_2_1,
    NANO_BANANA_2_LITE,
    NANO_BANANA_PRO,
)
from tests.fakes.nanobanana_server import TODAY, FakeModel, FakeNanobanana

KEY = "AIzaFAKE-catalogue-key-0123456789abcdefgh"
TODAYS_IMAGE_MODELS = [NANO_BANANA_2_1, NANO_BANANA_2, NANO_BANANA_2_LITE, NANO_BANANA_PRO]


@pytest.fixture
async def fake() -> AsyncIterator[FakeNanobanana]:
    async with FakeNanobanana() as server:
        yield server


@pytest.fixture
async def client(fake: FakeNanobanana) -> AsyncIterator[NanobananaClient]:
    async with NanobananaClient(KEY, base_url=fake.base_url, max_attempts=1) as api:
        yield api


async def test_the_list_holds_todays_models_and_only_image_models_are_ours(
    client: NanobananaClient, fake: FakeNanobanana
) -> None:
    listed = await client.list_models()
    ids = [m.model for m in listed]
    assert "gemini-3.5-flash" in ids and "gemini-embedding-001" in ids
    # Shut down before today: gone from the list.
    assert not {"gemini-3-pro-image-preview", NANO_BANANA} & set(ids)
    assert [m.model for m in image_models(listed, LINEUP)] == TODAYS_IMAGE_MODELS
    nb21 = next(m for m in listed if m.model == NANO_BANANA_2_1)
    assert nb21.display_name == "Nano Banana 2.1" and nb21.generates
    assert nb21.input_token_limit == 131072
    request = fake.model_requests[-1]
    assert request.api_key == KEY and "pageSize=1000" in request.path


async def test_every_page_is_read(client: NanobananaClient, fake: FakeNanobanana) -> None:
    fake.max_page_size = 2
    listed = await client.list_models()
    served = [m for m, spec in fake.lineup.items() if spec.served_on(TODAY)]
    assert [m.model for m in listed] == served and len(served) > 4
    assert len(fake.model_requests) == (len(served) + 1) // 2
    assert "pageToken=" in fake.model_requests[-1].path


async def test_a_model_shut_down_answers_404_in_googles_words(
    client: NanobananaClient, fake: FakeNanobanana
) -> None:
    fake.retire(NANO_BANANA_2_1)
    with pytest.raises(ModelNotFound) as caught:
        await client.generate("a banana", model=NANO_BANANA_2_1)
    assert caught.value.model == NANO_BANANA_2_1 and caught.value.status == 404
    assert "is not found for API version v1beta" in str(caught.value)
    with pytest.raises(ModelNotFound):
        await client.get_model(NANO_BANANA_2_1)
    assert NANO_BANANA_2_1 not in [m.model for m in await client.list_models()]
    # Retired ids of today answer the same; an id never released too.
    for model in ("gemini-3-pro-image-preview", NANO_BANANA, "gemini-9-image"):
        with pytest.raises(ModelNotFound):
            await client.generate("a banana", model=model)


async def test_the_fakes_clock_releases_and_retires_models(
    client: NanobananaClient, fake: FakeNanobanana
) -> None:
    fake.add_model(
        "gemini-4-flash-image",
        FakeModel(display_name="Nano Banana 4", released=TODAY + timedelta(days=30)),
    )
    assert "gemini-4-flash-image" not in [m.model for m in await client.list_models()]
    fake.today = TODAY + timedelta(days=30)
    assert "gemini-4-flash-image" in [m.model for m in await client.list_models()]
    fake.today = date(2026, 6, 1)  # back before the previews were shut down
    ids = [m.model for m in await client.list_models()]
    assert "gemini-3-pro-image-preview" in ids and NANO_BANANA_2_1 not in ids


async def test_get_model_describes_a_served_model(client: NanobananaClient) -> None:
    model = await client.get_model(f"models/{NANO_BANANA_PRO}")
    assert model == ListedModel(
        NANO_BANANA_PRO,
        "Nano Banana Pro",
        ("generateContent", "countTokens", "batchGenerateContent"),
        65536,
        32768,
        "001",
    )


async def test_a_refused_key_and_a_missing_list(fake: FakeNanobanana) -> None:
    fake.expected_api_key = "the-right-key"
    async with NanobananaClient("a-wrong-key", base_url=fake.base_url) as wrong:
        with pytest.raises(AuthenticationFailed):
            await wrong.list_models()
    async with NanobananaClient(KEY, base_url=f"{fake.base_url}/proxy") as proxy:
        with pytest.raises(InvalidRequest) as caught:
            await proxy.list_models()
    assert caught.value.status == 404 and not isinstance(caught.value, ModelNotFound)


async def test_the_thinking_level_goes_in_the_request_and_the_fake_checks_it(
    client: NanobananaClient, fake: FakeNanobanana
) -> None:
    answer = await client.generate("a banana", model=NANO_BANANA_2_1, thinking_level="high")
    assert answer.mime_type == "image/jpeg" and answer.thought_signatures
    assert fake.requests[-1].generation_config["thinkingConfig"] == {"thinkingLevel": "HIGH"}
    # The client refuses what the profile says the model lacks, before any request...
    with pytest.raises(InvalidRequest) as caught:
        await client.generate("a banana", model=NANO_BANANA_PRO, thinking_level="high")
    assert caught.value.code == "thinking" and caught.value.status is None
    # ...and the fake refuses it as the API would when a profile says otherwise.
    lax = LINEUP.profile(NANO_BANANA_PRO)
    with pytest.raises(InvalidRequest) as refused:
        await client.generate(
            "a banana", model=NANO_BANANA_PRO, thinking_level="high",
            profile=replace(lax, thinking_levels=("high",)),
        )  # fmt: skip
    assert refused.value.code == "thinking" and refused.value.status == 400


async def test_todays_models_answer_in_their_own_formats(client: NanobananaClient) -> None:
    lite = await client.generate("a banana", model=NANO_BANANA_2_LITE, image_size="1K")
    assert lite.mime_type == "image/jpeg" and lite.width == 1024
    with pytest.raises(InvalidRequest) as caught:
        await client.generate("a banana", model=NANO_BANANA_2_LITE, image_size="2K")
    assert caught.value.code == "size"
    wide = await client.generate(
        "a banana", aspect_ratio="8:1", model=NANO_BANANA_2_1, image_size="2K"
    )
    assert (wide.width, wide.height) == (2048, 256)
    assert wide.model_status is None
    deprecated = await client.generate("a banana", model=NANO_BANANA_2)
    assert deprecated.model_status is not None and deprecated.model_status.stage == "DEPRECATED"
    assert deprecated.model_status.ending


def test_a_page_that_is_not_a_list_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        parse_page(b"[]")
    with pytest.raises(MalformedResponse):
        parse_page(b'{"models": {}}')
    models, token = parse_page(b'{"models": [{"name": "models/x-image"}, {"nope": 1}, 3]}')
    assert [m.model for m in models] == ["x-image"] and token is None
    assert not models[0].generates
