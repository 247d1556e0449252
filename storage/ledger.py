"""Coin movements: a guarded wallet update plus its ledger row, inside a caller's transaction.

These are steps of a transaction body (`Database.write(...)`): repositories compose them with
other writes (a debit and the image it pays for commit together or not at all), on SQLite in
one trip to the database thread. Never call them outside a transaction.

Money lives in wallets (one per member per server, or one per member in the global economy).
The invariant holds per wallet: `coins == SUM(delta)` of its rows, the newest row's
`balance_after == coins`, and `coins >= 0`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from storage.db import Transaction
from storage.errors import (
    AlreadyClaimed,
    BalanceOverflow,
    InsufficientCoins,
    InvalidAmount,
    NotFound,
    TransferLimitReached,
)
from storage.models import TransactionKind
from storage.timeutil import from_iso, utcnow_iso

INT64_MAX = 2**63 - 1


def check_amount(amount: int) -> int:
    """A coin amount is a positive int (not bool) that fits in SQLite's int64."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"amount must be an integer, not {type(amount).__name__}")
    if amount <= 0:
        raise InvalidAmount("amount must be positive")
    if amount > INT64_MAX:
        raise InvalidAmount("amount is too large")
    return amount


async def balance(tx: Transaction, wallet_id: str) -> int:
    """The wallet's coins (NotFound if there is no such wallet)."""
    row = await tx.fetchone("SELECT coins FROM wallets WHERE id = ?", (wallet_id,))
    if row is None:
        raise NotFound(f"wallet {wallet_id} does not exist")
    return int(row[0])


async def owner(tx: Transaction, wallet_id: str) -> str:
    """The user id a wallet belongs to (NotFound if there is no such wallet)."""
    row = await tx.fetchone("SELECT user_id FROM wallets WHERE id = ?", (wallet_id,))
    if row is None:
        raise NotFound(f"wallet {wallet_id} does not exist")
    return str(row[0])


async def debit(
    tx: Transaction,
    wallet_id: str,
    amount: int,
    *,
    kind: TransactionKind,
    image_id: str | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
    job_id: str | None = None,
) -> int:
    """Take `amount` coins in one guarded statement and write the ledger row (naming the job
    or the image it paid for); new balance."""
    check_amount(amount)
    now = utcnow_iso()
    row = await tx.fetchone(
        "UPDATE wallets SET coins = coins - ?, updated_at = ? WHERE id = ? AND coins >= ? "
        "RETURNING coins, user_id",
        (amount, now, wallet_id, amount),
    )
    if row is None:
        raise InsufficientCoins(balance=await balance(tx, wallet_id), cost=amount)
    new_balance = int(row[0])
    await _ledger_row(
        tx, wallet_id, str(row[1]), -amount, new_balance, kind, image_id, actor_id, reason, now,
        job_id,
    )  # fmt: skip
    return new_balance


@dataclass(frozen=True)
class Transfer:
    """What a payment left in both wallets."""

    payer_balance: int
    recipient_balance: int
    #: What the payer's wallet paid others in the window, this payment included.
    sent: int


async def transfer(
    tx: Transaction,
    from_wallet: str,
    to_wallet: str,
    amount: int,
    *,
    actor_id: str | None,
    reason: str | None = None,
    cap: int = INT64_MAX,
    daily_limit: int | None = None,
    since: str | None = None,
) -> Transfer:
    """Move `amount` coins from one wallet to another: a guarded debit (never below zero)
    and a guarded credit (never past `cap`, leaving room for the recipient's refunds as a
    grant does), each with its TRANSFER ledger row, in the caller's one transaction.

    With `daily_limit`, what `from_wallet` paid others since `since` (ISO time) plus `amount`
    must fit it (TransferLimitReached otherwise). Raises InsufficientCoins or
    BalanceOverflow too; the caller's transaction then writes nothing. Both wallets are
    locked first, in one order, so that two members paying each other at once on PostgreSQL
    wait for each other instead of deadlocking (SQLite's write transactions are exclusive).
    """
    check_amount(amount)
    if from_wallet == to_wallet:
        raise InvalidAmount("a wallet can't pay itself")
    if tx.dialect.is_postgres:
        await tx.fetchall(
            "SELECT id FROM wallets WHERE id IN (?, ?) ORDER BY id FOR UPDATE",
            (from_wallet, to_wallet),
        )
    sent = 0
    if daily_limit is not None:
        sent = int(
            await tx.fetchval(
                "SELECT COALESCE(SUM(-delta), 0) FROM coin_transactions WHERE wallet_id = ? "
                "AND kind = 'TRANSFER' AND delta < 0 AND created_at >= ?",
                (from_wallet, since or ""),
            )
        )
        if sent + amount > daily_limit:
            raise TransferLimitReached(sent, daily_limit)
    payer_balance = await debit(
        tx, from_wallet, amount, kind=TransactionKind.TRANSFER, actor_id=actor_id, reason=reason
    )
    recipient_balance = await credit(
        tx, to_wallet, amount, kind=TransactionKind.TRANSFER, actor_id=actor_id, reason=reason,
        cap=cap, keep_room_for_refunds=True,
    )  # fmt: skip
    return Transfer(payer_balance, recipient_balance, sent + amount)


