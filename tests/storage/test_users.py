"""UserRepository: CRUD, Discord identity, and money-like coin rules under concurrency."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import InsufficientCoins, InvalidAmount, NotFound
from storage.ledger import INT64_MAX
from storage.models import TransactionKind, UserRole
from storage.users import UserRepository
from tests.storage.helpers import assert_ledger_consistent


async def test_create_and_lookup(users: UserRepository) -> None:
    user = await users.create(
        email="ada@example.com", google_id="g-1", discord_id=42, first_name="Ada",
        last_name="Lovelace", language="es", starter_coins=300,
    )  # fmt: skip
    assert user.coins == 300 and user.language == "es"
    assert user.full_name == "Ada Lovelace"
    assert (await users.get(user.id)) == user
    assert (await users.get_by_email("ada@example.com")) == user
    assert (await users.get_by_google_id("g-1")) == user
    assert (await users.get_by_discord_id(42)) == user
    assert await users.get_by_discord_id(43) is None
    page = await users.transactions(user.id)
    assert [t.kind for t in page.items] == [TransactionKind.STARTER]
    await assert_ledger_consistent(users.db)


async def test_update_delete_list_count(users: UserRepository) -> None:
    a = await users.create(discord_id=1, display_name="a")
    b = await users.create(discord_id=2, display_name="b")
    updated = await users.update(a.id, display_name="alpha", language="es")
    assert updated.display_name == "alpha" and updated.language == "es"
    with pytest.raises(ValueError, match="coins"):
        await users.update(a.id, coins=10**6)
    with pytest.raises(NotFound):
        await users.update("missing", display_name="x")
    assert [u.id for u in await users.list(limit=10)] == [a.id, b.id]
    assert [u.id for u in await users.list(limit=1, offset=1)] == [b.id]
    assert await users.count() == 2
    assert await users.delete(b.id) is True
    assert await users.delete(b.id) is False
    assert await users.count() == 1


async def test_roles(users: UserRepository) -> None:
    user = await users.create(discord_id=5)
    assert not user.is_admin and user.has_role(UserRole.USER)
    user = await users.add_role(user.id, UserRole.ADMIN)
    user = await users.add_role(user.id, UserRole.ADMIN)
    assert user.is_admin and user.roles.count(UserRole.ADMIN) == 1
    user = await users.remove_role(user.id, UserRole.ADMIN)
    assert not user.is_admin
    with pytest.raises(NotFound):
        await users.add_role("nobody", UserRole.ADMIN)


async def test_concurrent_first_sight_creates_one_user(users: UserRepository) -> None:
    results = await asyncio.gather(
        *(users.get_or_create_by_discord(777, display_name="x", starter_coins=300)
          for _ in range(50))
    )  # fmt: skip
    assert len({user.id for user, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await users.count() == 1
    user = results[0][0]
    assert user.coins == 300
    assert await users.ledger_sum(user.id) == 300
    await assert_ledger_consistent(users.db)


async def test_two_hundred_concurrent_debits(users: UserRepository) -> None:
    user = await users.create(discord_id=9)
    await users.credit(user.id, 1000, kind=TransactionKind.GRANT)

    async def one() -> bool:
        try:
            await users.debit(user.id, 10, kind=TransactionKind.GENERATION)
        except InsufficientCoins:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(200)))
    assert outcomes.count(True) == 100
    fresh = await users.get(user.id)
    assert fresh is not None and fresh.coins == 0
    assert await users.ledger_sum(user.id) == 0
    await assert_ledger_consistent(users.db)


async def test_insufficient_coins_carries_balance_and_cost(users: UserRepository) -> None:
    user = await users.create(discord_id=3, starter_coins=50)
    with pytest.raises(InsufficientCoins) as info:
        await users.debit(user.id, 100, kind=TransactionKind.GENERATION)
    assert (info.value.balance, info.value.cost) == (50, 100)
    assert await users.ledger_sum(user.id) == 50  # no ledger row for the refused debit


@pytest.mark.parametrize("amount", [0, -5, True, 2.5, INT64_MAX + 1])
async def test_bad_amounts_are_refused(users: UserRepository, amount: object) -> None:
    user = await users.create(discord_id=4, starter_coins=10)
    with pytest.raises(InvalidAmount):
        await users.credit(user.id, amount, kind=TransactionKind.GRANT)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        await users.debit(user.id, amount, kind=TransactionKind.GRANT)  # type: ignore[arg-type]
    assert (await users.get(user.id)).coins == 10  # type: ignore[union-attr]


async def test_credit_refuses_int64_overflow(users: UserRepository) -> None:
    from storage.errors import BalanceOverflow

    user = await users.create(discord_id=6)
    await users.credit(user.id, INT64_MAX, kind=TransactionKind.GRANT)
    with pytest.raises(BalanceOverflow):
        await users.credit(user.id, 1, kind=TransactionKind.GRANT)
    assert (await users.get(user.id)).coins == INT64_MAX  # type: ignore[union-attr]


async def test_unknown_user_debit_is_not_found(users: UserRepository) -> None:
    with pytest.raises(NotFound):
        await users.debit("ghost", 1, kind=TransactionKind.GENERATION)
    with pytest.raises(NotFound):
        await users.credit("ghost", 1, kind=TransactionKind.GRANT)


async def test_transactions_paginate_newest_first(users: UserRepository) -> None:
    user = await users.create(discord_id=8)
    admin = await users.create(discord_id=80)
    for amount in range(1, 8):
        await users.credit(
            user.id, amount, kind=TransactionKind.GRANT, actor_id=admin.id, reason=f"r{amount}"
        )
    seen: list[int] = []
    cursor = None
    while True:
        page = await users.transactions(user.id, limit=3, cursor=cursor)
        seen += [t.delta for t in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    newest = (await users.transactions(user.id, limit=1)).items[0]
    assert newest.balance_after == 28 and newest.actor_id == admin.id and newest.reason == "r7"
