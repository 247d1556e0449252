"""The database's own consistency checks for `python -m bot fsck` (bot/services/fsck.py):
every wallet against its ledger (DESIGN §3: `coins == SUM(delta)`, the newest row's
`balance_after == coins`, never negative), refunds exactly once per job, and the one repair of
money that is safe: an ADJUSTMENT row that makes a wallet's ledger explain its balance.

Portable SQL only (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from storage.db import Database, Transaction
from storage.images import history_keys
from storage.models import Row, TransactionKind
from storage.timeutil import utcnow_iso

#: What an fsck ADJUSTMENT row says (the member sees it in their history).
ADJUSTMENT_REASON = "fsck: ledger reconciled with the balance"


@dataclass(frozen=True)
class WalletDrift:
    """A wallet whose ledger does not explain its balance."""

    wallet_id: str
    user_id: str
    guild_id: str | None
    coins: int
    ledger_sum: int
    newest_balance: int | None

    @property
    def difference(self) -> int:
        """Coins the ledger misses (negative: the ledger holds more than the wallet)."""
        return self.coins - self.ledger_sum

    def problem(self) -> str:
        if self.coins < 0:
            return f"balance {self.coins} is negative"
        if self.difference:
            return (
                f"balance {self.coins} but its ledger rows add up to {self.ledger_sum} "
                f"({self.difference:+d})"
            )
        return f"balance {self.coins} but the newest ledger row says {self.newest_balance}"


@dataclass(frozen=True)
class RefundProblem:
    """A job whose refund is not exactly once."""

    job_id: str
    problem: str


_WALLETS_SQL = (
    "SELECT w.id, w.user_id, w.guild_id, w.coins, "
    "COALESCE((SELECT SUM(t.delta) FROM coin_transactions t WHERE t.wallet_id = w.id), 0) "
    "AS total, "
    "(SELECT t.balance_after FROM coin_transactions t WHERE t.wallet_id = w.id "
    "ORDER BY t.seq DESC LIMIT 1) AS newest "
    "FROM wallets w"
)


def _drift(row: Row) -> WalletDrift | None:
    wallet_id, user_id, guild_id, coins, total, newest = (row[i] for i in range(6))
    drift = WalletDrift(
        str(wallet_id), str(user_id), str(guild_id) if guild_id is not None else None,
        int(coins), int(total), int(newest) if newest is not None else None,
    )  # fmt: skip
    has_rows = drift.newest_balance is not None
    wrong_newest = has_rows and drift.newest_balance != drift.coins
    if drift.coins < 0 or drift.difference or wrong_newest:
        return drift
    return None


async def wallet_drifts(db: Database) -> tuple[int, list[WalletDrift]]:
    """How many wallets were checked, and those whose ledger does not explain them."""
    rows = await db.fetchall(_WALLETS_SQL)
    return len(rows), [d for d in map(_drift, rows) if d is not None]


async def settle_drift(db: Database, wallet_id: str) -> int | None:
    """Record an ADJUSTMENT ledger row for the coins the wallet's ledger misses, so that its
    rows add up to its balance (the balance itself is not changed: it is what the member has
    seen and spent from). Checked again under the wallet's lock in the same transaction:
    a second call, or one racing it, finds nothing to do and returns None. Returns the
    adjustment's delta."""

    async def body(tx: Transaction) -> int | None:
        row = await tx.fetchone(
            f"SELECT user_id, coins FROM wallets WHERE id = ?{tx.dialect.for_update}",
            (wallet_id,),
        )
        if row is None:
            return None
        user_id, coins = str(row[0]), int(row[1])
        total = int(
            await tx.fetchval(
                "SELECT COALESCE(SUM(delta), 0) FROM coin_transactions WHERE wallet_id = ?",
                (wallet_id,),
            )
        )
        delta = coins - total
        if delta == 0 or coins < 0:
            return None
        await tx.execute(
            "INSERT INTO coin_transactions (id, wallet_id, user_id, delta, balance_after, kind, "
            "image_id, actor_id, reason, created_at, job_id) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, NULL)",
            (
                str(uuid.uuid4()), wallet_id, user_id, delta, coins,
                TransactionKind.ADJUSTMENT.value, ADJUSTMENT_REASON, utcnow_iso(),
            ),
        )  # fmt: skip
        return delta

    return await db.write(body)


