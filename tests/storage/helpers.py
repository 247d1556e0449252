"""Assertions on the coin invariants, reused by every suite that moves coins, and a helper that
makes a member with a wallet."""

from __future__ import annotations

from storage.db import Database
from storage.models import User, Wallet
from storage.users import UserRepository
from storage.wallets import WalletRepository


async def assert_ledger_consistent(db: Database) -> None:
    """For every wallet: coins == SUM(delta), coins >= 0, newest balance_after == coins, and
    its rows name its owner; no job refunded twice, and every refund went back to the wallet
    that paid for its job."""
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
        "WHERE t.kind = 'REFUND' AND t.wallet_id IS DISTINCT FROM j.wallet_id"
    )
    assert misdirected == 0, "a refund went to another wallet than the one that paid"


async def member(
    db: Database, discord_id: int, coins: int = 0, guild_id: int | None = None
) -> tuple[User, Wallet]:
    """A user with a wallet (in `guild_id`, or global) holding `coins` from a STARTER row."""
    user, _ = await UserRepository(db).get_or_create_by_discord(discord_id)
    opening = await WalletRepository(db).open(user.id, guild_id, starter_coins=coins)
    return user, opening.wallet
