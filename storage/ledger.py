"""Coin movements: a guarded balance update plus its ledger row, inside a caller's transaction.

These are synchronous functions on a raw `sqlite3.Connection`, meant to run inside
`Database.write(...)`, so that repositories compose them with other writes (a debit and the
image it pays for commit together or not at all) in one trip to the database thread.
Never call them outside a transaction.
"""

from __future__ import annotations

import sqlite3
import uuid

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


def balance(conn: sqlite3.Connection, user_id: str) -> int:
    """The user's coins (NotFound if there is no such user)."""
    row = conn.execute("SELECT coins FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return int(row[0])


def debit(
    conn: sqlite3.Connection,
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
    row = conn.execute(
        "UPDATE users SET coins = coins - ?, updated_at = ? WHERE id = ? AND coins >= ? "
        "RETURNING coins",
        (amount, now, user_id, amount),
    ).fetchone()
    if row is None:
        raise InsufficientCoins(balance=balance(conn, user_id), cost=amount)
    new_balance = int(row[0])
    _ledger_row(conn, user_id, -amount, new_balance, kind, image_id, actor_id, reason, now)
    return new_balance


def held(conn: sqlite3.Connection, user_id: str) -> int:
    """Coins the user's unfinished jobs hold: each may come back as a refund."""
    row = conn.execute(
        "SELECT COALESCE(SUM(coins_used), 0) FROM images "
        "WHERE user_id = ? AND status IN ('PENDING', 'PROCESSING')",
        (user_id,),
    ).fetchone()
    return int(row[0])


def credit(
    conn: sqlite3.Connection,
    user_id: str,
    amount: int,
    *,
    kind: TransactionKind,
    image_id: str | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
    cap: int = INT64_MAX,
    keep_room_for_refunds: bool = False,
) -> int:
    """Add `amount` coins and write the ledger row; returns the new balance.

    Refuses (BalanceOverflow, nothing written) a balance past `cap`. With
    `keep_room_for_refunds`, the coins the user's unfinished jobs hold count against the cap
    too, so that their refunds will always fit: grants use it, refunds don't need it.
    """
    check_amount(amount)
    cap = min(cap, INT64_MAX)
    room = held(conn, user_id) if keep_room_for_refunds else 0
    now = utcnow_iso()
    row = (
        conn.execute(
            "UPDATE users SET coins = coins + ?, updated_at = ? WHERE id = ? AND coins <= ? "
            "RETURNING coins",
            (amount, now, user_id, cap - amount - room),
        ).fetchone()
        if amount + room <= cap
        else None
    )
    if row is None:
        current = balance(conn, user_id)  # raises NotFound for a missing user
        raise BalanceOverflow(
            f"a balance of {current} + {amount} coins"
            + (f" (+ {room} held by images in progress)" if room else "")
            + f" would pass the maximum of {cap}",
            balance=current,
            amount=amount,
            held=room,
            cap=cap,
        )
    new_balance = int(row[0])
    _ledger_row(conn, user_id, amount, new_balance, kind, image_id, actor_id, reason, now)
    return new_balance


def _ledger_row(
    conn: sqlite3.Connection,
    user_id: str,
    delta: int,
    balance_after: int,
    kind: TransactionKind,
    image_id: str | None,
    actor_id: str | None,
    reason: str | None,
    created_at: str,
) -> None:
    conn.execute(
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
