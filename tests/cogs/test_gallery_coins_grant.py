"""/gallery, /coins and /grant end to end."""

from __future__ import annotations

import pytest

from tests.cogs.conftest import Harness, png
from tests.storage.helpers import assert_ledger_consistent


async def upload_many(harness: Harness, count: int) -> None:
    """Alice's images, through the upload service (the /upload cooldown allows 5 a minute)."""
    app = harness.app
    alice, _ = await app.user_repo.get_or_create_by_discord(harness.alice.id, starter_coins=300)
    for n in range(count):
        await app.uploads.upload(alice, png(30 + n, 30), filename=f"{n}.png", title=f"pic {n}")


async def test_empty_gallery_hints_at_generate(harness: Harness) -> None:
    rec = await harness.fake.slash("gallery", {}, user=harness.alice)
    message = await rec.wait_original()
    assert message.ephemeral and "/generate" in message.content


async def test_gallery_pages_and_opens_an_image(harness: Harness) -> None:
    await upload_many(harness, 11)
    rec = await harness.fake.slash("gallery", {}, user=harness.alice)
    page1 = await rec.wait_original()
    assert page1.ephemeral and "gallery.png" in page1.filenames
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
    assert await harness.app.user_repo.get_by_discord_id(harness.bob.id) is not None  # bob ran it


async def test_coins_shows_balance_stats_and_history(harness: Harness) -> None:
    await upload_many(harness, 1)
    rec = await harness.fake.slash("coins", {}, user=harness.alice)
    message = await rec.wait_original()
    text = message.embed_text()
    assert message.ephemeral and "🪙 300" in text and "Uploaded\n1" in text
    assert "+300" in text


async def test_coins_of_another_member_is_for_moderators(harness: Harness) -> None:
    rec = await harness.fake.slash("coins", {"user": harness.alice}, user=harness.bob)
    assert "Only moderators" in (await rec.wait_original()).content
    rec = await harness.fake.slash("coins", {"user": harness.alice}, user=harness.mod)
    assert "alice" in (await rec.wait_original()).embed_text()
    rec = await harness.fake.slash("coins", {"user": harness.robot}, user=harness.mod)
    assert "Bots don't have coins" in (await rec.wait_original()).content


async def test_spanish_messages(harness: Harness) -> None:
    rec = await harness.fake.slash("coins", {}, user=harness.alice, locale="es-ES")
    assert "Saldo" in (await rec.wait_original()).embed_text()
    rec = await harness.fake.slash("generate", {"prompt": " "}, user=harness.alice)
    assert "Tu descripción está vacía" in (await rec.wait_original()).content


async def test_grant_by_moderator(harness: Harness) -> None:
    rec = await harness.fake.slash(
        "grant", {"user": harness.alice, "amount": 250, "reason": "art contest"}, user=harness.mod
    )
    message = await rec.wait_original()
    assert message.ephemeral and "Granted 250 coins" in message.content and "550" in message.content
    alice = await harness.app.user_repo.get_by_discord_id(harness.alice.id)
    mod = await harness.app.user_repo.get_by_discord_id(harness.mod.id)
    assert alice is not None and mod is not None
    row = (await harness.app.user_repo.transactions(alice.id)).items[0]
    assert row.kind == "GRANT" and row.actor_id == mod.id and row.reason == "art contest"
    await assert_ledger_consistent(harness.app.db)


async def test_grant_command_is_marked_for_manage_server(harness: Harness) -> None:
    command = harness.fake.commands(harness.guild)["grant"]
    assert int(command["default_member_permissions"]) & (1 << 5)


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
    rec = await harness.fake.slash("grant", {"user": harness.alice, "amount": amount},
                                   user=harness.mod)  # fmt: skip
    message = await rec.wait_original()
    assert message.ephemeral and phrase in message.content
    assert await harness.balance(harness.alice) == 300
    assert await harness.app.user_repo.get_by_discord_id(harness.alice.id) is None


async def test_grant_refused_for_members_and_to_bots(harness: Harness) -> None:
    rec = await harness.fake.slash("grant", {"user": harness.bob, "amount": 10}, user=harness.alice)
    assert "Only moderators" in (await rec.wait_original()).content
    assert await harness.balance(harness.bob) == 300
    rec = await harness.fake.slash("grant", {"user": harness.robot, "amount": 10},
                                   user=harness.mod)  # fmt: skip
    assert "Bots can't hold coins" in (await rec.wait_original()).content
    assert await harness.app.user_repo.get_by_discord_id(harness.robot.id) is None


async def test_admin_user_ids_may_grant_without_manage_server(harness: Harness) -> None:
    await harness.stop_bot()
    await harness.start_bot(admin_user_ids=[harness.bob.id])
    rec = await harness.fake.slash("grant", {"user": harness.alice, "amount": 5}, user=harness.bob)
    assert "Granted 5 coins" in (await rec.wait_original()).content
