"""ApiTokenRepository on a real file: hashes only, a guarded limit, revocation, last use."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.api_tokens import ApiTokenRepository, TooManyTokens
from storage.db import Database
from storage.timeutil import utcnow
from tests.storage.helpers import member

GUILD = 111


async def test_create_find_touch_revoke(db: Database) -> None:
    user, _ = await member(db, 1, 0, GUILD)
    repo = ApiTokenRepository(db)
    token = await repo.create(user_id=user.id, guild_id=GUILD, name="script",
                              token_hash="h1", prefix="nbt_abc", max_active=5)  # fmt: skip
    assert token.active and token.guild_id == GUILD and token.last_used_at is None
    assert await repo.find_by_hash("h1") == token and await repo.find_by_hash("h2") is None
    later = utcnow() + timedelta(minutes=5)
    await repo.touch(token.id, later)
    await repo.touch(token.id, later - timedelta(minutes=1))  # never goes back in time
    found = await repo.find_by_hash("h1")
    assert found is not None and found.last_used_at == later
    other, _ = await member(db, 2, 0, GUILD)
    assert await repo.revoke(other.id, token.id) is None  # not theirs
    revoked = await repo.revoke(user.id, token.id)
    assert revoked is not None and not revoked.active
    assert await repo.revoke(user.id, token.id) is None  # once
    assert [t.id for t in await repo.list_for_member(user.id, GUILD)] == [token.id]
    assert await repo.list_for_member(user.id, 222) == []


async def test_the_limit_holds_under_concurrency(db: Database) -> None:
    user, _ = await member(db, 1, 0, GUILD)
    repo = ApiTokenRepository(db)
    results = await asyncio.gather(
        *(repo.create(user_id=user.id, guild_id=GUILD, name=f"t{n}", token_hash=f"h{n}",
                      prefix="nbt_", max_active=3) for n in range(8)),
        return_exceptions=True,
    )  # fmt: skip
    assert sum(not isinstance(r, BaseException) for r in results) == 3
    assert all(isinstance(r, TooManyTokens) for r in results if isinstance(r, BaseException))
    # Revoking one makes room for one more.
    made = [r for r in results if not isinstance(r, BaseException)]
    await repo.revoke(user.id, made[0].id)
    await repo.create(user_id=user.id, guild_id=GUILD, name="again", token_hash="hx",
                      prefix="nbt_", max_active=3)  # fmt: skip
    with pytest.raises(TooManyTokens):
        await repo.create(user_id=user.id, guild_id=GUILD, name="more", token_hash="hy",
                          prefix="nbt_", max_active=3)  # fmt: skip
