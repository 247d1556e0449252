"""WalletService: wallets by scope, grants, /daily and /coins overviews, across two servers."""

from __future__ import annotations

import pytest

from bot.config import EconomyScope
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.permissions import Actor, Identity
from storage.db import Database
from storage.models import TransactionKind
from tests.bot.services.conftest import Services, build_services
from tests.storage.helpers import assert_ledger_consistent

A, B = 9001, 9002


def who(discord_id: int, guild_id: int | None, *, manages: bool = False) -> Identity:
    return Identity(discord_id, f"user{discord_id}", guild_id=guild_id, can_manage_guild=manages)


async def act(services: Services, identity: Identity) -> Actor:
    return await services.accounts.actor(identity)


async def counts(db: Database) -> tuple[int, int, int]:
    return (
        int(await db.fetchval("SELECT COUNT(*) FROM users")),
        int(await db.fetchval("SELECT COUNT(*) FROM wallets")),
        int(await db.fetchval("SELECT COUNT(*) FROM coin_transactions")),
    )


async def test_one_wallet_per_server_with_that_servers_starter(db: Database) -> None:
    services = build_services(db, starter_coins=300)
    await services.settings.repo.change(B, "starter_coins", 20, actor_id=None)
    user = await services.accounts.ensure_user(who(1, A))
    in_a = await services.wallets.open(user, A)
    in_b = await services.wallets.open(user, B)
    assert (in_a.coins, in_b.coins) == (300, 20) and in_a.id != in_b.id
    assert (await services.wallets.open(user, A)).id == in_a.id
    with pytest.raises(NotAllowed):
        await services.wallets.open(user, None)  # a DM has no wallet per server
    await assert_ledger_consistent(db)


async def test_global_scope_has_one_wallet_and_ignores_server_gifts(db: Database) -> None:
    services = build_services(db, scope=EconomyScope.GLOBAL, starter_coins=300)
    await services.settings.repo.change(B, "starter_coins", 5000, actor_id=None)
    user = await services.accounts.ensure_user(who(1, A))
    wallet = await services.wallets.open(user, B)
    assert wallet.guild_id is None and wallet.coins == 300
    assert (await services.wallets.open(user, A)).id == wallet.id
    assert (await services.wallets.open(user, None)).id == wallet.id


async def test_grants_land_in_the_servers_wallet(db: Database) -> None:
    services = build_services(db, starter_coins=300, max_grant=1000)
    mod = await act(services, who(2, B, manages=True))
    result = await services.wallets.grant(mod, who(2, B), 1000, "  me  ")
    assert result.balance == 1300 and result.reason == "me"
    target = result.target
    assert (await services.wallets.open(target, A)).coins == 300  # not spendable in A
    row = (await services.wallets.wallets.transactions(
        (await services.wallets.open(target, B)).id
    )).items[0]  # fmt: skip
    assert row.kind is TransactionKind.GRANT and row.actor_id == result.actor.id
    await assert_ledger_consistent(db)


async def test_moderators_grant_only_in_their_own_server(db: Database) -> None:
    services = build_services(db, admins=frozenset({99}))
    before = await counts(db)
    member_in_a = await act(services, who(2, A))  # Manage Server in B only: a member in A
    with pytest.raises(NotAllowed) as info:
        await services.wallets.grant(member_in_a, who(1, A), 10)
    assert info.value.key == "grant.not_admin"
    assert await counts(db) == before
    admin = await act(services, who(99, A))
    assert (await services.wallets.grant(admin, who(1, A), 10)).balance == 310


async def test_global_scope_grants_are_for_bot_admins_only(db: Database) -> None:
    services = build_services(db, scope=EconomyScope.GLOBAL, admins=frozenset({99}))
    mod = await act(services, who(2, B, manages=True))
    with pytest.raises(NotAllowed) as info:
        await services.wallets.grant(mod, who(2, B), 10)
    assert info.value.key == "grant.global_admins_only"
    assert await counts(db) == (0, 0, 0)
    admin = await act(services, who(99, B))
    assert (await services.wallets.grant(admin, who(2, B), 10)).balance == 310


