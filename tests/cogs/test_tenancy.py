"""Servers are tenants, end to end with two servers: the three escalations of issue 8 are each
refused with one private line and change nothing, in both economy scopes."""

from __future__ import annotations

from bot.config import EconomyScope
from tests.cogs.conftest import Harness, png, refusal
from tests.fakes.discord_server import FakeMessage
from tests.storage.helpers import assert_ledger_consistent


def has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


async def answer(harness: Harness, command: str, options: dict[str, object], **kw: object) -> str:
    rec = await harness.fake.slash(command, options, **kw)  # type: ignore[arg-type]
    message = await refusal(rec)
    assert message.ephemeral, message
    return message.content + message.embed_text()


async def alices_image(harness: Harness) -> tuple[FakeMessage, str]:
    """Alice makes an image in the first server: its public message and short id."""
    rec = await harness.fake.slash("generate", {"prompt": "a castle"}, user=harness.alice)
    message = await rec.wait_original(has_image, timeout=10)
    await harness.settle()
    image = await harness.app.image_repo.list_by_user(await harness.user_id(harness.alice))
    return message, image.items[0].short_id


async def test_coins_minted_in_one_server_cannot_be_spent_in_another(harness: Harness) -> None:
    fake, owner2 = harness.fake, harness.owner2
    # owner2 owns "Other Club": there, a grant to themselves is that server's business.
    text = await answer(harness, "grant", {"user": owner2, "amount": 1000}, user=owner2,
                        guild=harness.other)  # fmt: skip
    assert "Granted 1000 coins" in text and "1300" in text
    assert await harness.balance(owner2, harness.other) == 1300
    # In "Banana Club" the same person is a member with that server's coins only.
    await answer(harness, "settings set", {"setting": "generation_cost", "value": "500"},
                 user=harness.mod)  # fmt: skip
    assert "🪙 300" in await answer(harness, "coins", {}, user=owner2)
    before = await harness.counts()
    text = await answer(harness, "generate", {"prompt": "spend it"}, user=owner2)
    assert "You need 500 coins but have 300 here" in text
    assert await harness.counts() == before and harness.api.requests == []
    # Nor may they grant in Banana Club, where they lack Manage Server.
    text = await answer(harness, "grant", {"user": owner2, "amount": 1000}, user=owner2)
    assert "Only this server's moderators" in text
    assert await harness.counts() == before
    await assert_ledger_consistent(harness.app.db)
    assert fake.left_guilds == {}


async def test_another_servers_ledger_stays_private(harness: Harness) -> None:
    await answer(harness, "coins", {}, user=harness.alice)  # alice's wallet in Banana Club
    before = await harness.counts()
    # owner2 moderates Other Club, where alice has never been: nothing to see, nothing made.
    text = await answer(harness, "coins", {"user": harness.alice}, user=harness.owner2,
                        guild=harness.other)  # fmt: skip
    assert "alice has no coins in this server yet" in text and "300" not in text
    # In Banana Club owner2 is a plain member.
    text = await answer(harness, "coins", {"user": harness.alice}, user=harness.owner2)
    assert "Only this server's moderators" in text
    assert await harness.counts() == before


