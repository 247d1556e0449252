"""Accounts: users from Discord identities, balances, statistics, history and grants."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.i18n import language_from_locale
from bot.services.errors import InvalidInput, NotAllowed
from storage.errors import BalanceOverflow
from storage.images import ImageRepository
from storage.models import CoinTransaction, TransactionKind, User, UserStats
from storage.users import UserRepository


@dataclass(frozen=True)
class Identity:
    """Who is acting, as the Discord adapter saw it (no discord objects past this point)."""

    discord_id: int
    display_name: str
    locale: str | None = None
    is_bot: bool = False
    # Manage Server in the guild where the command ran.
    can_manage_guild: bool = False


@dataclass(frozen=True)
class AccountOverview:
    """What `/coins` shows."""

    user: User
    stats: UserStats
    recent: list[CoinTransaction]


@dataclass(frozen=True)
class GrantResult:
    target: User
    amount: int
    balance: int


class AccountService:
    """Users, coins and grants. Every coin movement goes through the ledger."""

    def __init__(
        self,
        users: UserRepository,
        images: ImageRepository,
        *,
        starter_coins: int,
        max_grant: int,
        admin_user_ids: frozenset[int] = frozenset(),
    ) -> None:
        self.users = users
        self.images = images
        self.starter_coins = starter_coins
        self.max_grant = max_grant
        self.admin_user_ids = admin_user_ids
        # First-sight lookups in flight, so that a burst from a new member (several commands
        # at once) makes one database write instead of one each.
        self._first_sight: dict[int, asyncio.Task[tuple[User, bool]]] = {}

    async def ensure_user(self, identity: Identity) -> User:
        """The user for a Discord identity; created with starter coins on first sight, with the
        language of the Discord client they first used."""
        pending = self._first_sight.get(identity.discord_id)
        if pending is None:
            pending = asyncio.create_task(
                self.users.get_or_create_by_discord(
                    identity.discord_id,
                    display_name=identity.display_name,
                    language=language_from_locale(identity.locale),
                    starter_coins=self.starter_coins,
                )
            )
            self._first_sight[identity.discord_id] = pending
            pending.add_done_callback(lambda _: self._first_sight.pop(identity.discord_id, None))
        # Shielded: one caller being cancelled must not cancel the lookup the others share.
        user, _created = await asyncio.shield(pending)
        return user

    async def is_admin(self, identity: Identity, user: User | None = None) -> bool:
        """Bot admin (ADMIN_USER_IDS or the ADMIN role) or Manage Server in this guild."""
        if identity.discord_id in self.admin_user_ids or identity.can_manage_guild:
            return True
        if user is None:
            user = await self.users.get_by_discord_id(identity.discord_id)
        return user is not None and user.is_admin

    async def overview(self, viewer: Identity, target: Identity | None = None) -> AccountOverview:
        """Balance, stats and the last five ledger rows; another user's only for admins."""
        subject = target or viewer
        if subject.is_bot:
            raise InvalidInput("coins.bot")
        looking_at_other = target is not None and target.discord_id != viewer.discord_id
        if looking_at_other and not await self.is_admin(viewer):
            raise NotAllowed("coins.other_forbidden")
        user = await self.ensure_user(subject)
        stats = await self.images.user_stats(user.id)
        recent = (await self.users.transactions(user.id, limit=5)).items
        return AccountOverview(user, stats, recent)

    async def grant(
        self, actor: Identity, target: Identity, amount: int, reason: str | None = None
    ) -> GrantResult:
        """Give coins: checked amount, admins only, never to a bot; a GRANT ledger row with
        the actor and reason."""
        # A forged interaction can carry anything where Discord would send an integer.
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidInput("grant.amount", max=self.max_grant)
        if not 1 <= amount <= self.max_grant:
            raise InvalidInput("grant.amount", max=self.max_grant)
        if target.is_bot:
            raise InvalidInput("grant.bot")
        actor_user = await self.ensure_user(actor)
        if not await self.is_admin(actor, actor_user):
            raise NotAllowed("grant.not_admin")
        target_user = await self.ensure_user(target)
        try:
            balance = await self.users.credit(
                target_user.id,
                amount,
                kind=TransactionKind.GRANT,
                actor_id=actor_user.id,
                reason=(reason or "").strip()[:200] or None,
                # Coins held by the member's images in progress may come back as refunds:
                # leave room for them, so a refund can never pass the cap.
                keep_room_for_refunds=True,
            )
        except BalanceOverflow as overflow:
            room = max(0, overflow.cap - overflow.balance - overflow.held)
            raise InvalidInput(
                "grant.overflow", user=target.display_name, max=overflow.cap, room=room
            ) from None
        return GrantResult(target_user, amount, balance)