@pytest.mark.parametrize(
    ("amount", "reason", "key"),
    [(0, None, "grant.amount"), (-5, None, "grant.amount"), (1001, None, "grant.amount"),
     (True, None, "grant.amount"), (10, "r" * 201, "grant.reason_too_long")],
)  # fmt: skip
async def test_bad_grants_change_nothing(
    db: Database, amount: int, reason: str | None, key: str
) -> None:
    services = build_services(db, max_grant=1000)
    mod = await act(services, who(2, A, manages=True))
    with pytest.raises(InvalidInput) as info:
        await services.wallets.grant(mod, who(1, A), amount, reason)
    assert info.value.key == key
    assert await counts(db) == (0, 0, 0)


async def test_grant_overflow_and_bots(db: Database) -> None:
    services = build_services(db, starter_coins=0, max_grant=1000, max_balance=1000)
    mod = await act(services, who(2, A, manages=True))
    with pytest.raises(InvalidInput) as info:
        await services.wallets.grant(mod, Identity(3, "robot", is_bot=True), 1)
    assert info.value.key == "grant.bot"
    await services.wallets.grant(mod, who(1, A), 1000)
    with pytest.raises(InvalidInput) as info:
        await services.wallets.grant(mod, who(1, A), 1)
    assert info.value.key == "grant.overflow" and info.value.params["room"] == 0
    # /daily stays under MAX_BALANCE too.
    user = await services.accounts.ensure_user(who(1, A))
    with pytest.raises(InvalidInput) as daily:
        await services.wallets.claim_daily(user, A)
    assert daily.value.key == "daily.overflow" and daily.value.params == {"max": 1000}
    await assert_ledger_consistent(db)


async def test_daily_once_per_day_per_wallet(db: Database) -> None:
    services = build_services(db, starter_coins=100, daily_coins=50)
    await services.settings.repo.change(B, "daily_coins", 7, actor_id=None)
    user = await services.accounts.ensure_user(who(1, A))
    first = await services.wallets.claim_daily(user, A)
    assert (first.amount, first.balance) == (50, 150)
    with pytest.raises(InvalidInput) as info:
        await services.wallets.claim_daily(user, A)
    assert info.value.key == "daily.too_soon"
    assert info.value.params["at"] == int(first.next_claim_at.timestamp())
    assert (await services.wallets.claim_daily(user, B)).balance == 107  # its own wallet
    await services.settings.repo.change(B, "daily_coins", 0, actor_id=None)
    with pytest.raises(InvalidInput) as off:
        await services.wallets.claim_daily(user, B)
    assert off.value.key == "daily.disabled"
    await assert_ledger_consistent(db)


async def test_overviews_of_others_follow_the_rules(db: Database) -> None:
    services = build_services(db, admins=frozenset({99}))
    alice = who(1, A)
    mine = await services.wallets.overview(await act(services, alice))
    assert mine.wallet is not None and mine.wallet.coins == 300 and len(mine.recent) == 1
    before = await counts(db)
    # A moderator of B looks up alice, who only ever used A: nothing to see, nothing made.
    b_mod = await act(services, who(2, B, manages=True))
    with pytest.raises(InvalidInput) as info:
        await services.wallets.overview(b_mod, alice)
    assert info.value.key == "coins.no_wallet_here"
    # A member of A who moderates B is a plain member in A.
    with pytest.raises(NotAllowed):
        await services.wallets.overview(await act(services, who(2, A)), alice)
    assert await counts(db) == before
    a_mod = await act(services, who(3, A, manages=True))
    assert (await services.wallets.overview(a_mod, alice)).wallet == mine.wallet
    # In a DM, your wallets of every server.
    dm = await services.wallets.overview(await act(services, who(1, None)))
    assert dm.wallet is None and [w.guild_id for w in dm.wallets] == [A]


async def test_global_scope_overviews_of_others_are_for_bot_admins(db: Database) -> None:
    services = build_services(db, scope=EconomyScope.GLOBAL, admins=frozenset({99}))
    await services.wallets.overview(await act(services, who(1, A)))
    with pytest.raises(NotAllowed) as info:
        await services.wallets.overview(await act(services, who(2, A, manages=True)), who(1, A))
    assert info.value.key == "coins.other_global"
    admin_view = await services.wallets.overview(await act(services, who(99, B)), who(1, A))
    assert admin_view.wallet is not None and admin_view.wallet.guild_id is None
