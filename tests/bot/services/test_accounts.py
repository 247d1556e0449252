"""AccountService: first sight, admin rules, grants and overviews."""

from __future__ import annotations

import pytest

from bot.services.accounts import AccountService, Identity
from bot.services.errors import InvalidInput, NotAllowed
from storage.images import ImageRepository
from storage.ledger import INT64_MAX
from storage.models import TransactionKind, UserRole
from storage.users import UserRepository
from tests.storage.helpers import assert_ledger_consistent

ALICE = Identity(1, "alice", locale="es-ES")
MOD = Identity(2, "mod", can_manage_guild=True)
BOT = Identity(3, "robot", is_bot=True)
OWNER = Identity(4, "owner")


@pytest.fixture
def accounts(users: UserRepository, images: ImageRepository) -> AccountService:
    return AccountService(
        users, images, starter_coins=300, max_grant=1000, admin_user_ids=frozenset({4})
    )


async def test_first_sight_gives_starter_coins_and_language(accounts: AccountService) -> None:
    user = await accounts.ensure_user(ALICE)
    again = await accounts.ensure_user(ALICE)
    assert user.id == again.id and user.coins == 300 and user.language == "es"
    assert (await accounts.ensure_user(Identity(9, "x", locale="ja"))).language == "en"


async def test_admin_sources(accounts: AccountService, users: UserRepository) -> None:
    assert await accounts.is_admin(MOD)
    assert await accounts.is_admin(OWNER)
    assert not await accounts.is_admin(ALICE)
    alice = await accounts.ensure_user(ALICE)
    await users.add_role(alice.id, UserRole.ADMIN)
    assert await accounts.is_admin(ALICE)


async def test_grant_writes_ledger_row_with_actor(
    accounts: AccountService, users: UserRepository
) -> None:
    result = await accounts.grant(MOD, ALICE, 250, "  contest winner ")
    assert result.balance == 550 and result.amount == 250
    row = (await users.transactions(result.target.id)).items[0]
    mod = await users.get_by_discord_id(MOD.discord_id)
    assert row.kind is TransactionKind.GRANT and row.actor_id == mod.id  # type: ignore[union-attr]
    assert row.reason == "contest winner"
    await assert_ledger_consistent(users.db)


@pytest.mark.parametrize("amount", [0, -5, 1001, True])
async def test_bad_grant_amounts(
    accounts: AccountService, users: UserRepository, amount: int
) -> None:
    with pytest.raises(InvalidInput) as info:
        await accounts.grant(MOD, ALICE, amount)
    assert info.value.key == "grant.amount" and info.value.params == {"max": 1000}
    assert await users.count() == 0  # refused before anyone was created


async def test_grant_to_bot_and_by_non_admin(
    accounts: AccountService, users: UserRepository
) -> None:
    with pytest.raises(InvalidInput) as info:
        await accounts.grant(MOD, BOT, 10)
    assert info.value.key == "grant.bot"
    with pytest.raises(NotAllowed) as denied:
        await accounts.grant(ALICE, MOD, 10)
    assert denied.value.key == "grant.not_admin"
    assert await users.get_by_discord_id(MOD.discord_id) is None  # no account made for target


async def test_grant_overflow_is_refused(users: UserRepository, images: ImageRepository) -> None:
    accounts = AccountService(users, images, starter_coins=0, max_grant=INT64_MAX)
    await accounts.grant(MOD, ALICE, INT64_MAX)
    with pytest.raises(InvalidInput) as info:
        await accounts.grant(MOD, ALICE, 1)
    assert info.value.key == "grant.overflow"


async def test_overview_of_self_and_others(accounts: AccountService) -> None:
    mine = await accounts.overview(ALICE)
    assert mine.user.coins == 300 and len(mine.recent) == 1
    with pytest.raises(NotAllowed):
        await accounts.overview(ALICE, MOD)
    theirs = await accounts.overview(MOD, ALICE)
    assert theirs.user.id == mine.user.id
    with pytest.raises(InvalidInput):
        await accounts.overview(MOD, BOT)
