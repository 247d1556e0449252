"""UserRepository: the seed's user API in async Python, plus Discord identity.

A user is an identity only: their coins live in wallets (storage/wallets.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from storage.db import Database, Transaction
from storage.errors import NotFound
from storage.models import User, UserRole
from storage.timeutil import utcnow_iso

_USER_COLUMNS = (
    "id, email, google_id, discord_id, first_name, last_name, display_name, roles, language, "
    "created_at, updated_at"
)
# Fields `update` may change; roles change through add_role/remove_role.
_UPDATABLE = frozenset(
    {"email", "google_id", "first_name", "last_name", "display_name", "language"}
)


class UserRepository:
    """Users: identities (Discord, and as in the seed e-mail/Google), roles and language."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
    ) -> User:
        """Insert a user."""
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

        async def insert(tx: Transaction) -> User:
            await tx.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return await _fetch(tx, "id = ?", user_id)

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
    ) -> tuple[User, bool]:
        """The user for a Discord id, created on first sight; returns (user, created).

        Concurrent first calls create one user: the insert is `ON CONFLICT DO NOTHING` (in
        every process: the unique index decides).
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

        async def insert(tx: Transaction) -> tuple[User, bool]:
            inserted = await tx.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) "
                "VALUES (?, NULL, NULL, ?, NULL, NULL, ?, ?, ?, ?, ?) "
                "ON CONFLICT (discord_id) DO NOTHING",
                values,
            )
            return await _fetch(tx, "discord_id = ?", str(discord_id)), inserted == 1

        return await self.db.write(insert)

    async def update(self, user_id: str, **fields: Any) -> User:
        """Change profile fields (not roles); returns the updated user."""
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
        """Delete a user and (by cascade) their wallets, ledger and image rows; True if one
        existed."""
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

    # Roles -------------------------------------------------------------------------------

    async def add_role(self, user_id: str, role: UserRole) -> User:
        return await self._change_roles(user_id, add=role)

    async def remove_role(self, user_id: str, role: UserRole) -> User:
        return await self._change_roles(user_id, remove=role)

    async def _change_roles(
        self, user_id: str, *, add: UserRole | None = None, remove: UserRole | None = None
    ) -> User:
        async def change(tx: Transaction) -> User:
            # Read-modify-write, with the row locked until the end (PostgreSQL; SQLite's
            # writer is exclusive anyway).
            row = await tx.fetchone(
                f"SELECT roles FROM users WHERE id = ?{tx.dialect.for_update}", (user_id,)
            )
            if row is None:
                raise NotFound(f"user {user_id} does not exist")
            roles = [UserRole(r) for r in json.loads(row[0])]
            if add is not None and add not in roles:
                roles.append(add)
            if remove is not None and remove in roles:
                roles.remove(remove)
            await tx.execute(
                "UPDATE users SET roles = ?, updated_at = ? WHERE id = ?",
                (_roles_json(roles), utcnow_iso(), user_id),
            )
            return await _fetch(tx, "id = ?", user_id)

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


async def _fetch(tx: Transaction, where: str, value: object) -> User:
    """A user as the current write transaction sees it."""
    row = await tx.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE {where}", (value,))
    if row is None:
        raise NotFound(f"user ({where.split()[0]} {value}) does not exist")
    return User.from_row(row)


def _roles_json(roles: Iterable[UserRole]) -> str:
    return json.dumps(sorted({UserRole(r).value for r in roles}))
