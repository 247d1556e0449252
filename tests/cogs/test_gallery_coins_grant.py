"""/gallery, /coins and /grant end to end."""

from __future__ import annotations

import re

import pytest

from tests.cogs.conftest import Harness, png
from tests.fakes.discord_server import FakeGuild, FakeUser
from tests.storage.helpers import assert_ledger_consistent


async def upload_many(
    harness: Harness, count: int, user: FakeUser | None = None, guild: FakeGuild | None = None
) -> None:
    """Images through the upload service (the /upload cooldown allows 5 a minute)."""
    app = harness.app
    payer = await harness.payer(user or harness.alice, guild)
    for n in range(count):
        await app.uploads.upload(payer, png(30 + n, 30), filename=f"{n}.png", title=f"pic {n}")


async def test_empty_gallery_hints_at_generate(harness: Harness) -> None:
    rec = await harness.fake.slash("gallery", {}, user=harness.alice)
    message = await rec.wait_original()
    assert message.ephemeral and "/generate" in message.content


async def test_gallery_pages_and_opens_an_image(harness: Harness) -> None:
    await upload_many(harness, 11)
    rec = await harness.fake.slash("gallery", {}, user=harness.alice)
    page1 = await rec.wait_original()
    assert page1.ephemeral and "gallery.jpg" in page1.filenames
    assert "Page 1 of 2" in page1.embed_text() and "11 images" in page1.embed_text()
    select = page1.selects()[0]
    assert len(select["options"]) == 9 and select["options"][0]["label"].startswith("1. pic 10")
    assert page1.button("Previous")["disabled"] is True
    nxt = await harness.fake.click(page1, label="Next", user=harness.alice)
    await nxt.wait_callback()
    page2 = nxt.target_message
    assert page2 is not None
    await nxt.wait_for(lambda r: "Page 2 of 2" in r.target_message.embed_text())  # type: ignore[union-attr]
    options = page2.selects()[0]["options"]
    assert [o["label"][:4] for o in options] == ["10. ", "11. "]
    chosen = options[1]["value"]
    opened_rec = await harness.fake.select(page2, page2.selects()[0]["custom_id"], [chosen],
                                           user=harness.alice)  # fmt: skip
    opened = await opened_rec.wait_original()
    prev = await harness.fake.click(page2, label="Previous", user=harness.alice)
    await prev.wait_for(lambda r: "Page 1 of 2" in r.target_message.embed_text())  # type: ignore[union-attr]
    assert opened.ephemeral and "pic 0" in opened.embed_text()
    assert any(name.startswith("image-") for name in opened.filenames)
    assert [b["label"] for b in opened.buttons()] == ["Edit", "Delete"]
    # The footer shows the short id, and /gallery image: opens it by that.
    short = chosen[:8]
    assert f"Image id: {short}" in opened.embed_text() and chosen not in opened.embed_text()
    by_id = await harness.fake.slash("gallery", {"image": short}, user=harness.alice)
    assert "pic 0" in (await by_id.wait_original()).embed_text()


async def test_gallery_of_another_member_and_kinds(harness: Harness) -> None:
    await upload_many(harness, 2)
    rec = await harness.fake.slash("gallery", {"user": harness.alice}, user=harness.bob)
    page = await rec.wait_original()
    assert "alice" in page.embed_text()
    opened_rec = await harness.fake.select(
        page, page.selects()[0]["custom_id"], [page.selects()[0]["options"][0]["value"]],
        user=harness.bob,
    )  # fmt: skip
    opened = await opened_rec.wait_original()
    assert opened.buttons() == []  # not the owner, not a moderator
    generated = await harness.fake.slash("gallery", {"kind": "generated"}, user=harness.alice)
    assert "/generate" in (await generated.wait_original()).content
    nobody = await harness.fake.slash("gallery", {"user": harness.bob}, user=harness.alice)
    assert "has no images yet" in (await nobody.wait_original()).content
    assert await harness.app.accounts.find(harness.bob.id) is not None  # bob ran it


@pytest.mark.parametrize(
    ("reference", "phrase"), [("abc", "at least 8 characters"), ("0" * 8, "doesn't exist")]
)
async def test_gallery_image_ids_that_dont_fit(
    harness: Harness, reference: str, phrase: str
) -> None:
    rec = await harness.fake.slash("gallery", {"image": reference}, user=harness.alice)
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content


async def test_coins_shows_balance_stats_and_history(harness: Harness) -> None:
    await upload_many(harness, 1)
    rec = await harness.fake.slash("coins", {}, user=harness.alice)
    message = await rec.wait_original()
    text = message.embed_text()
    assert message.ephemeral and "🪙 300" in text and "Uploaded\n1" in text
    assert "+300" in text


async def test_coins_of_another_member_is_for_moderators(harness: Harness) -> None:
    await (await harness.fake.slash("coins", {}, user=harness.alice)).wait_original()
    rec = await harness.fake.slash("coins", {"user": harness.alice}, user=harness.bob)
    assert "Only this server's moderators" in (await rec.wait_original()).content
    rec = await harness.fake.slash("coins", {"user": harness.alice}, user=harness.mod)
    assert "alice" in (await rec.wait_original()).embed_text()
    rec = await harness.fake.slash("coins", {"user": harness.robot}, user=harness.mod)
    assert "Bots don't have coins" in (await rec.wait_original()).content


