"""/daily and /help end to end."""

from __future__ import annotations

import re

from tests.cogs.conftest import Harness


async def reply(harness: Harness, command: str, **kw: object) -> str:
    rec = await harness.fake.slash(command, {}, **kw)  # type: ignore[arg-type]
    message = await rec.wait_original()
    assert message.ephemeral, message
    return message.content + message.embed_text()


async def test_daily_claimed_twice(harness: Harness) -> None:
    first = await reply(harness, "daily", user=harness.alice)
    assert "You claimed 50 coins" in first and "balance here is 350" in first
    opens = re.search(r"<t:(\d+):R>", first)
    assert opens is not None
    before = await harness.counts()
    second = await reply(harness, "daily", user=harness.alice)
    assert "already claimed" in second and f"<t:{opens.group(1)}:R>" in second
    assert await harness.counts() == before
    # Another server's wallet has its own day.
    there = await reply(harness, "daily", user=harness.alice, guild=harness.other)
    assert "balance here is 350" in there
    rows = await harness.app.db.fetchall("SELECT kind FROM coin_transactions WHERE kind='DAILY'")
    assert len(rows) == 2


async def test_daily_follows_the_servers_setting(harness: Harness) -> None:
    await (await harness.fake.slash(
        "settings set", {"setting": "daily_coins", "value": "0"}, user=harness.mod
    )).wait_original()  # fmt: skip
    await reply(harness, "coins", user=harness.alice)
    before = await harness.counts()
    assert "no daily coins" in await reply(harness, "daily", user=harness.alice)
    assert await harness.counts() == before
    assert "claimed 50 coins" in await reply(harness, "daily", user=harness.alice,
                                             guild=harness.other)  # fmt: skip


async def test_help_shows_costs_balance_and_queue_here(harness: Harness) -> None:
    """/help is self-contained: each command with its price in this server, the buttons, how
    to get coins; it used to send members to a README they can't open."""
    await (await harness.fake.slash(
        "settings set", {"setting": "generation_cost", "value": "40"}, user=harness.mod
    )).wait_original()  # fmt: skip
    text = await reply(harness, "help", user=harness.alice)
    assert "`/generate` Create an image, or edit yours, with Nano Banana · **40 coins**" in text
    assert "`/upload` Add one of your images to your gallery · free" in text
    assert "`/daily` Claim this server's daily coins · **+50 coins**" in text
    assert "`/settings`" in text and "`/grant`" in text
    assert "**Reroll** makes it again" in text and "(its coins aren't refunded)" in text
    assert "/daily gives 50 coins every 24 hours" in text and "coins with /grant" in text
    assert "300 to start with" in text  # no wallet opened by asking
    assert "0 waiting, 0 being made" in text
    assert "README" not in text and "For server owners" not in text
    await reply(harness, "coins", user=harness.alice)
    assert "Your balance\n🪙 300" in await reply(harness, "help", user=harness.alice)
    other = await reply(harness, "help", user=harness.alice, guild=harness.other)
    assert "Nano Banana · **100 coins**" in other


async def test_help_lists_each_models_price(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(
        nanobanana_models=["gemini-3-pro-image"],
        generation_costs={"gemini-3-pro-image": 250, "gemini-3-pro-image:4K": 400},
    )  # fmt: skip
    text = await reply(harness, "help", user=harness.alice)
    assert "Nano Banana 2.1 **100 coins**; Nano Banana Pro **from 250 coins**" in text


async def test_help_links_the_readme_when_docs_url_is_set(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(docs_url="https://example.test/readme")
    text = await reply(harness, "help", user=harness.alice)
    assert "(https://example.test/readme#servers-economy-and-permissions)" in text


async def test_help_in_spanish(harness: Harness) -> None:
    text = await reply(harness, "help", user=harness.alice, locale="es-419")
    assert "Comandos" in text and "`/generar`" in text and "· **100 monedas**" in text
    assert "/diario da 50 monedas cada 24 horas" in text and "`/subir`" in text
    assert "/daily" not in text and "/grant" not in text
