"""Wallets: which wallet pays where (ECONOMY_SCOPE), grants, the daily claim, and `/coins`.

With ECONOMY_SCOPE=guild (the default) a member has one wallet per server: coins earned or
granted in one server can't be spent in another. With `global`, one wallet per member
everywhere. Every coin movement goes through the ledger (storage/ledger.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import EconomyScope
from bot.services.accounts import AccountService
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.settings import GuildSettingsService
from storage.errors import AlreadyClaimed, BalanceOverflow
from storage.images import ImageRepository
from storage.models import CoinTransaction, TransactionKind, User, UserStats, Wallet
from storage.timeutil import utcnow
from storage.wallets import WalletRepository

DAILY_PERIOD = timedelta(hours=24)
MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class GrantResult:
    actor: User
    target: User
    amount: int
    balance: int
    reason: str | None


@dataclass(frozen=True)
class DailyResult:
    amount: int
    balance: int
    next_claim_at: datetime


@dataclass(frozen=True)
class CoinsOverview:
    """What `/coins` shows: the wallet that applies here (or, in a DM with per-server wallets,
    every wallet), image statistics and the latest ledger rows."""

    user: User
    wallet: Wallet | None
    wallets: list[Wallet]
    stats: UserStats
    recent: list[CoinTransaction]


class WalletService:
    """Money rules: the wallet of a member in a place, and the movements members ask for."""

    def __init__(
        self,
        *,
        wallets: WalletRepository,
        images: ImageRepository,
        accounts: AccountService,
        settings: GuildSettingsService,
        permissions: PermissionService,
        scope: EconomyScope,
        max_grant: int,
    ) -> None:
        self.wallets = wallets
        self.images = images
        self.accounts = accounts
        self.settings = settings
        self.permissions = permissions
        self.scope = scope
        self.max_grant = max_grant

    @property
    def per_server(self) -> bool:
        """True with ECONOMY_SCOPE=guild: a member has one wallet per server."""
        return self.scope is EconomyScope.GUILD

    def wallet_guild(self, guild_id: int | None) -> int | None:
        """The key of the wallet that applies in `guild_id`: that server, or global (None)."""
        return guild_id if self.scope is EconomyScope.GUILD else None

    async def open(self, user: User, guild_id: int | None) -> Wallet:
        """The member's wallet for a place, opened on first use with that server's starter
        coins. In guild scope a DM has no wallet."""
        if self.scope is EconomyScope.GUILD and guild_id is None:
            raise NotAllowed("error.guild_only")
        key = self.wallet_guild(guild_id)
        found = await self.wallets.find(user.id, key)
        if found is not None:
            return found
        starter = (await self.settings.effective(guild_id)).starter_coins
        opening = await self.wallets.open(
            user.id, key, starter_coins=starter, adopt_carried_over=key is not None
        )
        return opening.wallet

    async def peek(self, user: User, guild_id: int | None) -> Wallet | None:
        """The member's wallet for a place if they have one (never opens one)."""
        if self.scope is EconomyScope.GUILD and guild_id is None:
            return None
        return await self.wallets.find(user.id, self.wallet_guild(guild_id))

    # Grants ------------------------------------------------------------------------------

    async def grant(
        self, actor: Actor, target: Identity, amount: int, reason: str | None = None
    ) -> GrantResult:
        """Give coins into the target's wallet of the actor's server (or their global wallet):
        checked amount, moderators of that server or bot admins (bot admins only in global
        scope), never to a bot; a GRANT ledger row with the actor and reason."""
        # A forged interaction can carry anything where Discord would send an integer.
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InvalidInput("grant.amount", max=self.max_grant)
        if not 1 <= amount <= self.max_grant:
            raise InvalidInput("grant.amount", max=self.max_grant)
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise InvalidInput("grant.reason_too_long", limit=MAX_REASON_CHARS)
        if target.is_bot:
            raise InvalidInput("grant.bot")
        self.permissions.check_grant(actor)
        if actor.guild_id is None:
            raise NotAllowed("error.guild_only")
        actor_user = await self.accounts.ensure_user(actor.identity)
        target_user = await self.accounts.ensure_user(target)
        wallet = await self.open(target_user, actor.guild_id)
        cleaned = (reason or "").strip() or None
        try:
            balance = await self.wallets.credit(
                wallet.id, amount, kind=TransactionKind.GRANT, actor_id=actor_user.id,
                reason=cleaned,
                # Coins held by the member's images in progress may come back as refunds:
                # leave room for them, so a refund can never pass the cap.
                keep_room_for_refunds=True,
            )  # fmt: skip
        except BalanceOverflow as overflow:
            room = max(0, overflow.cap - overflow.balance - overflow.held)
            raise InvalidInput(
                "grant.overflow", user=target.display_name, max=overflow.cap, room=room
            ) from None
        return GrantResult(actor_user, target_user, amount, balance, cleaned)

    # Daily -------------------------------------------------------------------------------

    async def claim_daily(self, user: User, guild_id: int | None) -> DailyResult:
        """The server's daily coins, once per 24 hours per wallet; raises InvalidInput with the
        time the next claim opens when it is too soon, or when the server disabled it."""
        amount = (await self.settings.effective(guild_id)).daily_coins
        if amount <= 0:
            raise InvalidInput("daily.disabled")
        wallet = await self.open(user, guild_id)
        now = utcnow()
        try:
            balance = await self.wallets.claim_daily(
                wallet.id, amount, not_since=now - DAILY_PERIOD
            )
        except AlreadyClaimed as error:
            opens = error.claimed_at + DAILY_PERIOD
            raise InvalidInput("daily.too_soon", at=int(opens.timestamp())) from None
        except BalanceOverflow as overflow:
            raise InvalidInput("daily.overflow", max=overflow.cap) from None
        return DailyResult(amount, balance, now + DAILY_PERIOD)

    # Overview ----------------------------------------------------------------------------

    async def overview(self, actor: Actor, target: Identity | None = None) -> CoinsOverview:
        """Balance, statistics and the last five ledger rows: your own (opening your wallet
        here), or another member's for those allowed (never opening one for them)."""
        subject = target or actor.identity
        if subject.is_bot:
            raise InvalidInput("coins.bot")
        own = subject.discord_id == actor.discord_id
        if not own:
            self.permissions.check_see_wallet(actor, subject.discord_id)
        if own:
            user: User | None = await self.accounts.ensure_user(actor.identity)
        else:
            user = await self.accounts.find(subject.discord_id)
        if user is None:
            raise InvalidInput("coins.no_wallet_here", user=subject.display_name)
        in_dm_per_server = self.scope is EconomyScope.GUILD and actor.guild_id is None
        if in_dm_per_server:
            wallets = await self.wallets.list_for_user(user.id)
            stats = await self.images.user_stats(user.id)
            return CoinsOverview(user, None, wallets, stats, [])
        wallet = await self.open(user, actor.guild_id) if own else None
        if wallet is None:
            wallet = await self.peek(user, actor.guild_id)
            if wallet is None:
                raise InvalidInput("coins.no_wallet_here", user=subject.display_name)
        stats = await self.images.user_stats(
            user.id, guild_id=self.wallet_guild(actor.guild_id), wallet_id=wallet.id
        )
        recent = (await self.wallets.transactions(wallet.id, limit=5)).items
        return CoinsOverview(user, wallet, [wallet], stats, recent)
