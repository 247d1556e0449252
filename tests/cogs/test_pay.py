"""/pay end to end: members give coins to each other within the wallet scope, both ledger rows
in one transaction, under the server's daily limit, never to a bot or to oneself, never from
or to a member blocked there, never below zero or past the maximum balance, in both economy
scopes and two servers, and concurrently from both sides."""

from __future__ import annotations

import asyncio
import re

from bot.config import EconomyScope
from tests.cogs.conftest import Harness
from tests.cogs.test_blocklist_private import settings
from tests.fakes.discord_server import FakeGuild, FakeUser, InteractionRecord
from tests.storage.helpers import assert_ledger_consistent


async def pay(
    h: Harness, payer: FakeUser, member: FakeUser, amount: int, *,
    guild: FakeGuild | None = None, reason: str | None = None,
) -> str:  # fmt: skip
    """The payer's (private) answer to a /pay."""
    options: dict[str, object] = {"member": member, "amount": amount}
    if reason is not None:
        options["reason"] = reason
    rec = await h.fake.slash("pay", options, user=payer, guild=guild)
    return await private_text(rec)


async def private_text(rec: InteractionRecord) -> str:
    message = await rec.wait_original(timeout=10)
    assert message.ephemeral, message.content
    return message.content


async def transfers(h: Harness) -> list[tuple[int, str | None]]:
    rows = await h.app.db.fetchall(
        "SELECT delta, reason FROM coin_transactions WHERE kind = 'TRANSFER' ORDER BY seq"
    )
    return [(int(r["delta"]), r["reason"]) for r in rows]


async def test_a_payment_moves_coins_with_two_ledger_rows_and_tells_the_recipient(
    harness: Harness,
) -> None:
    h = harness
    text = await pay(h, h.alice, h.bob, 120, reason="for the  logo")
    assert "You paid 120 coins" in text and "is now 180" in text
    assert "880 coins more today" in text  # PAY_DAILY_LIMIT's default, 1000
    assert await h.balance(h.alice) == 180 and await h.balance(h.bob) == 420
    assert await transfers(h) == [(-120, "for the logo"), (120, "for the logo")]
    actors = await h.app.db.fetchall(
        "SELECT DISTINCT actor_id FROM coin_transactions WHERE kind = 'TRANSFER'"
    )
    assert [r["actor_id"] for r in actors] == [await h.user_id(h.alice)]
    notice = await h.fake.wait_for_message(
        lambda m: "120 coins" in m.content, channel=h.fake.dm_channel(h.bob)
    )
    assert "alice" in notice.content and "for the logo" in notice.content
    assert "Banana Club" in notice.content and "420" in notice.content
    # Both histories show it.
    rec = await h.fake.slash("coins", {}, user=h.bob)
    assert "💸 `+120`" in (await rec.wait_original()).embed_text()
    await assert_ledger_consistent(h.app.db)


async def test_a_recipient_with_closed_dms_is_mentioned_without_their_balance(
    harness: Harness,
) -> None:
    h = harness
    closed = h.fake.add_user("closed", guilds=[h.guild], accepts_dms=False)
    assert "You paid 7 coins" in await pay(h, h.alice, closed, 7)
    notice = await h.fake.wait_for_message(
        lambda m: "paid you 7 coins" in m.content, channel=h.guild.default_channel
    )
    assert f"<@{closed.id}>" in notice.content
    assert "307" not in re.sub(r"<@\d+>", "", notice.content)


async def test_bad_payments_are_private_and_free(harness: Harness) -> None:
    h = harness
    await pay(h, h.alice, h.bob, 1)  # both wallets open
    before = await h.counts()
    assert "Bots can't hold coins" in await pay(h, h.alice, h.robot, 10)
    assert "can't pay yourself" in await pay(h, h.alice, h.alice, 10)
    assert "not enough to pay 300 coins" in await pay(h, h.alice, h.bob, 300)
    for amount in (0, -5):
        assert "whole number of coins" in await pay(h, h.alice, h.bob, amount)
    rec = await h.fake.slash(
        "pay", [("member", h.bob), {"name": "amount", "type": 4, "value": 2.5}],
        user=h.alice, validate=False,
    )  # fmt: skip
    assert "whole number of coins" in await private_text(rec)
    assert await h.counts() == before
    assert await h.balance(h.alice) == 299 and await h.balance(h.bob) == 301
    await assert_ledger_consistent(h.app.db)


