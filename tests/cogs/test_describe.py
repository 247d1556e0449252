"""`/describe`: a second kind of paid job on the job engine, with no money code of its own.

Charged when reserved, refunded exactly once when it fails, recovered after a crash, ordered
through the same `orders` path (rate limit, job slots, refusals before the answer), and its
text model chosen from what the API lists today.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from bot.nanobanana.text_models import TEXT_MODELS
from tests.cogs.conftest import Harness, make_harness, outcome, png, refusal
from tests.cogs.test_blocklist_private import settings
from tests.fakes.discord_server import FakeMessage
from tests.fakes.nanobanana_server import Behaviour, Mode
from tests.storage.helpers import assert_ledger_consistent

COST = 10  # DESCRIBE_COST's default


async def describe(h: Harness, image: bytes, **options: str) -> FakeMessage:
    rec = await h.fake.slash(
        "describe", {"image": h.fake.upload(image, "in.png"), **options}, user=h.alice
    )
    return await rec.wait_original(lambda m: bool(m.embeds) or "❌" in m.content, timeout=15)


async def jobs(h: Harness) -> list[tuple[str, str]]:
    rows = await h.app.db.fetchall("SELECT kind, status FROM jobs ORDER BY created_at")
    return [(r["kind"], r["status"]) for r in rows]


async def test_a_caption_is_charged_and_written_by_todays_cheapest_text_model(
    harness: Harness,
) -> None:
    h = harness
    message = await describe(h, png(40, 30, "red"))
    assert "A 40×30 picture, mostly rgb(255, 0, 0)." in message.embed_text()
    assert not message.ephemeral and "Caption" in message.embed_text()
    # The first of the lineup's preference that the key lists (Flash-Lite: cheap).
    (request,) = h.api.requests
    assert request.path.endswith(f"/models/{TEXT_MODELS.preference[0]}:generateContent")
    assert "caption" in (request.prompt or "") and "English" in (request.prompt or "")
    assert await h.balance(h.alice) == 300 - COST
    assert await jobs(h) == [("caption", "COMPLETED")]
    (row,) = await h.app.db.fetchall(
        "SELECT t.kind, t.delta, t.job_id, j.result FROM coin_transactions t "
        "JOIN jobs j ON j.id = t.job_id WHERE t.kind = 'GENERATION'"
    )
    assert row["delta"] == -COST and "mostly rgb(255, 0, 0)" in row["result"]
    assert await h.rows("images") == 0  # a caption makes no image
    await assert_ledger_consistent(h.app.db)


async def test_a_prompt_comes_in_a_block_to_copy(harness: Harness) -> None:
    message = await describe(harness, png(20, 20, "blue"), style="prompt")
    assert message.embeds[0]["description"].startswith("```")
    assert "image generation model" in (harness.api.requests[0].prompt or "")


async def test_a_failed_caption_is_refunded_once_and_said_privately(harness: Harness) -> None:
    h = harness
    h.api.script([Behaviour(Mode.SERVER_ERROR)])
    rec = await h.fake.slash("describe", {"image": h.fake.upload(png(), "in.png")}, user=h.alice)
    answer = await refusal(rec, timeout=15)
    assert answer.ephemeral and f"refunded {COST} coins" in answer.content
    assert await h.balance(h.alice) == 300
    assert await jobs(h) == [("caption", "FAILED")]
    refunds = await h.app.db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND'"
    )
    assert refunds == 1
    await assert_ledger_consistent(h.app.db)


async def test_a_text_model_google_retired_moves_on_to_the_next(harness: Harness) -> None:
    """The listed model answers 404: that caption is refunded, and the next one goes to the
    next model of the preference the key lists."""
    h = harness
    first, second = TEXT_MODELS.preference[:2]
    h.api.retire(first)
    rec = await h.fake.slash("describe", {"image": h.fake.upload(png(), "in.png")}, user=h.alice)
    answer = await refusal(rec, timeout=15)
    assert "isn't available right now" in answer.content and "refunded" in answer.content
    message = await describe(h, png(30, 30, "green"))
    assert "mostly rgb(0, 128, 0)" in message.embed_text()
    assert h.api.requests[-1].path.endswith(f"/models/{second}:generateContent")
    assert await h.balance(h.alice) == 300 - COST
    await assert_ledger_consistent(h.app.db)


async def test_no_text_model_means_a_free_private_refusal(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        h = await make_harness(stack, tmp_path)
        for model in [m for m, spec in h.api.lineup.items() if not spec.image]:
            h.api.retire(model)
        await h.stop_bot()
        await h.start_bot()
        await h.payer(h.alice)
        before = await h.counts()
        rec = await h.fake.slash(
            "describe", {"image": h.fake.upload(png(), "in.png")}, user=h.alice
        )
        answer = await refusal(rec)
        assert answer.ephemeral and "no text model" in answer.content
        assert rec.callbacks[0].type == 4  # the first and only answer
        assert await h.counts() == before and h.api.requests == []


async def test_describe_shares_the_paid_jobs_rate_limit(harness: Harness) -> None:
    h = harness
    await settings(h, "set", {"setting": "rate_limits", "value": "generate=1"})
    await outcome(await h.fake.slash("generate", {"prompt": "a fox"}, user=h.alice))
    rec = await h.fake.slash("describe", {"image": h.fake.upload(png(), "in.png")}, user=h.alice)
    answer = await refusal(rec)
    assert answer.ephemeral and "Slow down" in answer.content


async def test_a_caption_a_crash_interrupted_is_refunded_and_told(harness: Harness) -> None:
    h = harness
    payer = await h.payer(h.alice)
    channel = h.guild.default_channel
    await h.app.engine.jobs.reserve(
        kind="caption", user_id=payer.user_id, wallet_id=payer.wallet_id, cost=COST,
        guild_id=h.guild.id,
        request={"style": "caption", "context": {"channel_id": channel.id}},
        lease_owner="crashed-process",
    )  # fmt: skip
    await h.stop_bot()
    await h.start_bot()
    notice = await h.fake.wait_for_message(
        lambda m: "Describing your image was interrupted" in m.content, channel=channel
    )
    assert f"refunded {COST} coins" in notice.content
    assert await h.balance(h.alice) == 300
    await assert_ledger_consistent(h.app.db)