async def refund_problems(db: Database) -> list[RefundProblem]:
    """Jobs refunded more than once, refunded without having failed, or failed with coins
    paid and neither a refund nor a refund owed on record."""
    problems: list[RefundProblem] = []
    for row in await db.fetchall(
        "SELECT job_id, COUNT(*) FROM coin_transactions WHERE kind = 'REFUND' "
        "AND job_id IS NOT NULL GROUP BY job_id HAVING COUNT(*) > 1"
    ):
        problems.append(RefundProblem(str(row[0]), f"refunded {int(row[1])} times"))
    for row in await db.fetchall(
        "SELECT j.id, j.status FROM jobs j WHERE j.status <> 'FAILED' AND EXISTS "
        "(SELECT 1 FROM coin_transactions t WHERE t.job_id = j.id AND t.kind = 'REFUND')"
    ):
        problems.append(RefundProblem(str(row[0]), f"refunded but {row[1]}, not failed"))
    for row in await db.fetchall(
        "SELECT j.id, j.cost FROM jobs j WHERE j.status = 'FAILED' AND j.cost > 0 "
        "AND j.wallet_id IS NOT NULL AND j.refund_owed IS NULL AND EXISTS "
        "(SELECT 1 FROM coin_transactions t WHERE t.job_id = j.id AND t.kind = 'GENERATION') "
        "AND NOT EXISTS "
        "(SELECT 1 FROM coin_transactions t WHERE t.job_id = j.id AND t.kind = 'REFUND')"
    ):
        problems.append(
            RefundProblem(str(row[0]), f"failed, but its {int(row[1])} coins were never refunded")
        )
    return sorted(problems, key=lambda p: p.job_id)


@dataclass(frozen=True)
class ImageKeys:
    """An image row's object keys, for the object checks."""

    image_id: str
    storage_key: str | None
    thumbnail_key: str | None
    other_keys: tuple[str, ...]


async def set_thumbnail(db: Database, image_id: str, key: str, url: str | None) -> str | None:
    """Point an image at its new thumbnail; the key it had before (None: none, or no such
    image). One statement per row: what is replaced is read in the same transaction."""

    async def body(tx: Transaction) -> str | None:
        old = await tx.fetchone(
            f"SELECT thumbnail_key FROM images WHERE id = ?{tx.dialect.for_update}", (image_id,)
        )
        if old is None:
            return None
        await tx.execute(
            "UPDATE images SET thumbnail_key = ?, thumbnail_url = ?, updated_at = ? WHERE id = ?",
            (key, url, utcnow_iso(), image_id),
        )
        return str(old[0]) if old[0] else None

    return await db.write(body)


async def image_keys(db: Database) -> list[ImageKeys]:
    """Every image row's object keys: its image, its thumbnail, and its stored inputs and
    earlier turns (the same columns ImageRepository.referenced_keys reads)."""
    dialect = db.dialect
    rows = await db.fetchall(
        f"SELECT id, storage_key, thumbnail_key, {dialect.json_text('metadata', 'input_keys')} "
        f"AS inputs, {dialect.json_text('metadata', 'history')} AS history FROM images "
        "ORDER BY created_at, id"
    )
    found = []
    for row in rows:
        others = [str(k) for k in json.loads(row["inputs"])] if row["inputs"] else []
        if row["history"]:
            others.extend(history_keys(json.loads(row["history"])))
        keys = ImageKeys(
            str(row["id"]), row["storage_key"] or None, row["thumbnail_key"] or None,
            tuple(dict.fromkeys(others)),
        )  # fmt: skip
        found.append(keys)
    return found
