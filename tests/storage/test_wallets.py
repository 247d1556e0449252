"""WalletRepository: one wallet per member per server (or global), money-like rules under
concurrency, carried-over wallets, and the daily claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.db import Database
from storage.errors import (
    AlreadyClaimed,
    BalanceOverflow,
    InsufficientCoins,
    InvalidAmount,
    NotFound,
)
from storage.ledger import INT64_MAX
from storage.models import TransactionKind
from storage.timeutil import utcnow
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.storage.helpers import assert_ledger_consistent, member

GUILD_A, GUILD_B = 9001, 9002


async def test_one_wallet_per_server_and_one_global(
    users: UserRepository, wallets: WalletRepository
) -> None:
    user = await users.create(discord_id=1)
    a = await wallets.open(user.id, GUILD_A, starter_coins=300)
    b = await wallets.open(user.id, GUILD_B, starter_coins=50)
    glob = await wallets.open(user.id, None, starter_coins=10)
    assert a.created and b.created and glob.created
    assert (a.wallet.coins, b.wallet.coins, glob.wallet.coins) == (300, 50, 10)
    assert a.wallet.guild_id == GUILD_A and glob.wallet.guild_id is None
    again = await wallets.open(user.id, GUILD_A, starter_coins=300)
    assert again.wallet.id == a.wallet.id and not again.created and again.wallet.coins == 300
    assert await wallets.find(user.id, GUILD_A) == a.wallet
    assert await wallets.find(user.id, None) == glob.wallet
    assert await wallets.find(user.id, 1234) is None
    assert [w.guild_id for w in await wallets.list_for_user(user.id)] == [None, GUILD_A, GUILD_B]
    await assert_ledger_consistent(users.db)


async def test_concurrent_first_use_opens_one_wallet_with_one_gift(
    users: UserRepository, wallets: WalletRepository
) -> None:
    user = await users.create(discord_id=1)
    openings = await asyncio.gather(
        *(wallets.open(user.id, GUILD_A, starter_coins=300) for _ in range(40))
    )
    assert len({o.wallet.id for o in openings}) == 1
    assert sum(o.created for o in openings) == 1
    assert await wallets.ledger_sum(openings[0].wallet.id) == 300
    await assert_ledger_consistent(users.db)


async def test_a_carried_over_wallet_goes_to_the_first_server_once(
    db: Database, users: UserRepository, wallets: WalletRepository
) -> None:
    user = await users.create(discord_id=1)
    legacy = await wallets.open(user.id, None, starter_coins=120)
    await db.execute("UPDATE wallets SET carried_over = 1 WHERE id = ?", (legacy.wallet.id,))
    first = await wallets.open(user.id, GUILD_A, starter_coins=300, adopt_carried_over=True)
    assert first.adopted and not first.created
    assert first.wallet.id == legacy.wallet.id and first.wallet.coins == 120
    assert first.wallet.guild_id == GUILD_A and not first.wallet.carried_over
    second = await wallets.open(user.id, GUILD_B, starter_coins=300, adopt_carried_over=True)
    assert second.created and second.wallet.coins == 300
    # Without adoption (global scope) a fresh global wallet is opened.
    assert await wallets.find(user.id, None) is None
    await assert_ledger_consistent(db)


async def test_two_hundred_concurrent_debits(db: Database, wallets: WalletRepository) -> None:
    _, wallet = await member(db, 9, 1000)

    async def one() -> bool:
        try:
            await wallets.debit(wallet.id, 10, kind=TransactionKind.GENERATION)
        except InsufficientCoins:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(200)))
    assert outcomes.count(True) == 100
    fresh = await wallets.get(wallet.id)
    assert fresh is not None and fresh.coins == 0
    assert await wallets.ledger_sum(wallet.id) == 0
    await assert_ledger_consistent(db)


async def test_wallets_of_two_servers_are_separate(db: Database, wallets: WalletRepository) -> None:
    user, a = await member(db, 1, 100, GUILD_A)
    b = (await wallets.open(user.id, GUILD_B, starter_coins=0)).wallet
    with pytest.raises(InsufficientCoins) as info:
        await wallets.debit(b.id, 10, kind=TransactionKind.GENERATION)
    assert (info.value.balance, info.value.cost) == (0, 10)
    assert await wallets.debit(a.id, 10, kind=TransactionKind.GENERATION) == 90
    await assert_ledger_consistent(db)


@pytest.mark.parametrize("amount", [0, -5, True, 2.5, INT64_MAX + 1])
async def test_bad_amounts_are_refused(
    db: Database, wallets: WalletRepository, amount: object
) -> None:
    _, wallet = await member(db, 4, 10)
    with pytest.raises(InvalidAmount):
        await wallets.credit(wallet.id, amount, kind=TransactionKind.GRANT)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        await wallets.debit(wallet.id, amount, kind=TransactionKind.GRANT)  # type: ignore[arg-type]
    assert (await wallets.get(wallet.id)).coins == 10  # type: ignore[union-attr]


async def test_credit_refuses_int64_overflow(db: Database, wallets: WalletRepository) -> None:
    _, wallet = await member(db, 6)
    await wallets.credit(wallet.id, INT64_MAX, kind=TransactionKind.GRANT)
    with pytest.raises(BalanceOverflow):
        await wallets.credit(wallet.id, 1, kind=TransactionKind.GRANT)
    assert (await wallets.get(wallet.id)).coins == INT64_MAX  # type: ignore[union-attr]


async def test_unknown_wallet_is_not_found(wallets: WalletRepository) -> None:
    with pytest.raises(NotFound):
        await wallets.debit("ghost", 1, kind=TransactionKind.GENERATION)
    with pytest.raises(NotFound):
        await wallets.credit("ghost", 1, kind=TransactionKind.GRANT)
    with pytest.raises(NotFound):
        await wallets.claim_daily("ghost", 1, not_since=utcnow())


async def test_transactions_paginate_newest_first(db: Database, wallets: WalletRepository) -> None:
    _, wallet = await member(db, 8)
    admin, _ = await member(db, 80)
    for amount in range(1, 8):
        await wallets.credit(
            wallet.id, amount, kind=TransactionKind.GRANT, actor_id=admin.id, reason=f"r{amount}"
        )
    seen: list[int] = []
    cursor = None
    while True:
        page = await wallets.transactions(wallet.id, limit=3, cursor=cursor)
        seen += [t.delta for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    newest = (await wallets.transactions(wallet.id, limit=1)).items[0]
    assert newest.balance_after == 28 and newest.actor_id == admin.id and newest.reason == "r7"
    assert newest.wallet_id == wallet.id


async def test_daily_claim_once_per_period(db: Database, wallets: WalletRepository) -> None:
    _, wallet = await member(db, 1, 10, GUILD_A)
    day = timedelta(hours=24)
    claims = await asyncio.gather(
        *(wallets.claim_daily(wallet.id, 50, not_since=utcnow() - day) for _ in range(10)),
        return_exceptions=True,
    )
    assert [c for c in claims if isinstance(c, int)] == [60]
    refused = [c for c in claims if isinstance(c, AlreadyClaimed)]
    assert len(refused) == 9
    claimed = await wallets.get(wallet.id)
    assert claimed is not None and claimed.daily_claimed_at == refused[0].claimed_at
    rows = (await wallets.transactions(wallet.id)).items
    assert [r.kind for r in rows] == [TransactionKind.DAILY, TransactionKind.STARTER]
    # A period later (seen from a clock a day ahead), it opens again.
    later = await wallets.claim_daily(wallet.id, 50, not_since=utcnow() + timedelta(seconds=1))
    assert later == 110
    await assert_ledger_consistent(db)
