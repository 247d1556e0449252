"""GuildSettingsService: parsing, validation, effective values and their sources, the audit."""

from __future__ import annotations

import pytest

from bot.config import EconomyScope
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.permissions import Actor, Identity
from bot.services.settings import Source
from storage.db import Database
from tests.bot.services.conftest import Services, build_services

A = 900000000000000001
CHANNELS = {910000000000000001, 910000000000000002}
ROLES = {A, 920000000000000001}


async def moderator(services: Services, discord_id: int = 2) -> Actor:
    return await services.accounts.actor(
        Identity(discord_id, "mod", guild_id=A, can_manage_guild=True)
    )


async def change(services: Services, actor: Actor, setting: str, raw: str) -> object:
    result = await services.settings.change(
        actor, A, setting, raw, channel_ids=CHANNELS, role_ids=ROLES
    )
    return result.new_value


async def test_changes_apply_to_one_server_with_sources_and_audit(db: Database) -> None:
    services = build_services(db, generation_cost=100, max_jobs_per_user=3)
    mod = await moderator(services)
    assert await change(services, mod, "generation_cost", " 1,000 ") == 1000
    assert await change(services, mod, "channel_ids", "<#910000000000000001> 910000000000000002") \
        == [910000000000000001, 910000000000000002]  # fmt: skip
    assert await change(services, mod, "generate_role_id", "<@&920000000000000001>") == (
        920000000000000001
    )
    assert await change(services, mod, "public_results", "No") is False
    assert await change(services, mod, "jobs_per_member", "1") == 1
    here = await services.settings.effective(A)
    assert here.generation_cost == 1000 and here.source("generation_cost") is Source.SERVER
    assert here.upload_cost == 0 and here.source("upload_cost") is Source.DEFAULT
    assert here.public_results is False and here.jobs_per_member == 1
    assert (await services.settings.effective(12345)).generation_cost == 100
    await services.settings.reset(mod, A, "generation_cost")
    assert (await services.settings.effective(A)).source("generation_cost") is Source.DEFAULT
    history = await services.settings.history(mod, A)
    assert history[0][0].setting == "generation_cost" and history[0][0].old_value == 1000
    assert history[0][0].new_value is None and history[0][1] == 2
    assert [c.setting for c, _ in history][-1] == "generation_cost"
    assert await change(services, mod, "channel_ids", "all") is None
    assert await change(services, mod, "generate_role_id", f"<@&{A}>") is None  # @everyone


@pytest.mark.parametrize(
    ("setting", "raw", "key"),
    [
        ("generation_cost", "ten", "settings.not_a_number"),
        ("generation_cost", "1.5", "settings.not_a_number"),
        ("generation_cost", "-5", "settings.out_of_range"),
        ("generation_cost", "9" * 40, "settings.out_of_range"),
        ("starter_coins", "1000001", "settings.out_of_range"),
        ("jobs_per_member", "0", "settings.out_of_range"),
        ("jobs_per_member", "4", "settings.out_of_range"),  # above the host's MAX_JOBS_PER_USER
        ("public_results", "maybe", "settings.not_boolean"),
        ("channel_ids", "<#123456789012345678>", "settings.unknown_channel"),
        ("channel_ids", "general", "settings.unknown_channel"),
        ("generate_role_id", "<@&123456789012345678>", "settings.unknown_role"),
        ("generate_role_id", "920000000000000001 920000000000000001", "settings.one_role"),
        ("nonsense", "1", "settings.unknown"),
    ],
)
async def test_bad_values_change_nothing(db: Database, setting: str, raw: str, key: str) -> None:
    services = build_services(db, max_jobs_per_user=3, max_grant=1_000_000)
    mod = await moderator(services)
    with pytest.raises(InvalidInput) as info:
        await change(services, mod, setting, raw)
    assert info.value.key == key
    assert await db.fetchval("SELECT COUNT(*) FROM guild_settings") == 0
    assert await db.fetchval("SELECT COUNT(*) FROM guild_settings_changes") == 0


async def test_members_and_other_servers_moderators_are_refused(db: Database) -> None:
    services = build_services(db, admins=frozenset({99}))
    member = await services.accounts.actor(Identity(1, "alice", guild_id=A))
    elsewhere = await services.accounts.actor(
        Identity(2, "mod", guild_id=A + 1, can_manage_guild=True)
    )
    for who in (member, elsewhere):
        with pytest.raises(NotAllowed):
            await change(services, who, "generation_cost", "0")
        with pytest.raises(NotAllowed):
            await services.settings.show(who, A)
    assert await db.fetchval("SELECT COUNT(*) FROM guild_settings_changes") == 0
    assert await db.fetchval("SELECT COUNT(*) FROM users") == 0
    admin = await services.accounts.actor(Identity(99, "admin", guild_id=A))
    assert await change(services, admin, "generation_cost", "0") == 0


async def test_global_economy_keeps_gifts_with_the_host(db: Database) -> None:
    services = build_services(db, scope=EconomyScope.GLOBAL, admins=frozenset({99}))
    admin = await services.accounts.actor(Identity(99, "admin", guild_id=A))
    for setting in ("starter_coins", "daily_coins"):
        with pytest.raises(NotAllowed) as info:
            await change(services, admin, setting, "5")
        assert info.value.key == "settings.global_economy"
    assert await change(services, admin, "generation_cost", "5") == 5
