"""SQL pieces of the process leases (storage/leases.py) that other repositories use inside
their own transactions: is a process live, and the object intents a job or upload clears when
its row commits."""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Transaction


def live(column: str) -> str:
    """SQL: the process named by `column` is live at the time given by the next parameter."""
    return f"EXISTS (SELECT 1 FROM bot_processes p WHERE p.id = {column} AND p.lease_until >= ?)"


async def add_intents(tx: Transaction, process_id: str, keys: Sequence[str], now: str) -> None:
    """Inside a transaction: record objects `process_id` is about to write."""
    if keys:
        await tx.executemany(
            "INSERT INTO object_intents (key, owner, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner",
            [(key, process_id, now) for key in keys],
        )


async def clear_intents(tx: Transaction, process_id: str, keys: Sequence[str]) -> int:
    """Inside a transaction: remove this process's intents of `keys`; how many were there
    (fewer than `keys` when a sweep took them: the process was taken for dead, and the objects
    may be gone)."""
    removed = 0
    # In key order, as the sweep takes them: two transactions never wait on each other in
    # opposite orders (PostgreSQL).
    for key in sorted(set(keys)):
        removed += await tx.execute(
            "DELETE FROM object_intents WHERE key = ? AND owner = ?", (key, process_id)
        )
    return removed
