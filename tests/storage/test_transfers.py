"""ledger.transfer (WalletRepository.transfer): a payment is a guarded debit and a guarded
credit, a TRANSFER row on each wallet, in one transaction or not at all, on both backends;
concurrent payments in both directions neither deadlock nor break the ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.db import Database
from storage.errors import (
    BalanceOverflow,
    InsufficientCoins,
    InvalidAmount,
    TransferLimitReached,
)
from storage.timeutil import utcnow
from storage.wallets import WalletRepository
from tests.storage.helpers import assert_ledger_consistent, member

GUILD = 9001


async def rows(db: Database) -> list[tuple[str, int, int]]:
    found = await db.fetchall(
        "SELECT wallet_id, delta, balance_after FROM coin_transactions WHERE kind = 'TRANSFER' "
        "ORDER BY seq"
    )
    return [(r["wallet_id"], int(r["delta"]), int(r["balance_after"])) for r in found]


async def test_a_transfer_is_two_rows_in_one_transaction(
    db: Database, wallets: WalletRepository
) -> None:
    alice, a = await member(db, 1, 300, GUILD)
    _, b = await member(db, 2, 50, GUILD)
    moved = await wallets.transfer(a.id, b.id, 120, actor_id=alice.id, reason="logo")
    assert (moved.payer_balance, moved.recipient_balance, moved.sent) == (180, 170, 120)
    assert await rows(db) == [(a.id, -120, 180), (b.id, 120, 170)]
    await assert_ledger_consistent(db)


async def test_refused_transfers_write_nothing(db: Database) -> None:
    alice, a = await member(db, 1, 300, GUILD)
    _, b = await member(db, 2, 340, GUILD)
    wallets = WalletRepository(db, max_balance=400)
    with pytest.raises(InsufficientCoins):
        await wallets.transfer(a.id, b.id, 301, actor_id=alice.id)
    # The recipient's cap refuses after the debit ran: the debit is undone with it.
    with pytest.raises(BalanceOverflow):
        await wallets.transfer(a.id, b.id, 61, actor_id=alice.id)
    with pytest.raises(InvalidAmount):
        await wallets.transfer(a.id, a.id, 1, actor_id=alice.id)
    since = utcnow() - timedelta(hours=24)
    await wallets.transfer(a.id, b.id, 60, actor_id=alice.id, daily_limit=100, since=since)
    with pytest.raises(TransferLimitReached) as refused:
        await wallets.transfer(a.id, b.id, 41, actor_id=alice.id, daily_limit=100, since=since)
    assert (refused.value.sent, refused.value.limit) == (60, 100)
    assert await wallets.sent_since(a.id, since) == 60
    assert [delta for _, delta, _ in await rows(db)] == [-60, 60]
    assert (await wallets.get(a.id)).coins == 240  # type: ignore[union-attr]
    await assert_ledger_consistent(db)


async def test_payments_both_ways_at_once_keep_every_coin(
    db: Database, wallets: WalletRepository
) -> None:
    alice, a = await member(db, 1, 500, GUILD)
    bob, b = await member(db, 2, 500, GUILD)

    async def one(source: str, target: str, actor: str, amount: int) -> bool:
        try:
            await wallets.transfer(source, target, amount, actor_id=actor)
        except InsufficientCoins:
            return False
        return True

    outcomes = await asyncio.gather(
        *(one(a.id, b.id, alice.id, 7 + n % 5) for n in range(60)),
        *(one(b.id, a.id, bob.id, 11 + n % 3) for n in range(60)),
    )
    assert any(outcomes)
    total = sum(w.coins for w in [await wallets.get(a.id), await wallets.get(b.id)] if w)
    assert total == 1000
    assert len(await rows(db)) == 2 * sum(outcomes)
    await assert_ledger_consistent(db)
