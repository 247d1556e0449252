"""Grounded images (issue 22 item 7): `/generate grounded:True` on a model that can search the
web (the lineup says which, with its sources) sends Google Search as a tool, lists the pages
the answer drew on under the image, charges GROUNDING_COST coins more (refunded once if it
fails) and counts each billed search query against the budgets; a model that can't search is
refused, free, as Google would refuse it."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.nanobanana import wire
from bot.services.pricing import DEFAULT_PRICES, PriceTable
from tests.cogs.conftest import Harness, refusal
from tests.cogs.test_generate import has_image
from tests.cogs.test_generate_models import options_of, with_models
from tests.fakes.discord_server import InteractionRecord
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent

NB21 = "gemini-nano-banana-2.1"
LITE = "gemini-3.1-flash-lite-image"
GROUNDED = 100 + 20  # the harness's image price and GROUNDING_COST's default


async def grounded(
    h: Harness, prompt: str = "the 2026 city marathon poster", **more: Any
) -> InteractionRecord:
    options = {"prompt": prompt, "grounded": True, **more}
    return await h.fake.slash("generate", options, user=h.alice)


async def test_a_grounded_image_lists_its_sources_and_costs_more(harness: Harness) -> None:
    h = harness
    assert options_of(h, "generate")["grounded"]["type"] == 5
    rec = await grounded(h)
    message = await rec.wait_original(has_image, timeout=15)
    await h.settle()
    (request,) = h.api.requests
    assert request.json["tools"] == [{"google_search": {}}]
    result, sources = message.embeds
    assert "the 2026 city marathon poster" in result["description"]
    assert sources["title"] == "🔎 Sources"
    listed = sources["description"]
    assert "1. [en.wikipedia.org](https://vertexaisearch.cloud.google.com/" in listed
    assert "2. [example.com](" in listed
    assert "Searched: [the 2026 city marathon poster](https://www.google.com/search?q=" in listed
    assert any(f["value"] == f"{GROUNDED} coins" for f in result["fields"])
    assert await h.balance(h.alice) == 300 - GROUNDED
    (image,) = (await h.app.image_repo.list_by_user(await h.user_id(h.alice))).items
    assert image.metadata["grounded"] is True and image.coins_used == GROUNDED
    assert [s["title"] for s in image.metadata["sources"]] == ["en.wikipedia.org", "example.com"]
    # Google bills the two non-empty queries ($14 per 1,000) on top of the image's tokens.
    billed = await h.app.db.fetchval(
        "SELECT cost_micros FROM generation_usage WHERE status = 'BILLED'"
    )
    plain = PriceTable().cost(NB21, "1K", None)
    assert billed >= plain + 28_000
    assert h.fake.take_invalid() == []
    await assert_ledger_consistent(h.app.db)


async def test_reroll_of_a_grounded_image_is_grounded_again(harness: Harness) -> None:
    h = harness
    message = await (await grounded(h)).wait_original(has_image, timeout=15)
    await h.settle()
    again = await h.fake.click(message, label="Reroll", user=h.alice)
    await again.wait_original(has_image, timeout=15)
    await h.settle()
    assert [r.json.get("tools") for r in h.api.requests] == [[{"google_search": {}}]] * 2
    assert await h.balance(h.alice) == 300 - 2 * GROUNDED


async def test_a_model_that_cannot_search_is_refused_free(harness: Harness) -> None:
    h = harness
    await with_models(h, NB21, LITE)
    await h.payer(h.alice)
    before = await h.counts()
    rec = await grounded(h, model=LITE)
    answer = await refusal(rec)
    assert answer.ephemeral and "can't search the web" in answer.content
    assert rec.callbacks[0].type == 4 and h.api.requests == []
    assert await h.counts() == before


async def test_a_failed_grounded_image_is_refunded_once(harness: Harness) -> None:
    h = harness
    h.api.script([Behaviour(Mode.SERVER_ERROR)])
    answer = await refusal(await grounded(h), timeout=15)
    assert f"refunded {GROUNDED} coins" in answer.content
    assert await h.balance(h.alice) == 300
    refunds = await h.app.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND'"
    )
    assert refunds == 1
    await assert_ledger_consistent(h.app.db)


async def test_the_fake_refuses_grounding_as_google_does(harness: Harness) -> None:
    """A model without grounding answers the tool with 400 INVALID_ARGUMENT (so a profile
    that wrongly claims it costs the member nothing: the job fails refunded)."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": "a poster"}]}],
        "tools": [{"google_search": {}}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
    }
    url = f"{harness.api.base_url}/v1beta/models/{LITE}:generateContent"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers={"x-goog-api-key": "test-key"}) as response,
    ):
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["status"] == "INVALID_ARGUMENT" and "Grounding" in error["message"]


def test_grounding_metadata_is_read_and_its_billed_queries_counted() -> None:
    grounding = wire.parse_grounding(
        {
            "webSearchQueries": ["marathon 2026", "", "marathon 2026", "route map"],
            "groundingChunks": [
                {"web": {"uri": "https://vertexaisearch.cloud.google.com/x", "title": "a.org"}},
                {"web": {"uri": "javascript:alert(1)", "title": "bad"}},
                {"retrievedContext": {"uri": "gs://bucket/file"}},
            ],
        }
    )
    assert grounding is not None
    assert [(s.title, s.uri) for s in grounding.sources] == [
        ("a.org", "https://vertexaisearch.cloud.google.com/x")
    ]
    assert grounding.billed_queries == 2  # unique, non-empty
    assert wire.parse_grounding({}) is None and wire.parse_grounding(None) is None
    assert DEFAULT_PRICES[NB21].search_per_thousand is not None
    assert DEFAULT_PRICES[LITE].search_per_thousand is None
