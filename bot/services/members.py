"""A member acting somewhere: their account, their standing, that server's settings, and the
wallet that pays for what they ask (the one place these are put together)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.services.accounts import AccountService
from bot.services.budgets import ServerCaps
from bot.services.content import ContentPolicy
from bot.services.errors import NotEnoughCoins
from bot.services.permissions import Actor, Identity, PermissionService
from bot.services.ratelimits import MemberLimits
from bot.services.settings import EffectiveSettings, GuildSettingsService
from bot.services.wallets import WalletService
from storage.models import User

if TYPE_CHECKING:
    from bot.services.moderation import ModerationService


class Purpose(StrEnum):
    GENERATE = "generate"
    UPLOAD = "upload"


@dataclass(frozen=True)
class Member:
    """Someone using a command: who, where, and the settings in force there."""

    actor: Actor
    user: User
    settings: EffectiveSettings

    @property
    def guild_id(self) -> int | None:
        return self.actor.guild_id

    @property
    def language(self) -> str:
        return self.actor.identity.language


@dataclass(frozen=True)
class Payer:
    """Who pays for a job, from which wallet, how much, and the server's job limit."""

    user_id: str
    wallet_id: str
    guild_id: int | None
    # The server's price: of an upload, or of an image GENERATION_COSTS doesn't price.
    cost: int
    max_jobs: int
    balance: int
    # The server's owner controls: its blocklist and its caps on what images cost the host.
    content: ContentPolicy = field(default_factory=ContentPolicy)
    caps: ServerCaps = field(default_factory=ServerCaps)
    # The member's Discord id: their job slots are counted by it, on every surface.
    discord_id: int | None = None

    @property
    def slot_key(self) -> int | str:
        """What the member's running jobs are counted by (see GenerationService.admit)."""
        return self.discord_id if self.discord_id is not None else self.user_id

    def check_affordable(self, cost: int | None = None) -> None:
        """Refuse early (before downloads or storage work) when the wallet can't pay `cost`
        (default: this payer's `cost`); the guarded debit stays the authority."""
        price = self.cost if cost is None else cost
        if price and self.balance < price:
            raise NotEnoughCoins(self.balance, price)


class MemberService:
    """Turns an identity into a Member, and a Member into a Payer.

    It remembers each member's balance as last seen (a hint, never the authority: the
    guarded debit is), so an adapter can refuse "not enough coins" before any await."""

    def __init__(
        self,
        *,
        accounts: AccountService,
        settings: GuildSettingsService,
        wallets: WalletService,
        permissions: PermissionService,
        moderation: ModerationService | None = None,
        limits: MemberLimits | None = None,
    ) -> None:
        self.accounts = accounts
        self.settings = settings
        self.wallets = wallets
        self.permissions = permissions
        self.moderation = moderation
        #: Per-member rate limits of every command, button and API call (see `take_turn`).
        self.limits = limits or MemberLimits()
        # (discord id, wallet's server or None) -> balance last seen; bounded.
        self._balances: dict[tuple[int, int | None], int] = {}

    def _wallet_key(self, discord_id: int, guild_id: int | None) -> tuple[int, int | None]:
        return discord_id, self.wallets.wallet_guild(guild_id)

    def known_balance(self, discord_id: int, guild_id: int | None) -> int | None:
        """The member's balance where they act, as last seen by this process (None if never
        seen): a hint for refusing early; confirm with `payer` before refusing."""
        return self._balances.get(self._wallet_key(discord_id, guild_id))

    def note_balance(self, payer: Payer, balance: int) -> None:
        """Remember a balance just read or written (after a debit, a refund...)."""
        if payer.discord_id is None:
            return
        if len(self._balances) >= 100_000:
            self._balances.clear()
        self._balances[self._wallet_key(payer.discord_id, payer.guild_id)] = balance

    def forget(self, discord_id: int) -> None:
        """Drop what this process remembers of a member (their data was erased)."""
        for key in [k for k in self._balances if k[0] == discord_id]:
            del self._balances[key]

    def take_turn(self, discord_id: int, guild_id: int | None, action: str, uses: int = 1) -> None:
        """Count one use of `action` (bot.services.ratelimits.ACTIONS) by a member, at the rate
        of the server they act in (its settings as last read; the host's before that), on
        every surface: a slash command, a button and an API call take from the same bucket.
        Synchronous, so an adapter runs it first; raises TooSoon past the limit. `uses`: a
        batch of images counts each of them."""
        settings = self.settings.cached(guild_id) or self.settings.defaults
        self.limits.take(action, discord_id, settings.rate_limits[action], uses)

    def check_here(self, identity: Identity, settings: EffectiveSettings, purpose: Purpose) -> None:
        """The server's rules for this purpose (allow-list, channels, role to generate) from
        memory: what `payer` checks again, for refusing before any await."""
        self.permissions.check_guild_allowed(identity.guild_id)
        self.permissions.check_allowed_here(
            Actor(identity, None, False),
            channel_ids=settings.channel_ids,
            role_id=settings.generate_role_id if purpose is Purpose.GENERATE else None,
            nsfw_only=settings.nsfw_only,
        )

    async def enter(self, identity: Identity) -> Member:
        """The member for an interaction (their account is made on first sight). Refuses
        servers outside ALLOWED_GUILD_IDS before anything is written."""
        self.permissions.check_guild_allowed(identity.guild_id)
        actor = await self.accounts.actor(identity, create=True)
        assert actor.user is not None
        return Member(actor, actor.user, await self.settings.effective(identity.guild_id))

    async def payer(self, member: Member, purpose: Purpose) -> Payer:
        """Check the server's rules for this purpose (its channels; its role to generate; its
        age-restricted channels if it asks; the member not blocked there) and open the wallet
        that pays, with the server's blocklist and caps. Raises a UserFacingError on
        refusal."""
        settings = member.settings
        self.permissions.check_allowed_here(
            member.actor,
            channel_ids=settings.channel_ids,
            role_id=settings.generate_role_id if purpose is Purpose.GENERATE else None,
            nsfw_only=settings.nsfw_only,
        )
        content = ContentPolicy()
        if self.moderation is not None and member.guild_id is not None:
            await self.moderation.check_member(member.user, member.guild_id)
            if purpose is Purpose.GENERATE:
                content = await self.moderation.policy(member.guild_id)
        wallet = await self.wallets.open(member.user, member.guild_id)
        cost = settings.generation_cost if purpose is Purpose.GENERATE else settings.upload_cost
        payer = Payer(
            user_id=member.user.id,
            wallet_id=wallet.id,
            guild_id=member.guild_id,
            cost=cost,
            max_jobs=settings.jobs_per_member,
            balance=wallet.coins,
            discord_id=member.actor.discord_id,
            content=content,
            caps=ServerCaps(settings.daily_image_cap, settings.monthly_budget_usd),
        )
        self.note_balance(payer, wallet.coins)
        return payer