async def held(tx: Transaction, wallet_id: str) -> int:
    """Coins the wallet's unfinished jobs hold: each may come back to it as a refund."""
    total = await tx.fetchval(
        "SELECT COALESCE(SUM(cost), 0) FROM jobs "
        "WHERE wallet_id = ? AND status IN ('PENDING', 'PROCESSING')",
        (wallet_id,),
    )
    return int(total)


async def credit(
    tx: Transaction,
    wallet_id: str,
    amount: int,
    *,
    kind: TransactionKind,
    image_id: str | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
    cap: int = INT64_MAX,
    keep_room_for_refunds: bool = False,
    job_id: str | None = None,
) -> int:
    """Add `amount` coins and write the ledger row; returns the new balance.

    Refuses (BalanceOverflow, nothing written) a balance past `cap`. With
    `keep_room_for_refunds`, the coins the wallet's unfinished jobs hold count against the cap
    too, so that their refunds will always fit: grants use it, refunds don't need it.
    """
    check_amount(amount)
    limit = await _limit(tx, wallet_id, amount, cap, keep_room_for_refunds)
    now = utcnow_iso()
    row = (
        await tx.fetchone(
            "UPDATE wallets SET coins = coins + ?, updated_at = ? WHERE id = ? AND coins <= ? "
            "RETURNING coins, user_id",
            (amount, now, wallet_id, limit.highest_before),
        )
        if limit.possible
        else None
    )
    if row is None:
        raise limit.overflow(await balance(tx, wallet_id))  # NotFound for a missing wallet
    new_balance = int(row[0])
    await _ledger_row(
        tx, wallet_id, str(row[1]), amount, new_balance, kind, image_id, actor_id, reason, now,
        job_id,
    )  # fmt: skip
    return new_balance


async def claim_daily(
    tx: Transaction,
    wallet_id: str,
    amount: int,
    *,
    last_claim_before: str,
    cap: int = INT64_MAX,
) -> int:
    """Credit the daily coins if the wallet's last claim is older than `last_claim_before`
    (ISO time), in one guarded statement that also records the claim; the new balance.

    Raises AlreadyClaimed (with the last claim's time) when it is too soon: two claims racing
    each other cannot both pass the guard. Like a grant, it leaves room under `cap` for the
    refunds of the wallet's images in progress (BalanceOverflow otherwise).
    """
    check_amount(amount)
    limit = await _limit(tx, wallet_id, amount, cap, keep_room_for_refunds=True)
    now = utcnow_iso()
    row = (
        await tx.fetchone(
            "UPDATE wallets SET coins = coins + ?, daily_claimed_at = ?, updated_at = ? "
            "WHERE id = ? AND (daily_claimed_at IS NULL OR daily_claimed_at < ?) "
            "AND coins <= ? RETURNING coins, user_id",
            (amount, now, now, wallet_id, last_claim_before, limit.highest_before),
        )
        if limit.possible
        else None
    )
    if row is None:
        found = await tx.fetchone(
            "SELECT daily_claimed_at, coins FROM wallets WHERE id = ?", (wallet_id,)
        )
        if found is None:
            raise NotFound(f"wallet {wallet_id} does not exist")
        if found[0] is not None and str(found[0]) >= last_claim_before:
            raise AlreadyClaimed(from_iso(str(found[0])))
        raise limit.overflow(int(found[1]))
    new_balance = int(row[0])
    await _ledger_row(
        tx, wallet_id, str(row[1]), amount, new_balance, TransactionKind.DAILY, None, None,
        "daily", now,
    )  # fmt: skip
    return new_balance


@dataclass(frozen=True)
class _Limit:
    """How high a balance may be before a credit of `amount` under `cap` (less `room`)."""

    amount: int
    cap: int
    room: int

    @property
    def possible(self) -> bool:
        return self.amount + self.room <= self.cap

    @property
    def highest_before(self) -> int:
        return self.cap - self.amount - self.room

    def overflow(self, current: int) -> BalanceOverflow:
        return BalanceOverflow(
            f"a balance of {current} + {self.amount} coins"
            + (f" (+ {self.room} held by images in progress)" if self.room else "")
            + f" would pass the maximum of {self.cap}",
            balance=current,
            amount=self.amount,
            held=self.room,
            cap=self.cap,
        )


async def _limit(
    tx: Transaction, wallet_id: str, amount: int, cap: int, keep_room_for_refunds: bool
) -> _Limit:
    room = await held(tx, wallet_id) if keep_room_for_refunds else 0
    return _Limit(amount, min(cap, INT64_MAX), room)


async def _ledger_row(
    tx: Transaction,
    wallet_id: str,
    user_id: str,
    delta: int,
    balance_after: int,
    kind: TransactionKind,
    image_id: str | None,
    actor_id: str | None,
    reason: str | None,
    created_at: str,
    job_id: str | None = None,
) -> None:
    await tx.execute(
        "INSERT INTO coin_transactions (id, wallet_id, user_id, delta, balance_after, kind, "
        "image_id, actor_id, reason, created_at, job_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            wallet_id,
            user_id,
            delta,
            balance_after,
            kind.value,
            image_id,
            actor_id,
            reason,
            created_at,
            job_id,
        ),
    )
