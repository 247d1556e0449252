"""Accounts: users from Discord identities (global: one per person), kept in their current
language, and actors (an identity plus what the bot knows about them)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from bot.services.permissions import Actor, Identity, PermissionService
from storage.models import User
from storage.users import UserRepository

__all__ = ["AccountService", "Actor", "Identity"]


class AccountService:
    """Who people are. Money is in bot.services.wallets; rules in bot.services.permissions."""

    def __init__(self, users: UserRepository, permissions: PermissionService) -> None:
        self.users = users
        self.permissions = permissions
        # First-sight lookups in flight, so that a burst from a new member (several commands
        # at once) makes one database write instead of one each.
        self._first_sight: dict[int, asyncio.Task[tuple[User, bool]]] = {}

    async def ensure_user(self, identity: Identity) -> User:
        """The user for a Discord identity, created on first sight. The interaction's locale
        decides the reply language, and the row's `language` follows it (it is what messages
        sent outside an interaction use)."""
        pending = self._first_sight.get(identity.discord_id)
        if pending is None:
            pending = asyncio.create_task(
                self.users.get_or_create_by_discord(
                    identity.discord_id,
                    display_name=identity.display_name,
                    language=identity.language,
                )
            )
            self._first_sight[identity.discord_id] = pending
            pending.add_done_callback(lambda _: self._first_sight.pop(identity.discord_id, None))
        # Shielded: one caller being cancelled must not cancel the lookup the others share.
        user, _created = await asyncio.shield(pending)
        if identity.locale is not None and user.language != identity.language:
            user = await self.users.update(user.id, language=identity.language)
        return user

    async def find(self, discord_id: int) -> User | None:
        """The user for a Discord id, if the bot has seen them (never creates one)."""
        return await self.users.get_by_discord_id(discord_id)

    async def get(self, user_id: str) -> User | None:
        return await self.users.get(user_id)

    async def by_ids(self, user_ids: Iterable[str]) -> dict[str, User]:
        """Users by id (missing ones are left out)."""
        found: dict[str, User] = {}
        for user_id in set(user_ids):
            user = await self.users.get(user_id)
            if user is not None:
                found[user_id] = user
        return found

    async def actor(self, identity: Identity, *, create: bool = False) -> Actor:
        """The identity with its account (created only with `create`) and admin standing."""
        user = await self.ensure_user(identity) if create else await self.find(identity.discord_id)
        return Actor(identity, user, self.permissions.is_bot_admin(identity.discord_id, user))