async def test_the_daily_limit_is_per_server_and_counts_the_last_24_hours(
    harness: Harness,
) -> None:
    h = harness
    await settings(h, "set", {"setting": "pay_daily_limit", "value": "100"})
    assert "40 coins more today" in await pay(h, h.alice, h.bob, 60)
    text = await pay(h, h.alice, h.bob, 50)
    assert "at most 100 coins a day" in text and "pay 40 coins more" in text
    assert "pay 0 coins more" in await pay(h, h.alice, h.bob, 40)
    assert "at most 100 coins a day" in await pay(h, h.alice, h.bob, 1)
    # A payment received doesn't count: bob pays from what he has.
    assert "You paid 100 coins" in await pay(h, h.bob, h.alice, 100)
    # Another server, its own wallets and its own (default) limit.
    assert "You paid 200 coins" in await pay(h, h.alice, h.owner2, 200, guild=h.other)
    # A day later the limit is free again.
    await h.app.db.execute(
        "UPDATE coin_transactions SET created_at = '2000-01-01T00:00:00.000000Z' "
        "WHERE kind = 'TRANSFER'"
    )
    assert "You paid 100 coins" in await pay(h, h.alice, h.bob, 100)
    # Off: 0.
    await settings(h, "set", {"setting": "pay_daily_limit", "value": "0"})
    assert "turned off in this server" in await pay(h, h.alice, h.bob, 1)
    assert await h.balance(h.alice) == 300 - 100 + 100 - 100
    assert await h.balance(h.alice, h.other) == 100
    await assert_ledger_consistent(h.app.db)


async def test_blocked_members_neither_pay_nor_receive(harness: Harness) -> None:
    h = harness
    await settings(h, "block", {"member": h.bob, "reason": "spam"})
    assert "blocked in this server" in await pay(h, h.alice, h.bob, 10)
    assert "blocked in this server and can't pay anyone" in await pay(h, h.bob, h.alice, 10)
    assert await transfers(h) == []


async def test_a_payment_never_passes_the_recipients_maximum_balance(harness: Harness) -> None:
    h = harness
    await h.stop_bot()
    await h.start_bot(max_balance=350)
    text = await pay(h, h.alice, h.bob, 60)
    assert "past the maximum" in text and "at most 50 coins" in text
    assert await h.balance(h.alice) == 300 and await h.balance(h.bob) == 300
    assert "You paid 50 coins" in await pay(h, h.alice, h.bob, 50)
    await assert_ledger_consistent(h.app.db)


async def test_payments_at_once_from_both_sides_keep_the_ledger_whole(harness: Harness) -> None:
    h = harness
    await pay(h, h.alice, h.bob, 1)
    await pay(h, h.bob, h.alice, 1)
    # Each pays the other everything at once: both go through, in some order.
    recs = await asyncio.gather(
        h.fake.slash("pay", {"member": h.bob, "amount": 300}, user=h.alice),
        h.fake.slash("pay", {"member": h.alice, "amount": 300}, user=h.bob),
    )
    answers = [await private_text(rec) for rec in recs]
    assert all("You paid 300 coins" in a for a in answers), answers
    assert await h.balance(h.alice) == 300 and await h.balance(h.bob) == 300
    # Two payments of more than half the balance at once: exactly one goes through.
    racing = await asyncio.gather(
        *[h.fake.slash("pay", {"member": h.bob, "amount": 200}, user=h.alice) for _ in range(2)]
    )
    answers = [await private_text(rec) for rec in racing]
    assert sum("You paid 200 coins" in a for a in answers) == 1, answers
    assert sum("not enough to pay 200 coins" in a for a in answers) == 1, answers
    assert await h.balance(h.alice) == 100 and await h.balance(h.bob) == 500
    assert len(await transfers(h)) == 2 * 5
    await assert_ledger_consistent(h.app.db)


async def test_in_the_global_economy_a_payment_moves_global_coins(harness: Harness) -> None:
    h = harness
    await h.stop_bot()
    await h.start_bot(economy_scope=EconomyScope.GLOBAL)
    assert "You paid 30 coins" in await pay(h, h.alice, h.bob, 30, guild=h.other)
    # One wallet each, wherever they look.
    assert await h.balance(h.bob) == 330 and await h.balance(h.bob, h.other) == 330
    assert await h.balance(h.alice, h.other) == 270
    wallets = await h.app.db.fetchval("SELECT COUNT(*) FROM wallets WHERE guild_id IS NOT NULL")
    assert wallets == 0
    # Each server's limit counts what the wallet paid anywhere.
    await settings(h, "set", {"setting": "pay_daily_limit", "value": "50"})
    text = await pay(h, h.alice, h.bob, 30)
    assert "at most 50 coins a day" in text and "pay 20 coins more" in text
    await assert_ledger_consistent(h.app.db)
