"""Assertions on the coin invariants, reused by every suite that moves coins, and helpers that
make a member with a wallet and a paid image job."""

from __future__ import annotations

from storage.db import Database
from storage.jobs import JobRepository, JobRow
from storage.models import User, Wallet
from storage.usage import BudgetClaim
from storage.users import UserRepository
from storage.wallets import WalletRepository


async def assert_ledger_consistent(db: Database) -> None:
    """For every wallet: coins == SUM(delta), coins >= 0, newest balance_after == coins, and
    its rows name its owner. For every job (migration 0010): its charge is one GENERATION row
    of its cost from the wallet that paid; it is refunded at most once, with its cost, to that
    wallet, and only if it failed; a paid job that failed is refunded exactly once unless the
    refund is recorded as owed (the balance cap)."""
    rows = await db.fetchall(
        "SELECT w.id, w.coins, COALESCE(SUM(t.delta), 0) AS total FROM wallets w "
        "LEFT JOIN coin_transactions t ON t.wallet_id = w.id GROUP BY w.id"
    )
    for row in rows:
        assert row["coins"] >= 0, f"wallet {row['id']} is negative"
        assert row["coins"] == row["total"], f"wallet {row['id']}: {row['coins']} != {row['total']}"
        newest = await db.fetchval(
            "SELECT balance_after FROM coin_transactions WHERE wallet_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (row["id"],),
        )
        if newest is not None:
            assert newest == row["coins"], f"wallet {row['id']}: newest row {newest}"
    strangers = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions t JOIN wallets w ON w.id = t.wallet_id "
        "WHERE t.user_id != w.user_id"
    )
    assert strangers == 0, "ledger rows naming another member than their wallet's"
    doubles = await db.fetchval(
        "SELECT COUNT(*) FROM (SELECT job_id FROM coin_transactions WHERE kind = 'REFUND' "
        "AND job_id IS NOT NULL GROUP BY job_id HAVING COUNT(*) > 1) AS doubled"
    )
    assert doubles == 0, "a job refunded twice"
    misdirected = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.kind = 'REFUND' AND (t.wallet_id IS DISTINCT FROM j.wallet_id "
        "OR t.delta <> j.cost OR j.status <> 'FAILED')"
    )
    assert misdirected == 0, "a refund of another amount, wallet or job than the one that paid"
    charges = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions t JOIN jobs j ON j.id = t.job_id "
        "WHERE t.kind = 'GENERATION' AND (t.wallet_id IS DISTINCT FROM j.wallet_id "
        "OR t.delta <> -j.cost)"
    )
    assert charges == 0, "a job's charge from another wallet or of another amount"
    miscounted = await db.fetchall(
        "SELECT j.id, j.status, j.refund_owed, "
        "(SELECT COUNT(*) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'GENERATION') AS charged, "
        "(SELECT COUNT(*) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'REFUND') AS refunded "
        "FROM jobs j WHERE j.cost > 0 AND j.wallet_id IS NOT NULL"
    )
    # Issue 23 (b): a payment is two TRANSFER rows, one from each wallet, in one transaction:
    # coins never appear or vanish through them.
    transferred = await db.fetchval(
        "SELECT COALESCE(SUM(delta), 0) FROM coin_transactions WHERE kind = 'TRANSFER'"
    )
    assert transferred == 0, f"payments created or destroyed {transferred} coins"
    for job in miscounted:
        assert job["charged"] == 1, f"job {job['id']} charged {job['charged']} times"
        owed_refund = job["status"] == "FAILED" and job["refund_owed"] is None
        assert job["refunded"] == int(owed_refund), (
            f"job {job['id']} ({job['status']}, owed {job['refund_owed']}) refunded "
            f"{job['refunded']} times"
        )


async def all_jobs(db: Database) -> list[JobRow]:
    """Every job, oldest first."""
    rows = await db.fetchall("SELECT * FROM jobs ORDER BY created_at, id")
    return [JobRow.from_row(row) for row in rows]


async def member(
    db: Database, discord_id: int, coins: int = 0, guild_id: int | None = None
) -> tuple[User, Wallet]:
    """A user with a wallet (in `guild_id`, or global) holding `coins` from a STARTER row."""
    user, _ = await UserRepository(db).get_or_create_by_discord(discord_id)
    opening = await WalletRepository(db).open(user.id, guild_id, starter_coins=coins)
    return user, opening.wallet


async def paid_job(
    db: Database,
    user: User,
    wallet: Wallet | None,
    cost: int = 100,
    *,
    prompt: str = "p",
    guild_id: int | None = None,
    lease_owner: str | None = None,
    max_active: int | None = None,
    claim: BudgetClaim | None = None,
    processing: bool = False,
) -> JobRow:
    """An image job reserved as the bot reserves one (its wallet debited), PENDING, or
    PROCESSING with `processing` (which needs `lease_owner`)."""
    jobs = JobRepository(db)
    reservation = await jobs.reserve(
        kind="image", user_id=user.id, wallet_id=wallet.id if wallet else None, cost=cost,
        guild_id=guild_id, request={"prompt": prompt}, lease_owner=lease_owner,
        max_active=max_active, claim=claim,
    )  # fmt: skip
    if not processing:
        return reservation.job
    assert lease_owner is not None, "a job is started by the process whose job it is"
    await jobs.mark_processing(reservation.job.id, lease_owner)
    started = await jobs.get(reservation.job.id)
    assert started is not None
    return started
