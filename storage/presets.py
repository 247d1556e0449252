"""StylePresetRepository: each server's named styles (a prompt suffix and the storage keys of
its reference images)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.db import Database, Transaction
from storage.models import Row

_COLUMNS = "id, guild_id, name, suffix, reference_keys, created_by, created_at"


@dataclass(frozen=True)
class StylePreset:
    """A server's style: `suffix` is added to prompts; `reference_keys` are its images."""

    id: str
    guild_id: int
    name: str
    suffix: str
    reference_keys: tuple[str, ...]
    created_by: str | None
    created_at: str

    @classmethod
    def from_row(cls, row: Row) -> StylePreset:
        return cls(
            id=str(row["id"]),
            guild_id=int(row["guild_id"]),
            name=str(row["name"]),
            suffix=str(row["suffix"]),
            reference_keys=tuple(str(k) for k in json.loads(row["reference_keys"])),
            created_by=row["created_by"],
            created_at=str(row["created_at"]),
        )


class StylePresetRepository:
    """Rows of `style_presets`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, guild_id: int) -> list[StylePreset]:
        """The server's styles by name."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM style_presets WHERE guild_id = ? ORDER BY name",
            (str(guild_id),),
        )
        return [StylePreset.from_row(r) for r in rows]

    async def add(self, preset: StylePreset, *, limit: int) -> str:
        """Insert a style: "added", "exists" (the name is taken in that server) or "full"
        (the server has `limit` styles already); nothing is written but on "added"."""

        async def write(tx: Transaction) -> str:
            count = await tx.fetchval(
                "SELECT COUNT(*) FROM style_presets WHERE guild_id = ?", (str(preset.guild_id),)
            )
            if int(count) >= limit:
                return "full"
            inserted = await tx.execute(
                f"INSERT INTO style_presets ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id, name) DO NOTHING",
                (preset.id, str(preset.guild_id), preset.name, preset.suffix,
                 json.dumps(list(preset.reference_keys)), preset.created_by,
                 preset.created_at),
            )  # fmt: skip
            return "added" if inserted else "exists"

        return await self.db.write(write)

    async def delete(self, guild_id: int, name: str) -> StylePreset | None:
        """Remove a style; the row it was (its objects are the caller's to delete)."""

        async def write(tx: Transaction) -> StylePreset | None:
            row = await tx.fetchone(
                f"DELETE FROM style_presets WHERE guild_id = ? AND name = ? RETURNING {_COLUMNS}",
                (str(guild_id), name),
            )
            return StylePreset.from_row(row) if row is not None else None

        return await self.db.write(write)
