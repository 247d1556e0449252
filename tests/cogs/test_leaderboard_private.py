"""/leaderboard (top creators and coin holders of a server, members may opt out) and private
mode (/settings me private: a member's results come back only to them where the server
allows it), end to end in two servers and both economy scopes."""

from __future__ import annotations

from bot.config import EconomyScope
from tests.cogs.conftest import Harness, png
from tests.cogs.test_blocklist_private import settings
from tests.fakes.discord_server import FakeGuild, FakeMessage, FakeUser


async def generate(h: Harness, user: FakeUser, guild: FakeGuild | None = None) -> FakeMessage:
    rec = await h.fake.slash("generate", {"prompt": "a banana"}, user=user, guild=guild)
    message = await rec.wait_original(lambda m: bool(m.filenames), timeout=15)
    await h.settle()  # stored: the member's job slot is free again
    return message


async def board(h: Harness, user: FakeUser, guild: FakeGuild | None = None) -> tuple[str, str]:
    """The leaderboard's creators and holders fields, as `user` sees them."""
    rec = await h.fake.slash("leaderboard", {}, user=user, guild=guild)
    message = await rec.wait_original()
    assert message.ephemeral
    fields = message.embeds[0]["fields"]
    return fields[0]["value"], fields[1]["value"]


async def me(h: Harness, user: FakeUser, **options: bool) -> str:
    rec = await h.fake.slash("settings me", options, user=user)
    message = await rec.wait_original()
    assert message.ephemeral
    return message.content


async def test_the_leaderboard_ranks_this_servers_creators_and_holders(harness: Harness) -> None:
    h = harness
    for user in (h.alice, h.alice, h.bob):
        await generate(h, user)
    await generate(h, h.owner2, h.other)  # another server's image
    await h.settle()
    creators, holders = await board(h, h.bob)
    assert creators.splitlines() == [
        f"🥇 <@{h.alice.id}> · 2 images",
        f"🥈 <@{h.bob.id}> · 1 image",
    ]
    # Banana Club's wallets: bob 200, alice 100 (owner2's wallet is Other Club's).
    assert holders.splitlines() == [
        f"🥇 <@{h.bob.id}> · 200 coins",
        f"🥈 <@{h.alice.id}> · 100 coins",
    ]
    creators, holders = await board(h, h.owner2, h.other)
    assert creators == f"🥇 <@{h.owner2.id}> · 1 image"
    assert holders == f"🥇 <@{h.owner2.id}> · 200 coins"


async def test_members_can_leave_the_leaderboard_and_come_back(harness: Harness) -> None:
    h = harness
    await generate(h, h.alice)
    await h.settle()
    assert "Shown on /leaderboard: **no**" in await me(h, h.alice, leaderboard=False)
    creators, holders = await board(h, h.bob)
    assert str(h.alice.id) not in creators + holders
    assert creators == "Nobody yet."
    # Showing the preferences changes nothing.
    text = await me(h, h.alice)
    assert "Shown on /leaderboard: **no**" in text and "Private results: **no**" in text
    assert "Shown on /leaderboard: **yes**" in await me(h, h.alice, leaderboard=True)
    creators, _ = await board(h, h.bob)
    assert str(h.alice.id) in creators


async def test_in_the_global_economy_holders_are_this_servers_members(harness: Harness) -> None:
    h = harness
    await h.stop_bot()
    await h.start_bot(economy_scope=EconomyScope.GLOBAL)
    await generate(h, h.alice)
    await generate(h, h.owner2, h.other)
    await h.settle()
    _, holders = await board(h, h.bob)
    assert holders == f"🥇 <@{h.alice.id}> · 200 coins"
    _, holders = await board(h, h.owner2, h.other)
    assert holders == f"🥇 <@{h.owner2.id}> · 200 coins"


async def test_private_mode_keeps_a_members_results_to_themselves(harness: Harness) -> None:
    h = harness
    await (
        await h.fake.slash("grant", {"user": h.alice, "amount": 500}, user=h.mod)
    ).wait_original()
    assert "Private results: **yes**" in await me(h, h.alice, private=True)
    mine = await generate(h, h.alice)
    assert mine.ephemeral
    theirs = await generate(h, h.bob)
    assert not theirs.ephemeral
    # In every server the member uses, where it is allowed.
    assert (await generate(h, h.alice, h.other)).ephemeral
    rec = await h.fake.slash("describe", {"image": h.fake.upload(png(), "in.png")}, user=h.alice)
    caption = await rec.wait_original(lambda m: bool(m.embeds), timeout=15)
    assert caption.ephemeral
    # A server that doesn't allow it shows every result as it shows everyone's.
    await settings(h, "set", {"setting": "private_mode", "value": "no"})
    assert not (await generate(h, h.alice)).ephemeral
    assert "doesn't allow private results" in await me(h, h.alice)
    assert (await generate(h, h.alice, h.other)).ephemeral
    # Back to public.
    await settings(h, "reset", {"setting": "private_mode"})
    assert "Private results: **no**" in await me(h, h.alice, private=False)
    assert not (await generate(h, h.alice)).ephemeral


async def test_help_lists_pay_and_leaderboard(harness: Harness) -> None:
    rec = await harness.fake.slash("help", {}, user=harness.alice)
    text = (await rec.wait_original()).embed_text()
    assert "/pay` Give some of your coins to another member" in text
    assert "/leaderboard` This server's top creators and coin holders" in text
