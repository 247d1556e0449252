"""The bot starts against the fake Discord and answers a command."""

from __future__ import annotations

from tests.cogs.conftest import Harness


async def test_bot_syncs_commands_to_the_dev_guild(harness: Harness) -> None:
    names = set(harness.fake.commands(harness.guild))
    assert {"generate", "upload", "gallery", "coins", "grant"} <= names


async def test_coins_answers_ephemerally(harness: Harness) -> None:
    rec = await harness.fake.slash("coins", {}, user=harness.alice)
    message = await rec.wait_original()
    assert message.ephemeral
    assert "300" in message.embed_text()
