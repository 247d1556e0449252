"""Payments (`/pay`): a member gives coins to another member, from their wallet here to the
recipient's wallet here (the same wallet scope: this server's wallets, or both global ones).

The rules live here: a whole positive amount, never to a bot or to oneself, neither member
blocked in this server, at most the server's daily limit (`pay_daily_limit`) paid in any 24
hours. The money moves in one transaction (storage.ledger.transfer): a guarded debit and a
guarded credit, a TRANSFER ledger row on each wallet, or nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.services.accounts import AccountService
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.moderation import ModerationService
from bot.services.permissions import Actor, Identity
from bot.services.settings import GuildSettingsService
from bot.services.wallets import MAX_REASON_CHARS, WalletService
from storage.errors import BalanceOverflow, InsufficientCoins, TransferLimitReached
from storage.models import User
from storage.timeutil import utcnow

#: The window of the daily limit: what a wallet paid others in the last 24 hours.
PAY_PERIOD = timedelta(hours=24)


@dataclass(frozen=True)
class Payment:
    """A payment made: who paid whom, how much, and what each wallet holds now."""

    payer: User
    recipient: User
    amount: int
    payer_balance: int
    recipient_balance: int
    reason: str | None
    #: Paid to others in the last 24 hours (this payment included), and the limit.
    sent: int
    limit: int

    @property
    def left_today(self) -> int:
        return max(0, self.limit - self.sent)


class PaymentService:
    """Members paying each other."""

    def __init__(
        self,
        *,
        wallets: WalletService,
        accounts: AccountService,
        settings: GuildSettingsService,
        moderation: ModerationService,
    ) -> None:
        self.wallets = wallets
        self.accounts = accounts
        self.settings = settings
        self.moderation = moderation

    async def pay(
        self, actor: Actor, target: Identity, amount: int, reason: str | None = None
    ) -> Payment:
        """Move `amount` coins from the actor's wallet here to the target's wallet here.

        Refused (InvalidInput or NotAllowed, nothing written): outside a server, a bad
        amount or reason, a bot or oneself as the recipient, /pay off in this server, either
        member blocked here, over the daily limit, over the payer's balance, or past the
        recipient's maximum balance.
        """
        if actor.guild_id is None:
            raise NotAllowed("error.guild_only")
        guild_id = actor.guild_id
        # A forged interaction can carry anything where Discord would send an integer.
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise InvalidInput("pay.amount")
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise InvalidInput("pay.reason_too_long", limit=MAX_REASON_CHARS)
        if target.is_bot:
            raise InvalidInput("pay.bot")
        if target.discord_id == actor.discord_id:
            raise InvalidInput("pay.self")
        limit = (await self.settings.effective(guild_id)).pay_daily_limit
        if limit <= 0:
            raise InvalidInput("pay.disabled")
        if amount > limit:
            raise InvalidInput("pay.over_limit", limit=limit, left=limit)
        payer = actor.user or await self.accounts.ensure_user(actor.identity)
        try:
            await self.moderation.check_member(payer, guild_id)
        except NotAllowed as error:
            raise NotAllowed("pay.blocked", reason=error.params.get("reason", "")) from None
        recipient = await self.accounts.ensure_user(target)
        try:
            await self.moderation.check_member(recipient, guild_id)
        except NotAllowed:
            raise InvalidInput("pay.recipient_blocked", user=target.display_name) from None
        source = await self.wallets.open(payer, guild_id)
        destination = await self.wallets.open(recipient, guild_id)
        cleaned = " ".join((reason or "").split()) or None
        try:
            moved = await self.wallets.wallets.transfer(
                source.id, destination.id, amount, actor_id=payer.id, reason=cleaned,
                daily_limit=limit, since=utcnow() - PAY_PERIOD,
            )  # fmt: skip
        except InsufficientCoins as error:
            raise InvalidInput("pay.not_enough", balance=error.balance, amount=amount) from None
        except TransferLimitReached as error:
            left = max(0, error.limit - error.sent)
            raise InvalidInput("pay.over_limit", limit=error.limit, left=left) from None
        except BalanceOverflow as overflow:
            room = max(0, overflow.cap - overflow.balance - overflow.held)
            raise InvalidInput("pay.overflow", user=target.display_name, room=room) from None
        return Payment(
            payer, recipient, amount, moved.payer_balance, moved.recipient_balance, cleaned,
            moved.sent, limit,
        )  # fmt: skip
