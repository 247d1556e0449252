"""AccountService: first sight, language kept current, actors and bot admins."""

from __future__ import annotations

from bot.services.permissions import Identity
from storage.db import Database
from storage.models import UserRole
from storage.users import UserRepository
from tests.bot.services.conftest import build_services

ALICE = Identity(1, "alice", locale="es-ES")


async def test_first_sight_and_language_follows_the_member(db: Database) -> None:
    accounts = build_services(db).accounts
    user = await accounts.ensure_user(ALICE)
    assert user.language == "es"
    again = await accounts.ensure_user(Identity(1, "alice", locale="es-419"))
    assert again.id == user.id and again.language == "es"
    english = await accounts.ensure_user(Identity(1, "alice", locale="en-GB"))
    assert english.language == "en"
    # Someone named in an option has no locale: their language is left as it is.
    assert (await accounts.ensure_user(Identity(1, "alice"))).language == "en"
    assert (await accounts.ensure_user(Identity(9, "x", locale="ja"))).language == "en"


async def test_actors_and_bot_admins(db: Database, users: UserRepository) -> None:
    accounts = build_services(db, admins=frozenset({4})).accounts
    stranger = await accounts.actor(Identity(5, "stranger"))
    assert stranger.user is None and not stranger.bot_admin
    assert await users.count() == 0  # looking someone up creates nobody
    assert (await accounts.actor(Identity(4, "owner"))).bot_admin
    made = await accounts.actor(ALICE, create=True)
    assert made.user is not None and not made.bot_admin
    await users.add_role(made.user.id, UserRole.ADMIN)
    assert (await accounts.actor(ALICE)).bot_admin
    # Manage Server alone does not make a bot admin.
    assert not (await accounts.actor(Identity(6, "mod", can_manage_guild=True))).bot_admin
