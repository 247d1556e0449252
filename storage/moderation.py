"""ModerationRepository: a server's blocklist, its blocked members, the audit of moderation
actions, and the Discord messages that show each image. Standard SQL only (SQLite and
PostgreSQL); details are JSON text handled here, never in SQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Database, Transaction
from storage.timeutil import from_iso, to_iso, utcnow_iso


@dataclass(frozen=True)
class BlockEntry:
    guild_id: int
    kind: str  # WORD or PATTERN
    entry: str
    actor_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class MemberBlock:
    guild_id: int
    user_id: str
    reason: str
    until: datetime | None
    actor_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class ModerationAction:
    """One audit row: who (`actor_id`) did `action` to whom or to which image, and why."""

    guild_id: int | None
    actor_id: str | None
    action: str
    target_user_id: str | None
    image_id: str | None
    detail: dict[str, Any]
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class ImagePost:
    image_id: str
    channel_id: int
    message_id: int
    kind: str  # RESULT or LOG


async def record_action(
    tx: Transaction,
    *,
    guild_id: int | None,
    actor_id: str | None,
    action: str,
    target_user_id: str | None = None,
    image_id: str | None = None,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Write one audit row inside the caller's transaction (with the change it records)."""
    await tx.execute(
        "INSERT INTO moderation_actions (id, guild_id, actor_id, action, target_user_id, "
        "image_id, detail, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            None if guild_id is None else str(guild_id),
            actor_id,
            action,
            target_user_id,
            image_id,
            json.dumps(detail or {}, separators=(",", ":")),
            reason,
            utcnow_iso(),
        ),
    )


