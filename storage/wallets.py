"""WalletRepository: members' coins, one wallet per member per server (or one global wallet),
and the ledger of each. Every coin movement writes exactly one ledger row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage import ledger
from storage.cursors import decode_cursor, encode_cursor
from storage.db import Database, Transaction
from storage.errors import InvalidCursor, NotFound
from storage.models import CoinTransaction, Page, TransactionKind, Wallet
from storage.timeutil import to_iso, utcnow_iso

_WALLET_COLUMNS = (
    "id, user_id, guild_id, coins, carried_over, daily_claimed_at, created_at, updated_at"
)
_TRANSACTION_COLUMNS = (
    "seq, id, wallet_id, user_id, delta, balance_after, kind, image_id, actor_id, reason, "
    "created_at, job_id"
)


@dataclass(frozen=True)
class WalletOpening:
    """What `open` did: the wallet, and whether it was made now or taken over."""

    wallet: Wallet
    created: bool = False
    # A wallet carried over from before servers had their own (see migration 0002), now this
    # server's.
    adopted: bool = False


class WalletRepository:
    """Wallets and their ledger rows."""

    def __init__(self, db: Database, *, max_balance: int = ledger.INT64_MAX) -> None:
        self.db = db
        #: No balance may pass this (credits, grants and daily claims are refused beyond it).
        self.max_balance = max_balance

    # Lookups -----------------------------------------------------------------------------

    async def get(self, wallet_id: str) -> Wallet | None:
        row = await self.db.fetchone(
            f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE id = ?", (wallet_id,)
        )
        return Wallet.from_row(row) if row is not None else None

    async def find(self, user_id: str, guild_id: int | None) -> Wallet | None:
        """The member's wallet in a server, or their global wallet for `guild_id=None`."""
        row = await self.db.fetchone(*_find_sql(user_id, guild_id))
        return Wallet.from_row(row) if row is not None else None

    async def list_for_user(self, user_id: str) -> list[Wallet]:
        """Every wallet of a member (global first, then by server)."""
        rows = await self.db.fetchall(
            f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE user_id = ? "
            "ORDER BY guild_id IS NOT NULL, guild_id",
            (user_id,),
        )
        return [Wallet.from_row(r) for r in rows]

    # Opening -----------------------------------------------------------------------------

    async def open(
        self,
        user_id: str,
        guild_id: int | None,
        *,
        starter_coins: int = 0,
        adopt_carried_over: bool = False,
    ) -> WalletOpening:
        """The member's wallet for `guild_id` (None: global), made on first use.

        A new wallet gets `starter_coins` through a STARTER ledger row. With
        `adopt_carried_over`, a server wallet is instead the member's carried-over wallet
        (their balance and history from before servers had wallets), if they have one: the
        first server to ask takes it over, once. One write under the write lock: concurrent
        first calls (in any process) open one wallet and pay one starter gift.
        """
        if starter_coins:
            ledger.check_amount(starter_coins)

        async def open_wallet(tx: Transaction) -> WalletOpening:
            existing = await tx.fetchone(*_find_sql(user_id, guild_id))
            if existing is not None:
                return WalletOpening(Wallet.from_row(existing))
            now = utcnow_iso()
            if guild_id is not None and adopt_carried_over:
                adopted = await tx.fetchone(
                    "UPDATE wallets SET guild_id = ?, carried_over = 0, updated_at = ? "
                    "WHERE user_id = ? AND guild_id IS NULL AND carried_over = 1 RETURNING id",
                    (str(guild_id), now, user_id),
                )
                if adopted is not None:
                    return WalletOpening(await _fetch(tx, str(adopted[0])), adopted=True)
            wallet_id = str(uuid.uuid4())
            # Another process may open the same wallet at the same moment: the unique
            # indexes let one insert through, and the other takes that wallet.
            inserted = await tx.execute(
                f"INSERT INTO wallets ({_WALLET_COLUMNS}) VALUES (?, ?, ?, 0, 0, NULL, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (wallet_id, user_id, _guild_text(guild_id), now, now),
            )
            if not inserted:
                found = await tx.fetchone(*_find_sql(user_id, guild_id))
                assert found is not None, "a wallet conflicted but can't be read"
                return WalletOpening(Wallet.from_row(found))
            if starter_coins:
                await ledger.credit(
                    tx, wallet_id, starter_coins, kind=TransactionKind.STARTER,
                    reason="welcome", cap=self.max_balance,
                )  # fmt: skip
            return WalletOpening(await _fetch(tx, wallet_id), created=True)

        return await self.db.write(open_wallet)

    # Coins -------------------------------------------------------------------------------

    async def debit(
        self,
        wallet_id: str,
        amount: int,
        *,
        kind: TransactionKind,
        image_id: str | None = None,
        actor_id: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Take coins; raises InsufficientCoins (with balance and cost). Returns the balance."""
        ledger.check_amount(amount)
        return await self.db.write(
            lambda tx: ledger.debit(
                tx, wallet_id, amount, kind=kind, image_id=image_id, actor_id=actor_id,
                reason=reason,
            )
        )  # fmt: skip

    async def credit(
        self,
        wallet_id: str,
        amount: int,
        *,
        kind: TransactionKind,
        image_id: str | None = None,
        actor_id: str | None = None,
        reason: str | None = None,
        keep_room_for_refunds: bool = False,
    ) -> int:
        """Add coins with a ledger row. Returns the new balance.

        Raises BalanceOverflow (nothing written) past `max_balance`; with
        `keep_room_for_refunds` (grants), coins held by the wallet's unfinished jobs count
        against it too, so those jobs' refunds always fit.
        """
        ledger.check_amount(amount)
        return await self.db.write(
            lambda tx: ledger.credit(
                tx, wallet_id, amount, kind=kind, image_id=image_id, actor_id=actor_id,
                reason=reason, cap=self.max_balance, keep_room_for_refunds=keep_room_for_refunds,
            )
        )  # fmt: skip

    async def claim_daily(self, wallet_id: str, amount: int, *, not_since: datetime) -> int:
        """Credit the daily coins unless they were claimed at or after `not_since`; raises
        AlreadyClaimed then. Returns the new balance."""
        ledger.check_amount(amount)
        cutoff = to_iso(not_since)
        return await self.db.write(
            lambda tx: ledger.claim_daily(
                tx, wallet_id, amount, last_claim_before=cutoff, cap=self.max_balance
            )
        )

    async def transfer(
        self,
        from_wallet: str,
        to_wallet: str,
        amount: int,
        *,
        actor_id: str | None,
        reason: str | None = None,
        daily_limit: int | None = None,
        since: datetime | None = None,
    ) -> ledger.Transfer:
        """One member pays another (see ledger.transfer): both rows or neither; refused past
        the balance, past `max_balance`, or past `daily_limit` paid since `since`."""
        ledger.check_amount(amount)
        cutoff = to_iso(since) if since is not None else None
        return await self.db.write(
            lambda tx: ledger.transfer(
                tx, from_wallet, to_wallet, amount, actor_id=actor_id, reason=reason,
                cap=self.max_balance, daily_limit=daily_limit, since=cutoff,
            )
        )  # fmt: skip

    async def sent_since(self, wallet_id: str, since: datetime) -> int:
        """Coins the wallet paid others since `since` (what counts toward /pay's limit)."""
        total = await self.db.fetchval(
            "SELECT COALESCE(SUM(-delta), 0) FROM coin_transactions WHERE wallet_id = ? "
            "AND kind = 'TRANSFER' AND delta < 0 AND created_at >= ?",
            (wallet_id, to_iso(since)),
        )
        return int(total)

    # Ledger ------------------------------------------------------------------------------

    async def transactions(
        self, wallet_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[CoinTransaction]:
        """The wallet's ledger newest first, by keyset on insertion order."""
        params: list[Any] = [wallet_id]
        where = "wallet_id = ?"
        if cursor is not None:
            position, _ = decode_cursor(cursor)
            if not isinstance(position, int):
                raise InvalidCursor("the page cursor is not valid")
            where += " AND seq < ?"
            params.append(position)
        rows = await self.db.fetchall(
            f"SELECT {_TRANSACTION_COLUMNS} FROM coin_transactions WHERE {where} "
            "ORDER BY seq DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [CoinTransaction.from_row(r) for r in rows[:limit]]
        next_cursor = (
            encode_cursor(int(rows[limit - 1]["seq"]), rows[limit - 1]["id"])
            if len(rows) > limit and limit > 0
            else None
        )
        return Page(items, next_cursor)

    async def ledger_sum(self, wallet_id: str) -> int:
        """SUM(delta) of the wallet's ledger: always equal to its balance."""
        total = await self.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM coin_transactions WHERE wallet_id = ?",
            (wallet_id,),
        )
        return int(total)


def _guild_text(guild_id: int | None) -> str | None:
    return str(guild_id) if guild_id is not None else None


def _find_sql(user_id: str, guild_id: int | None) -> tuple[str, tuple[str, ...]]:
    # Two shapes, so that each walks its own partial unique index.
    if guild_id is None:
        return (
            f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE user_id = ? AND guild_id IS NULL",
            (user_id,),
        )
    return (
        f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE user_id = ? AND guild_id = ?",
        (user_id, str(guild_id)),
    )


async def _fetch(tx: Transaction, wallet_id: str) -> Wallet:
    """A wallet as the current write transaction sees it."""
    row = await tx.fetchone(f"SELECT {_WALLET_COLUMNS} FROM wallets WHERE id = ?", (wallet_id,))
    if row is None:
        raise NotFound(f"wallet {wallet_id} does not exist")
    return Wallet.from_row(row)
