"""UserRepository: the seed's user API in async Python, plus Discord identity and the ledger."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from storage import ledger
from storage.cursors import decode_cursor, encode_cursor
from storage.db import Database
from storage.errors import InvalidCursor, NotFound
from storage.models import CoinTransaction, Page, TransactionKind, User, UserRole
from storage.timeutil import utcnow_iso

_USER_COLUMNS = (
    "id, email, google_id, discord_id, first_name, last_name, display_name, roles, language, "
    "coins, created_at, updated_at"
)
# Fields `update` may change. Coins change only through debit/credit, roles through
# add_role/remove_role, so that no coin moves without a ledger row.
_UPDATABLE = frozenset(
    {"email", "google_id", "first_name", "last_name", "display_name", "language"}
)


class UserRepository:
    """Users and their coins. Every coin movement writes exactly one ledger row."""

    def __init__(self, db: Database, *, max_balance: int = ledger.INT64_MAX) -> None:
        self.db = db
        #: No balance may pass this (credits and grants are refused beyond it).
        self.max_balance = max_balance

    # CRUD --------------------------------------------------------------------------------

    async def create(
        self,
        *,
        discord_id: int | None = None,
        email: str | None = None,
        google_id: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        display_name: str | None = None,
        roles: Iterable[UserRole] = (UserRole.USER,),
        language: str = "en",
        starter_coins: int = 0,
    ) -> User:
        """Insert a user; starter coins, if any, arrive through a STARTER ledger row."""
        user_id = str(uuid.uuid4())
        now = utcnow_iso()
        values = (
            user_id,
            email,
            google_id,
            str(discord_id) if discord_id is not None else None,
            first_name,
            last_name,
            display_name,
            _roles_json(roles),
            language,
            now,
            now,
        )

        def insert(conn: sqlite3.Connection) -> User:
            conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                values,
            )
            if starter_coins:
                ledger.credit(
                    conn, user_id, starter_coins, kind=TransactionKind.STARTER, reason="welcome",
                    cap=self.max_balance,
                )  # fmt: skip
            return _fetch(conn, "id = ?", user_id)

        return await self.db.write(insert)

    async def get(self, user_id: str) -> User | None:
        return await self._one("id = ?", user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self._one("email = ?", email)

    async def get_by_google_id(self, google_id: str) -> User | None:
        return await self._one("google_id = ?", google_id)

    async def get_by_discord_id(self, discord_id: int) -> User | None:
        return await self._one("discord_id = ?", str(discord_id))

    async def get_or_create_by_discord(
        self,
        discord_id: int,
        *,
        display_name: str | None = None,
        language: str = "en",
        starter_coins: int = 0,
    ) -> tuple[User, bool]:
        """The user for a Discord id, created on first sight; returns (user, created).

        Concurrent first calls create one user: the insert is `ON CONFLICT DO NOTHING` under
        the write lock, and only the call that inserted writes the STARTER row.
        """
        existing = await self.get_by_discord_id(discord_id)
        if existing is not None:
            return existing, False
        user_id = str(uuid.uuid4())
        now = utcnow_iso()
        values = (
            user_id,
            str(discord_id),
            display_name,
            _roles_json([UserRole.USER]),
            language,
            now,
            now,
        )

        def insert(conn: sqlite3.Connection) -> tuple[User, bool]:
            cursor = conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) "
                "VALUES (?, NULL, NULL, ?, NULL, NULL, ?, ?, ?, 0, ?, ?) "
                "ON CONFLICT (discord_id) DO NOTHING",
                values,
            )
            inserted = cursor.rowcount == 1
            if inserted and starter_coins:
                ledger.credit(
                    conn, user_id, starter_coins, kind=TransactionKind.STARTER, reason="welcome",
                    cap=self.max_balance,
                )  # fmt: skip
            return _fetch(conn, "discord_id = ?", str(discord_id)), inserted

        return await self.db.write(insert)

    async def update(self, user_id: str, **fields: Any) -> User:
        """Change profile fields (not coins or roles); returns the updated user."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))} with update()")
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            changed = await self.db.execute(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), utcnow_iso(), user_id),
            )
            if changed == 0:
                raise NotFound(f"user {user_id} does not exist")
        return await self._require(user_id)

    async def delete(self, user_id: str) -> bool:
        """Delete a user and (by cascade) their images rows and ledger; True if one existed."""
        return await self.db.execute("DELETE FROM users WHERE id = ?", (user_id,)) == 1

    async def list(self, limit: int = 50, offset: int = 0) -> list[User]:
        """Users oldest first (the seed's `findAll`; admin listings are small)."""
        rows = await self.db.fetchall(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT ? OFFSET ?",
            (max(0, limit), max(0, offset)),
        )
        return [User.from_row(r) for r in rows]

    async def count(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM users"))

    # Coins -------------------------------------------------------------------------------

    async def debit(
        self,
        user_id: str,
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
            lambda conn: ledger.debit(
                conn, user_id, amount, kind=kind, image_id=image_id, actor_id=actor_id,
                reason=reason,
            )
        )  # fmt: skip

    async def credit(
        self,
        user_id: str,
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
        `keep_room_for_refunds` (grants), coins held by the user's unfinished jobs count
        against it too, so those jobs' refunds always fit.
        """
        ledger.check_amount(amount)
        return await self.db.write(
            lambda conn: ledger.credit(
                conn, user_id, amount, kind=kind, image_id=image_id, actor_id=actor_id,
                reason=reason, cap=self.max_balance, keep_room_for_refunds=keep_room_for_refunds,
            )
        )  # fmt: skip

    async def transactions(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[CoinTransaction]:
        """The user's ledger newest first, by keyset on insertion order."""
        params: list[Any] = [user_id]
        where = "user_id = ?"
        if cursor is not None:
            position, _ = decode_cursor(cursor)
            if not isinstance(position, int):
                raise InvalidCursor("the page cursor is not valid")
            where += " AND rowid < ?"
            params.append(position)
        rows = await self.db.fetchall(
            "SELECT rowid AS seq, id, user_id, delta, balance_after, kind, image_id, actor_id, "
            f"reason, created_at FROM coin_transactions WHERE {where} "
            "ORDER BY rowid DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [CoinTransaction.from_row(r) for r in rows[:limit]]
        next_cursor = (
            encode_cursor(int(rows[limit - 1]["seq"]), rows[limit - 1]["id"])
            if len(rows) > limit and limit > 0
            else None
        )
        return Page(items, next_cursor)

    async def ledger_sum(self, user_id: str) -> int:
        """SUM(delta) of the user's ledger: always equal to their balance."""
        total = await self.db.fetchval(
            "SELECT COALESCE(SUM(delta), 0) FROM coin_transactions WHERE user_id = ?", (user_id,)
        )
        return int(total)

    # Roles -------------------------------------------------------------------------------

    async def add_role(self, user_id: str, role: UserRole) -> User:
        return await self._change_roles(user_id, add=role)

    async def remove_role(self, user_id: str, role: UserRole) -> User:
        return await self._change_roles(user_id, remove=role)

    async def _change_roles(
        self, user_id: str, *, add: UserRole | None = None, remove: UserRole | None = None
    ) -> User:
        def change(conn: sqlite3.Connection) -> User:
            # Read-modify-write is safe here: the write lock serialises every writer.
            row = conn.execute("SELECT roles FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFound(f"user {user_id} does not exist")
            roles = [UserRole(r) for r in json.loads(row[0])]
            if add is not None and add not in roles:
                roles.append(add)
            if remove is not None and remove in roles:
                roles.remove(remove)
            conn.execute(
                "UPDATE users SET roles = ?, updated_at = ? WHERE id = ?",
                (_roles_json(roles), utcnow_iso(), user_id),
            )
            return _fetch(conn, "id = ?", user_id)

        return await self.db.write(change)

    # Helpers -----------------------------------------------------------------------------

    async def _one(self, where: str, value: object) -> User | None:
        row = await self.db.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", (value,))
        return User.from_row(row) if row is not None else None

    async def _require(self, user_id: str) -> User:
        user = await self.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        return user


def _fetch(conn: sqlite3.Connection, where: str, value: object) -> User:
    """A user as the current write transaction sees it."""
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", (value,)).fetchone()
    if row is None:
        raise NotFound(f"user ({where.split()[0]} {value}) does not exist")
    return User.from_row(row)


def _roles_json(roles: Iterable[UserRole]) -> str:
    return json.dumps(sorted({UserRole(r).value for r in roles}))
