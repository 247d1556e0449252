"""Coin movements: a guarded balance update plus its ledger row, on a caller's transaction.

These take the connection of an open `Database.transaction()` so that repositories can
compose them with other writes (a debit and the image it pays for commit together or not at
all). Never call them outside a transaction.
"""

from __future__ import annotations

import uuid

import aiosqlite

from storage.errors import BalanceOverflow, InsufficientCoins, InvalidAmount, NotFound
from storage.models import TransactionKind
from storage.timeutil import utcnow_iso

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


async def debit(
    conn: aiosqlite.Connection,
    user_id: str,
    amount: int,
    *,
    kind: TransactionKind,
    image_id: str | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
) -> int:
    """Take `amount` coins in one guarded statement and write the ledger row; new balance."""
    check_amount(amount)
    now = utcnow_iso()
    async with conn.execute(
        "UPDATE users SET coins = coins - ?, updated_at = ? WHERE id = ? AND coins >= ? "
        "RETURNING coins",
        (amount, now, user_id, amount),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        async with conn.execute("SELECT coins FROM users WHERE id = ?", (user_id,)) as cursor:
            existing = await cursor.fetchone()
        if existing is None:
            raise NotFound(f"user {user_id} does not exist")
        raise InsufficientCoins(balance=int(existing[0]), cost=amount)
    balance = int(row[0])
    await _ledger_row(conn, user_id, -amount, balance, kind, image_id, actor_id, reason, now)
    return balance


async def credit(
    conn: aiosqlite.Connection,
    user_id: str,
    amount: int,
    *,
    kind: TransactionKind,
    image_id: str | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
) -> int:
    """Add `amount` coins (refusing int64 overflow) and write the ledger row; new balance."""
    check_amount(amount)
    now = utcnow_iso()
    async with conn.execute(
        "UPDATE users SET coins = coins + ?, updated_at = ? WHERE id = ? AND coins <= ? "
        "RETURNING coins",
        (amount, now, user_id, INT64_MAX - amount),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        async with conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)) as cursor:
            if await cursor.fetchone() is None:
                raise NotFound(f"user {user_id} does not exist")
        raise BalanceOverflow("the balance would exceed the largest storable amount")
    balance = int(row[0])
    await _ledger_row(conn, user_id, amount, balance, kind, image_id, actor_id, reason, now)
    return balance


async def _ledger_row(
    conn: aiosqlite.Connection,
    user_id: str,
    delta: int,
    balance_after: int,
    kind: TransactionKind,
    image_id: str | None,
    actor_id: str | None,
    reason: str | None,
    created_at: str,
) -> None:
    await conn.execute(
        "INSERT INTO coin_transactions (id, user_id, delta, balance_after, kind, image_id, "
        "actor_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            user_id,
            delta,
            balance_after,
            kind.value,
            image_id,
            actor_id,
            reason,
            created_at,
        ),
    )