class ModerationRepository:
    """Blocklists, member blocks, the moderation audit and image posts."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Blocklist ---------------------------------------------------------------------------

    async def blocklist(self, guild_id: int) -> list[BlockEntry]:
        rows = await self.db.fetchall(
            "SELECT kind, entry, actor_id, created_at FROM guild_blocklist WHERE guild_id = ? "
            "ORDER BY created_at, entry",
            (str(guild_id),),
        )
        return [
            BlockEntry(guild_id, r["kind"], r["entry"], r["actor_id"], from_iso(r["created_at"]))
            for r in rows
        ]

    async def add_entry(
        self, guild_id: int, kind: str, entry: str, *, actor_id: str, limit: int
    ) -> bool:
        """Add an entry and its audit row; False if it was already there (nothing written).
        Refuses (ValueError) past `limit` entries."""

        async def write(tx: Transaction) -> bool:
            count = await tx.fetchval(
                "SELECT COUNT(*) FROM guild_blocklist WHERE guild_id = ?", (str(guild_id),)
            )
            cursor = await tx.execute(
                "INSERT INTO guild_blocklist (id, guild_id, kind, entry, actor_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (str(uuid.uuid4()), str(guild_id), kind, entry, actor_id, utcnow_iso()),
            )
            if cursor != 1:
                return False
            if int(count) >= limit:
                raise ValueError("blocklist full")
            await record_action(tx, guild_id=guild_id, actor_id=actor_id, action="blocklist_add",
                          detail={"kind": kind, "entry": entry})  # fmt: skip
            return True

        return await self.db.write(write)

    async def remove_entry(self, guild_id: int, entry: str, *, actor_id: str) -> str | None:
        """Remove an entry (word or pattern); its kind, or None if there was none."""

        async def write(tx: Transaction) -> str | None:
            row = await tx.fetchone(
                "SELECT kind FROM guild_blocklist WHERE guild_id = ? AND entry = ?",
                (str(guild_id), entry),
            )
            if row is None:
                return None
            await tx.execute(
                "DELETE FROM guild_blocklist WHERE guild_id = ? AND entry = ?",
                (str(guild_id), entry),
            )
            await record_action(tx, guild_id=guild_id, actor_id=actor_id, action="blocklist_remove",
                          detail={"kind": row[0], "entry": entry})  # fmt: skip
            return str(row[0])

        return await self.db.write(write)

    # Member blocks -----------------------------------------------------------------------

    async def block(self, guild_id: int, user_id: str) -> MemberBlock | None:
        row = await self.db.fetchone(
            "SELECT reason, until, actor_id, created_at FROM member_blocks "
            "WHERE guild_id = ? AND user_id = ?",
            (str(guild_id), user_id),
        )
        if row is None:
            return None
        return MemberBlock(
            guild_id, user_id, row["reason"], from_iso(row["until"]) if row["until"] else None,
            row["actor_id"], from_iso(row["created_at"]),
        )  # fmt: skip

    async def blocks(self, guild_id: int) -> list[MemberBlock]:
        rows = await self.db.fetchall(
            "SELECT user_id, reason, until, actor_id, created_at FROM member_blocks "
            "WHERE guild_id = ? ORDER BY created_at",
            (str(guild_id),),
        )
        return [
            MemberBlock(
                guild_id,
                r["user_id"],
                r["reason"],
                from_iso(r["until"]) if r["until"] else None,
                r["actor_id"],
                from_iso(r["created_at"]),
            )
            for r in rows
        ]

    async def set_block(
        self, guild_id: int, user_id: str, reason: str, until: datetime | None, *, actor_id: str
    ) -> None:
        """Block (or re-block, replacing reason and end) a member, with its audit row."""
        until_text = to_iso(until) if until else None

        async def write(tx: Transaction) -> None:
            await tx.execute(
                "INSERT INTO member_blocks (guild_id, user_id, reason, until, actor_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE "
                "SET reason = excluded.reason, until = excluded.until, "
                "actor_id = excluded.actor_id, created_at = excluded.created_at",
                (str(guild_id), user_id, reason, until_text, actor_id, utcnow_iso()),
            )
            await record_action(tx, guild_id=guild_id, actor_id=actor_id, action="member_block",
                          target_user_id=user_id, detail={"until": until_text},
                          reason=reason)  # fmt: skip

        await self.db.write(write)

    async def clear_block(self, guild_id: int, user_id: str, *, actor_id: str, reason: str) -> bool:
        """Unblock; False if the member was not blocked (nothing written)."""

        async def write(tx: Transaction) -> bool:
            cursor = await tx.execute(
                "DELETE FROM member_blocks WHERE guild_id = ? AND user_id = ?",
                (str(guild_id), user_id),
            )
            if cursor != 1:
                return False
            await record_action(tx, guild_id=guild_id, actor_id=actor_id, action="member_unblock",
                          target_user_id=user_id, reason=reason or None)  # fmt: skip
            return True

        return await self.db.write(write)

    # Audit -------------------------------------------------------------------------------

    async def record(self, **fields: Any) -> None:
        """One audit row on its own (an action with no other write to go with)."""
        await self.db.write(lambda tx: record_action(tx, **fields))

    async def actions(self, guild_id: int, *, limit: int = 15) -> list[ModerationAction]:
        """The server's latest moderation actions, newest first."""
        rows = await self.db.fetchall(
            "SELECT guild_id, actor_id, action, target_user_id, image_id, detail, reason, "
            "created_at FROM moderation_actions WHERE guild_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (str(guild_id), limit),
        )
        return [
            ModerationAction(
                guild_id=int(r["guild_id"]) if r["guild_id"] else None,
                actor_id=r["actor_id"],
                action=r["action"],
                target_user_id=r["target_user_id"],
                image_id=r["image_id"],
                detail=json.loads(r["detail"]) if r["detail"] else {},
                reason=r["reason"],
                created_at=from_iso(r["created_at"]),
            )
            for r in rows
        ]

    # Where images are shown --------------------------------------------------------------

    async def add_post(self, image_id: str, channel_id: int, message_id: int, kind: str) -> None:
        await self.db.execute(
            "INSERT INTO image_posts (image_id, channel_id, message_id, kind, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (image_id, str(channel_id), str(message_id), kind, utcnow_iso()),
        )

    async def posts(self, image_ids: list[str]) -> list[ImagePost]:
        if not image_ids:
            return []
        marks = ", ".join("?" for _ in image_ids)
        rows = await self.db.fetchall(
            "SELECT image_id, channel_id, message_id, kind FROM image_posts "
            f"WHERE image_id IN ({marks})",
            image_ids,
        )
        return [
            ImagePost(r["image_id"], int(r["channel_id"]), int(r["message_id"]), r["kind"])
            for r in rows
        ]

    async def extras_of(self, image_id: str) -> list[str]:
        """Ids of the further images of the same answer (rows whose metadata names the job).

        Matched in Python, not with a JSON function, so it runs on any SQL database."""
        rows = await self.db.fetchall(
            "SELECT id, metadata FROM images WHERE user_id = (SELECT user_id FROM images "
            "WHERE id = ?) AND created_at >= (SELECT created_at FROM images WHERE id = ?) "
            "AND id <> ?",
            (image_id, image_id, image_id),
        )
        return [
            r["id"] for r in rows if json.loads(r["metadata"] or "{}").get("extra_of") == image_id
        ]
