"""CharacterRepository: the character and style library (migration 0015).

A character is a name and a few reference images (objects in the store) that /generate sends
with `character:<name>`: a member's own, or their server's shared style sheet (owner ''). The
count and the insert are one transaction, so two saves at once can't pass a member's limit.
Standard SQL with `?` placeholders only, so the same statements run on every backend.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from storage.db import Database, Transaction
from storage.errors import ConstraintViolation, StorageLayerError
from storage.models import Row
from storage.timeutil import from_iso, utcnow_iso

_COLUMNS = "id, guild_id, owner_id, created_by, name, name_key, refs, created_at"
#: The owner id of a server's shared characters.
SHARED = ""


class NameTaken(StorageLayerError):
    """The owner already has a character of that name in that server."""


class TooManyCharacters(StorageLayerError):
    """The owner already has the most characters allowed in that server."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} characters")
        self.limit = limit


class Reference(BaseModel):
    """One reference image of a character: its object and type."""

    model_config = ConfigDict(frozen=True)

    key: str
    mime_type: str


class Character(BaseModel):
    """A saved character: where, whose ('' = the server's), its name and references."""

    model_config = ConfigDict(frozen=True)

    id: str
    guild_id: int
    owner_id: str
    created_by: str
    name: str
    refs: tuple[Reference, ...]
    created_at: datetime

    @property
    def shared(self) -> bool:
        return self.owner_id == SHARED

    @classmethod
    def from_row(cls, row: Row) -> Character:
        refs: Any = json.loads(row["refs"] or "[]")
        return cls(
            id=row["id"],
            guild_id=int(row["guild_id"]),
            owner_id=row["owner_id"],
            created_by=row["created_by"],
            name=row["name"],
            refs=tuple(Reference(**r) for r in refs if isinstance(r, dict)),
            created_at=from_iso(row["created_at"]),
        )


def name_key(name: str) -> str:
    """The name as compared: case-folded, spaces collapsed."""
    return " ".join(name.split()).casefold()


class CharacterRepository:
    """Create, find, list and delete characters."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        guild_id: int,
        owner_id: str,
        created_by: str,
        name: str,
        refs: list[Reference],
        max_per_owner: int,
        character_id: str | None = None,
    ) -> Character:
        """Record a character (its objects are in the store already); NameTaken when the
        owner has one of that name there, TooManyCharacters past `max_per_owner`."""
        new_id = character_id or str(uuid.uuid4())
        guild = str(guild_id)
        key = name_key(name)
        encoded = json.dumps([r.model_dump() for r in refs], separators=(",", ":"))

        async def insert(tx: Transaction) -> Character:
            # Locks the member (PostgreSQL): two saves in two processes queue up here.
            await tx.fetchone(f"SELECT id FROM users WHERE id = ?{tx.dialect.for_update}",
                              (created_by,))  # fmt: skip
            taken = await tx.fetchval(
                "SELECT COUNT(*) FROM characters WHERE guild_id = ? AND owner_id = ? "
                "AND name_key = ?",
                (guild, owner_id, key),
            )
            if int(taken):
                raise NameTaken(name)
            count = await tx.fetchval(
                "SELECT COUNT(*) FROM characters WHERE guild_id = ? AND owner_id = ?",
                (guild, owner_id),
            )
            if int(count) >= max_per_owner:
                raise TooManyCharacters(max_per_owner)
            try:
                await tx.execute(
                    f"INSERT INTO characters ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (new_id, guild, owner_id, created_by, name, key, encoded, utcnow_iso()),
                )
            except ConstraintViolation:
                raise NameTaken(name) from None
            row = await tx.fetchone(f"SELECT {_COLUMNS} FROM characters WHERE id = ?", (new_id,))
            assert row is not None
            return Character.from_row(row)

        return await self.db.write(insert)

    async def visible(self, guild_id: int, user_id: str | None) -> list[Character]:
        """The characters a member sees in a server: their own, then the server's, by name
        (the server's only when `user_id` is None)."""
        owners = (SHARED,) if user_id is None else (user_id, SHARED)
        marks = ", ".join("?" for _ in owners)
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM characters WHERE guild_id = ? AND owner_id IN ({marks}) "
            "ORDER BY name_key, owner_id DESC",
            (str(guild_id), *owners),
        )
        found = [Character.from_row(r) for r in rows]
        # A member's own before the server's of the same name.
        return sorted(found, key=lambda c: (name_key(c.name), c.shared))

    async def get(self, character_id: str) -> Character | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM characters WHERE id = ?", (character_id,)
        )
        return Character.from_row(row) if row is not None else None

    async def delete(self, character_id: str) -> Character | None:
        """Delete a character's row; the deleted row, or None when it was gone already."""

        async def remove(tx: Transaction) -> Character | None:
            row = await tx.fetchone(
                f"SELECT {_COLUMNS} FROM characters WHERE id = ?", (character_id,)
            )
            if row is None:
                return None
            await tx.execute("DELETE FROM characters WHERE id = ?", (character_id,))
            return Character.from_row(row)

        return await self.db.write(remove)