async def test_grant_by_moderator(harness: Harness) -> None:
    rec = await harness.fake.slash(
        "grant", {"user": harness.alice, "amount": 250, "reason": "art contest"}, user=harness.mod
    )
    message = await rec.wait_original()
    assert message.ephemeral and "Granted 250 coins" in message.content and "550" in message.content
    wallet = await harness.app.wallets.peek(
        await harness.app.accounts.find(harness.alice.id),  # type: ignore[arg-type]
        harness.guild.id,
    )
    assert wallet is not None
    row = (await harness.app.wallets.wallets.transactions(wallet.id)).items[0]
    assert row.kind == "GRANT" and row.actor_id == await harness.user_id(harness.mod)
    assert row.reason == "art contest"
    await assert_ledger_consistent(harness.app.db)
    # The member is told by DM: amount, reason, who, where.
    notice = await harness.fake.wait_for_message(
        lambda m: "250 coins" in m.content, channel=harness.fake.dm_channel(harness.alice)
    )
    assert "art contest" in notice.content and "Banana Club" in notice.content
    assert "mod" in notice.content and "550" in notice.content


async def test_grant_notice_falls_back_to_the_channel(harness: Harness) -> None:
    closed = harness.fake.add_user("closed", guilds=[harness.guild], accepts_dms=False)
    rec = await harness.fake.slash("grant", {"user": closed, "amount": 7}, user=harness.mod)
    assert "Granted 7 coins" in (await rec.wait_original()).content
    notice = await harness.fake.wait_for_message(
        lambda m: "7 coins" in m.content, channel=harness.guild.default_channel
    )
    assert f"<@{closed.id}>" in notice.content and "no reason given" in notice.content
    # The balance (307) stays private (the mentions' snowflakes may hold those digits).
    assert "307" not in re.sub(r"<@\d+>", "", notice.content)


async def test_grant_and_settings_are_visible_to_everyone(harness: Harness) -> None:
    # Bot admins without Manage Server must see them; the bot's own check decides.
    commands = harness.fake.commands(harness.guild)
    assert commands["grant"]["default_member_permissions"] is None
    assert commands["settings"]["default_member_permissions"] is None


async def test_every_numeric_option_is_within_discords_range(harness: Harness) -> None:
    """Discord refuses a whole sync over one min/max outside ±2^53 (the fake checks the spec
    on every sync; this names the rule for our own commands)."""
    limit = 2**53 - 1
    for command in harness.fake.commands(harness.guild).values():
        for option in command.get("options") or []:
            if option["type"] in (4, 10):
                for bound in ("min_value", "max_value"):
                    assert -limit <= option.get(bound, 0) <= limit, (command["name"], option)


@pytest.mark.parametrize(
    ("amount", "phrase"), [(0, "between 1 and 1000"), (-5, "between 1 and 1000"),
                           (1001, "between 1 and 1000"),
                           # Discord's largest INTEGER option, and one past it (a forged
                           # payload: clients never send it, the bot still answers clearly).
                           (2**53 - 1, "between 1 and 1000"), (2**53 + 1, "between 1 and 1000")],
)  # fmt: skip
async def test_bad_grant_amounts(harness: Harness, amount: int, phrase: str) -> None:
    before = await harness.counts()
    rec = await harness.fake.slash("grant", {"user": harness.alice, "amount": amount},
                                   user=harness.mod)  # fmt: skip
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content
    assert await harness.counts() == before


async def test_bad_grant_reason_and_non_integer_amount(harness: Harness) -> None:
    before = await harness.counts()
    rec = await harness.fake.slash(
        "grant", {"user": harness.alice, "amount": 5, "reason": "x" * 201}, user=harness.mod
    )
    assert "at most 200 characters" in (await rec.wait_original()).content
    raw = {"name": "amount", "type": 3, "value": "ten"}  # what a broken client could send
    rec = await harness.fake.slash(
        "grant", [("user", harness.alice), raw], user=harness.mod, validate=False
    )
    assert (await rec.wait_original()).ephemeral
    assert await harness.counts() == before


async def test_grant_refused_for_members_and_to_bots(harness: Harness) -> None:
    rec = await harness.fake.slash("grant", {"user": harness.bob, "amount": 10}, user=harness.alice)
    assert "Only this server's moderators" in (await rec.wait_original()).content
    assert await harness.balance(harness.bob) == 300
    rec = await harness.fake.slash("grant", {"user": harness.robot, "amount": 10},
                                   user=harness.mod)  # fmt: skip
    assert "Bots can't hold coins" in (await rec.wait_original()).content
    assert await harness.app.accounts.find(harness.robot.id) is None


async def test_admin_user_ids_may_grant_without_manage_server(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(admin_user_ids=[harness.bob.id])
    rec = await harness.fake.slash("grant", {"user": harness.alice, "amount": 5}, user=harness.bob)
    assert "Granted 5 coins" in (await rec.wait_original()).content
