"""Assertions on the coin invariants, reused by every suite that moves coins."""

from __future__ import annotations

from storage.db import Database


async def assert_ledger_consistent(db: Database) -> None:
    """For every user: coins == SUM(delta), coins >= 0, newest balance_after == coins;
    and no image was refunded twice."""
    rows = await db.fetchall(
        "SELECT u.id, u.coins, COALESCE(SUM(t.delta), 0) AS total FROM users u "
        "LEFT JOIN coin_transactions t ON t.user_id = u.id GROUP BY u.id"
    )
    for row in rows:
        assert row["coins"] >= 0, f"user {row['id']} is negative"
        assert row["coins"] == row["total"], f"user {row['id']}: {row['coins']} != {row['total']}"
        newest = await db.fetchval(
            "SELECT balance_after FROM coin_transactions WHERE user_id = ? "
            "ORDER BY rowid DESC LIMIT 1",
            (row["id"],),
        )
        if newest is not None:
            assert newest == row["coins"], f"user {row['id']}: newest row {newest}"
    doubles = await db.fetchval(
        "SELECT COUNT(*) FROM (SELECT image_id FROM coin_transactions WHERE kind = 'REFUND' "
        "GROUP BY image_id HAVING COUNT(*) > 1)"
    )
    assert doubles == 0