async def test_another_servers_images_cannot_be_seen_or_deleted(harness: Harness) -> None:
    message, short_id = await alices_image(harness)
    fake, owner2 = harness.fake, harness.owner2
    await answer(harness, "coins", {}, user=owner2, guild=harness.other)  # a member there
    before = await harness.counts()
    text = await answer(harness, "gallery", {"user": harness.alice}, user=owner2,
                        guild=harness.other)  # fmt: skip
    assert "alice has no images yet" in text
    text = await answer(harness, "gallery", {"image": short_id}, user=owner2, guild=harness.other)
    assert "doesn't exist" in text
    # A Delete button for alice's image in Other Club, as the release before this one put on
    # the image when owner2 opened it from /gallery there: pressing it now is refused.
    delete_id = next(c for c in message.custom_ids() if c.startswith("nb:delete:"))
    old = FakeMessage(
        id=fake.ids.next(), channel_id=harness.other.default_channel.id, author=fake.bot_user,
        guild_id=harness.other.id, content="",
        components=[{"type": 1, "components": [
            {"type": 2, "style": 4, "label": "Delete", "custom_id": delete_id}
        ]}],
    )  # fmt: skip
    fake.messages[old.id] = old
    pressed = await fake.click(old, label="Delete", user=owner2)
    refused = await pressed.wait_original()
    assert refused.ephemeral and "doesn't exist" in refused.content
    # In Banana Club the button is alice's (or its moderators').
    click = await fake.click(message, label="Delete", user=owner2)
    assert "isn't yours" in (await click.wait_original()).content
    assert await harness.counts() == before
    assert not message.deleted and has_image(message)


async def test_moderators_act_on_their_own_servers_images(harness: Harness) -> None:
    _message, short_id = await alices_image(harness)
    opened = await harness.fake.slash("gallery", {"image": short_id}, user=harness.mod)
    view = await opened.wait_original()
    assert [b["label"] for b in view.buttons()] == ["Delete"]
    asked = await (await harness.fake.click(view, label="Delete", user=harness.mod)).wait_original()
    confirm = await harness.fake.click(asked, label="Delete for good", user=harness.mod)
    await confirm.wait_callback()
    await harness.fake.wait_for(lambda: True)
    await confirm.wait_for(lambda r: "deleted" in (r.target_message.content or ""))  # type: ignore[union-attr]
    assert await harness.rows("images") == 0


async def test_a_dm_gallery_shows_your_images_of_every_server(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(discord_guild_ids=[])  # global commands reach DMs
    payer = await harness.payer(harness.alice, harness.other)
    await harness.app.uploads.upload(payer, png(), filename="there.png", title="from other")
    await alices_image(harness)
    here = await answer(harness, "gallery", {}, user=harness.alice)
    assert "1 image" in here and "1 images" not in here
    dm = await harness.fake.slash("gallery", {}, user=harness.alice, dm=True)
    assert "2 images" in (await dm.wait_original()).embed_text()
    text = await answer(harness, "gallery", {"user": harness.bob}, user=harness.alice, dm=True)
    assert "only see your own gallery" in text
    coins = await answer(harness, "coins", {}, user=harness.alice, dm=True)
    assert "Banana Club" in coins and "Other Club" in coins


async def test_global_scope_leaves_other_balances_to_bot_admins(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(economy_scope=EconomyScope.GLOBAL, admin_user_ids=[harness.bob.id])
    owner2 = harness.owner2
    await answer(harness, "coins", {}, user=harness.alice)
    before = await harness.counts()
    text = await answer(harness, "grant", {"user": owner2, "amount": 1000}, user=owner2,
                        guild=harness.other)  # fmt: skip
    assert "only the bot's admins can grant" in text
    text = await answer(harness, "coins", {"user": harness.alice}, user=owner2,
                        guild=harness.other)  # fmt: skip
    assert "only the bot's admins can see" in text
    text = await answer(harness, "settings set", {"setting": "daily_coins", "value": "1000"},
                        user=owner2, guild=harness.other)  # fmt: skip
    assert "set by the bot's host" in text
    assert await harness.counts() == before
    # A bot admin (no Manage Server anywhere) may; one wallet serves every server.
    text = await answer(harness, "grant", {"user": harness.alice, "amount": 5}, user=harness.bob,
                        guild=harness.other)  # fmt: skip
    assert "Granted 5 coins" in text and "305" in text
    assert "alice" in await answer(harness, "coins", {"user": harness.alice}, user=harness.bob)
    assert await harness.balance(harness.alice, harness.other) == 305
    assert await harness.balance(harness.alice) == 305
