"""ALLOWED_GUILD_IDS: the bot leaves other servers (at start-up and when it joins them), and an
interaction from one gets one private line and creates nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tests.cogs.conftest import Harness
from tests.fakes.discord_server import FakeMessage


async def fenced(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(allowed_guild_ids=[harness.guild.id])


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll for something the bot does on its own (log lines, its guild cache)."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - nothing to wait on: the bot's own state
            await asyncio.sleep(0.01)


async def test_unlisted_servers_are_left_at_start_up_and_on_join(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cogs.guilds")
    fake = harness.fake
    syncs = len(fake.sync_calls)
    await fenced(harness)
    await fake.wait_for(lambda: harness.other.id in fake.left_guilds)
    await until(lambda: harness.app.get_guild(harness.other.id) is None)  # GUILD_DELETE
    assert harness.app.get_guild(harness.guild.id) is not None
    assert f"Other Club ({harness.other.id}) on start-up" in caplog.text
    # No commands were synced to it either.
    assert [gid for gid, _ in fake.sync_calls[syncs:]] == [harness.guild.id]
    third = fake.add_guild("Third Club")
    await fake.wait_for(lambda: third.id in fake.left_guilds)
    assert f"Third Club ({third.id}) on join" in caplog.text
    assert harness.guild.id in fake.guilds


async def test_interactions_from_unlisted_servers_get_one_line_and_make_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = harness.fake
    # Say Discord refuses the leave: the bot is still there, and its members still try.
    fake.inject_error("DELETE", "/users/@me/guilds/", status=403, code=50001, times=10)
    await fenced(harness)
    await until(lambda: "could not leave server" in caplog.text)
    before = await harness.counts()
    stranger = fake.add_user("stranger", guilds=[harness.other])
    for command, options in (
        ("coins", {}),
        ("generate", {"prompt": "a cat"}),
        ("daily", {}),
        ("help", {}),
        ("gallery", {}),
        ("settings show", {}),
    ):
        rec = await fake.slash(command, options, user=stranger, guild=harness.other,
                               validate=False)  # fmt: skip
        message = await rec.wait_original()
        assert message.ephemeral and message.content == "This bot isn't available in this server."
        assert len(rec.messages) == 1
    # A button left over in that server from before.
    old = FakeMessage(
        id=fake.ids.next(), channel_id=harness.other.default_channel.id, author=fake.bot_user,
        guild_id=harness.other.id,
        components=[{"type": 1, "components": [
            {"type": 2, "style": 4, "label": "Delete",
             "custom_id": "nb:delete:00000000-0000-4000-8000-000000000000"}
        ]}],
    )  # fmt: skip
    fake.messages[old.id] = old
    click = await fake.click(old, label="Delete", user=stranger)
    assert "isn't available in this server" in (await click.wait_original()).content
    assert await harness.counts() == before
    assert harness.api.requests == []
    # The listed server works as ever.
    rec = await fake.slash("coins", {}, user=harness.alice)
    assert "🪙 300" in (await rec.wait_original()).embed_text()
