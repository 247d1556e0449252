"""The message command "Describe with Nano Banana": a caption of a message's image (attached,
or an embed's through Discord's media proxy), the same paid job as /describe (price, limits,
rate, refusals private and free), through the fake Discord's message-command interactions."""

from __future__ import annotations

import pytest

from bot.config import EconomyScope
from tests.cogs.conftest import Harness, png, refusal
from tests.cogs.test_describe import COST, jobs
from tests.fakes.discord_server import FakeMessage, FakeUser, InteractionRecord
from tests.storage.helpers import assert_ledger_consistent

MENU = "Describe with Nano Banana"


async def posted(h: Harness, author: FakeUser, **kwargs: object) -> FakeMessage:
    return await h.fake.post_message(h.guild.default_channel, author, "look", **kwargs)  # type: ignore[arg-type]


async def caption(rec: InteractionRecord) -> FakeMessage:
    return await rec.wait_original(lambda m: bool(m.embeds) or "❌" in m.content, timeout=15)


async def test_the_message_command_is_synced_with_its_translations(harness: Harness) -> None:
    command = harness.fake.command(MENU, harness.guild, type=3)
    assert command["description"] == "" and not command["options"]
    assert command["name_localizations"]["es-ES"] == "Describir con Nano Banana"
    assert command["contexts"] == [0]  # servers only
    message = await posted(harness, harness.alice)
    with pytest.raises(LookupError):  # only synced message commands can be sent
        await harness.fake.message_command("Frame with Nano Banana", message, user=harness.bob)


async def test_an_attached_image_is_described_for_the_price_of_describe(harness: Harness) -> None:
    h = harness
    message = await posted(h, h.alice, files=[h.fake.upload(png(40, 30, "red"), "red.png")])
    rec = await h.fake.message_command(MENU, message, user=h.bob)
    # As Discord sends a message command (interaction type 2, command type 3).
    data = rec.payload["data"]
    assert rec.payload["type"] == 2 and data["type"] == 3 and "options" not in data
    assert data["target_id"] == str(message.id) and data["guild_id"] == str(h.guild.id)
    assert data["resolved"]["messages"][str(message.id)]["attachments"][0]["filename"] == "red.png"
    answer = await caption(rec)
    assert "mostly rgb(255, 0, 0)" in answer.embed_text() and not answer.ephemeral
    assert await h.balance(h.bob) == 300 - COST and await h.balance(h.alice) == 300
    assert await jobs(h) == [("caption", "COMPLETED")]
    await assert_ledger_consistent(h.app.db)


async def test_an_embeds_image_is_fetched_through_discords_media_proxy(harness: Harness) -> None:
    h = harness
    proxied = h.fake.upload(png(20, 20, "blue"), "cat.png")
    embed = {
        "type": "image",
        "url": "https://example.invalid/cat.png",
        "thumbnail": {"url": "https://example.invalid/cat.png", "proxy_url": proxied.url,
                      "width": 20, "height": 20},
    }  # fmt: skip
    message = await posted(h, h.alice, embeds=[embed])
    answer = await caption(await h.fake.message_command(MENU, message, user=h.alice))
    assert "mostly rgb(0, 0, 255)" in answer.embed_text()
    assert await h.balance(h.alice) == 300 - COST


async def test_a_message_without_an_image_or_too_big_is_refused_privately_and_free(
    harness: Harness,
) -> None:
    h = harness
    await h.payer(h.alice)
    before = await h.counts()
    text_only = await posted(h, h.bob)
    rec = await h.fake.message_command(MENU, text_only, user=h.alice)
    answer = await refusal(rec)
    assert answer.ephemeral and "has no image to describe" in answer.content
    assert rec.callbacks[0].type == 4  # the first and only answer
    not_an_image = await posted(h, h.bob, files=[h.fake.upload(b"hello", "notes.txt")])
    answer = await refusal(await h.fake.message_command(MENU, not_an_image, user=h.alice))
    assert "has no image to describe" in answer.content
    big = h.fake.upload(png(), "huge.png", size=5_000_000)
    answer = await refusal(
        await h.fake.message_command(MENU, await posted(h, h.bob, files=[big]), user=h.alice)
    )
    assert "the limit is 1.0 MB" in answer.content
    assert await h.counts() == before and h.api.requests == []


async def test_in_another_server_with_global_wallets(harness: Harness) -> None:
    h = harness
    await h.stop_bot()
    await h.start_bot(economy_scope=EconomyScope.GLOBAL)
    channel = h.other.default_channel
    message = await h.fake.post_message(
        channel, h.owner2, files=[h.fake.upload(png(10, 10, "green"), "g.png")]
    )
    answer = await caption(await h.fake.message_command(MENU, message, user=h.owner2))
    assert "mostly rgb(0, 128, 0)" in answer.embed_text()
    assert await h.balance(h.owner2) == 300 - COST == await h.balance(h.owner2, h.other)
    await assert_ledger_consistent(h.app.db)
