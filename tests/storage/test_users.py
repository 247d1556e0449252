"""UserRepository: CRUD, Discord identity and roles (coins live in wallets: test_wallets.py)."""

from __future__ import annotations

import asyncio

import pytest

from storage.errors import NotFound
from storage.models import UserRole
from storage.users import UserRepository


async def test_create_and_lookup(users: UserRepository) -> None:
    user = await users.create(
        email="ada@example.com", google_id="g-1", discord_id=42, first_name="Ada",
        last_name="Lovelace", language="es",
    )  # fmt: skip
    assert user.language == "es"
    assert user.full_name == "Ada Lovelace"
    assert (await users.get(user.id)) == user
    assert (await users.get_by_email("ada@example.com")) == user
    assert (await users.get_by_google_id("g-1")) == user
    assert (await users.get_by_discord_id(42)) == user
    assert await users.get_by_discord_id(43) is None


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
        *(users.get_or_create_by_discord(777, display_name="x") for _ in range(50))
    )
    assert len({user.id for user, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert await users.count() == 1
