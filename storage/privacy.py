"""A member's data: all of it read for an export, and erased in one transaction.

Erasing keeps the money consistent: the member's wallets, ledger rows and paid jobs are kept
(so every wallet's invariant, the budgets and the refund-once guard still hold) but move to a
new anonymous user row that nothing links to the member (no Discord id, no name); their jobs
lose what was asked and made. Everything else that is theirs is deleted: images (the caller
deletes the objects, after the commit), API tokens, web sessions, blocks, gallery counters,
the messages' records that showed their images, the prompts in the moderation audit, and the
identity row itself, their own characters (with their images), conversations and preferences
(a server's shared character they saved, and its style presets, stay the server's), and what
they wrote to members they paid. A member with a job in progress is refused
(JobsInProgress): the job finishes or is refunded within minutes, then erasing can proceed with
nothing in flight.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from storage.db import Database, Transaction
from storage.errors import NotFound, StorageLayerError
from storage.images import history_keys
from storage.jobs import UNFINISHED
from storage.library import keys_in
from storage.models import Row
from storage.moderation import record_action
from storage.timeutil import utcnow_iso

#: The audit's action for an erasure (one row in each server the member had data in).
ERASE_ACTION = "privacy_erase"


class JobsInProgress(StorageLayerError):
    """The member has unfinished jobs: nothing was erased."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} job(s) in progress")
        self.count = count


def row_dict(row: Row) -> dict[str, Any]:
    """A row as a JSON-ready dict (JSON columns decoded)."""
    out: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 (sqlite3.Row iterates values)
        value = row[key]
        if key in ("metadata", "request", "result", "detail", "roles") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[str(key)] = value
    return out


@dataclass
class MemberData:
    """Everything stored about a member (as rows)."""

    user: dict[str, Any]
    wallets: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    api_tokens: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    web_sessions: list[dict[str, Any]] = field(default_factory=list)
    characters: list[dict[str, Any]] = field(default_factory=list)
    conversations: list[dict[str, Any]] = field(default_factory=list)
    preferences: list[dict[str, Any]] = field(default_factory=list)


async def member_data(db: Database, user_id: str) -> MemberData | None:
    """Every row that is the member's (None: no such user). Secrets are left out: token
    hashes, session ids and CSRF tokens."""
    user = await db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
    if user is None:
        return None
    data = MemberData(row_dict(user))

    async def rows(sql: str, param: Any = user_id) -> list[dict[str, Any]]:
        return [row_dict(r) for r in await db.fetchall(sql, (param,))]

    data.wallets = await rows("SELECT * FROM wallets WHERE user_id = ? ORDER BY created_at, id")
    data.ledger = await rows("SELECT * FROM coin_transactions WHERE user_id = ? ORDER BY seq")
    data.images = await rows("SELECT * FROM images WHERE user_id = ? ORDER BY created_at, id")
    data.jobs = await rows("SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at, id")
    data.api_tokens = await rows(
        "SELECT id, guild_id, name, prefix, created_at, last_used_at, revoked_at "
        "FROM api_tokens WHERE user_id = ? ORDER BY created_at"
    )
    data.blocks = await rows(
        "SELECT guild_id, reason, until, created_at FROM member_blocks WHERE user_id = ?"
    )
    # Their own characters (a server's shared sheet is the server's, not theirs).
    data.characters = await rows(
        "SELECT id, guild_id, name, refs, created_at FROM characters WHERE owner_id = ? "
        "ORDER BY created_at"
    )
    data.conversations = await rows(
        "SELECT c.id, c.guild_id, c.root_image_id, c.branched_from, c.created_at, t.position, "
        "t.prompt, t.job_id, t.undone_at, t.created_at AS turn_created_at FROM conversations c "
        "LEFT JOIN conversation_turns t ON t.conversation_id = c.id WHERE c.user_id = ? "
        "ORDER BY c.created_at, c.id, t.position, t.created_at"
    )
    data.preferences = await rows(
        "SELECT private_results, leaderboard_hidden, updated_at FROM member_preferences "
        "WHERE user_id = ?"
    )
    if data.user.get("discord_id"):
        data.web_sessions = await rows(
            "SELECT name, server_ids, created_at, expires_at FROM web_sessions "
            "WHERE discord_id = ? ORDER BY created_at",
            str(data.user["discord_id"]),
        )
    return data


def image_object_keys(image: dict[str, Any]) -> list[str]:
    """An image row's objects: the image, its thumbnail, its stored inputs and turns."""
    metadata = image.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    keys = [image.get("storage_key"), image.get("thumbnail_key")]
    keys.extend(metadata.get("input_keys") or [])
    keys.extend(history_keys(metadata.get("history")))
    return [str(k) for k in dict.fromkeys(keys) if k]


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the anonymous id the kept rows now name, the images deleted
    (their objects, for the caller to delete after the commit), the Discord messages that
    showed them (channel id, message id), and the servers told in their audit."""

    anonymous_id: str
    image_ids: list[str]
    object_keys: list[str]
    posts: list[tuple[int, int]]
    guild_ids: list[int]
    ledger_rows: int


async def erase_member(db: Database, user_id: str) -> Erasure:
    """Erase the member (see the module's docstring) in one transaction. Raises NotFound (no
    such user) or JobsInProgress (nothing changed)."""

    async def body(tx: Transaction) -> Erasure:
        user = await tx.fetchone(
            f"SELECT id, discord_id FROM users WHERE id = ?{tx.dialect.for_update}", (user_id,)
        )
        if user is None:
            raise NotFound(f"user {user_id} does not exist")
        discord_id = user["discord_id"]
        unfinished = int(
            await tx.fetchval(
                f"SELECT COUNT(*) FROM jobs WHERE user_id = ? AND {UNFINISHED}", (user_id,)
            )
        )
        if unfinished:
            raise JobsInProgress(unfinished)
        images = [
            row_dict(r)
            for r in await tx.fetchall(
                "SELECT id, guild_id, storage_key, thumbnail_key, metadata FROM images "
                "WHERE user_id = ?",
                (user_id,),
            )
        ]
        image_ids = [str(i["id"]) for i in images]
        keys = [key for image in images for key in image_object_keys(image)]
        # Their own characters go, with their images; a server's shared one they saved stays
        # the server's (its creator becomes the anonymous id below).
        for row in await tx.fetchall("SELECT refs FROM characters WHERE owner_id = ?", (user_id,)):
            keys.extend(sorted(keys_in(row[0])))
        await tx.execute("DELETE FROM characters WHERE owner_id = ?", (user_id,))
        posts: list[tuple[int, int]] = []
        for start in range(0, len(image_ids), 500):
            batch = image_ids[start : start + 500]
            marks = ", ".join("?" * len(batch))
            found = await tx.fetchall(
                f"SELECT channel_id, message_id FROM image_posts WHERE image_id IN ({marks})",
                batch,
            )
            posts.extend((int(r[0]), int(r[1])) for r in found)
            await tx.execute(f"DELETE FROM image_posts WHERE image_id IN ({marks})", batch)
        guilds: dict[int, int] = {}
        for sql in (
            "SELECT DISTINCT guild_id FROM wallets WHERE user_id = ? AND guild_id IS NOT NULL",
            "SELECT DISTINCT guild_id FROM jobs WHERE user_id = ? AND guild_id IS NOT NULL",
        ):
            for r in await tx.fetchall(sql, (user_id,)):
                guilds.setdefault(int(r[0]), 0)
        for image in images:
            if image.get("guild_id") is not None:
                gid = int(image["guild_id"])
                guilds[gid] = guilds.get(gid, 0) + 1

        anonymous = str(uuid.uuid4())
        now = utcnow_iso()
        await tx.execute(
            "INSERT INTO users (id, roles, language, created_at, updated_at) "
            "VALUES (?, '[\"USER\"]', 'en', ?, ?)",
            (anonymous, now, now),
        )
        moves = (
            # What they wrote to the members they paid is theirs: it goes with them.
            "UPDATE coin_transactions SET actor_id = ?, reason = NULL "
            "WHERE actor_id = ? AND kind = 'TRANSFER'",
            "UPDATE characters SET created_by = ? WHERE created_by = ?",
            "UPDATE wallets SET user_id = ? WHERE user_id = ?",
            "UPDATE coin_transactions SET user_id = ? WHERE user_id = ?",
            "UPDATE coin_transactions SET actor_id = ? WHERE actor_id = ?",
            # Kept for the ledger's refund-once guard; what was asked and made goes.
            "UPDATE jobs SET user_id = ?, request = '{}', result = '{}', error = NULL "
            "WHERE user_id = ?",
            "UPDATE generation_usage SET user_id = ? WHERE user_id = ?",
            "UPDATE moderation_actions SET target_user_id = ?, detail = '{}' "
            "WHERE target_user_id = ?",
            "UPDATE moderation_actions SET actor_id = ? WHERE actor_id = ?",
            "UPDATE guild_settings_changes SET actor_id = ? WHERE actor_id = ?",
            "UPDATE guild_blocklist SET actor_id = ? WHERE actor_id = ?",
        )
        for sql in moves:
            await tx.execute(sql, (anonymous, user_id))
        ledger_rows = int(
            await tx.fetchval(
                "SELECT COUNT(*) FROM coin_transactions WHERE user_id = ?", (anonymous,)
            )
        )
        for sql in (
            "DELETE FROM conversations WHERE user_id = ?",
            "DELETE FROM member_preferences WHERE user_id = ?",
            "DELETE FROM images WHERE user_id = ?",
            "DELETE FROM gallery_counts WHERE user_id = ?",
            "DELETE FROM api_tokens WHERE user_id = ?",
            "DELETE FROM member_blocks WHERE user_id = ?",
        ):
            await tx.execute(sql, (user_id,))
        if discord_id is not None:
            await tx.execute("DELETE FROM web_sessions WHERE discord_id = ?", (str(discord_id),))
        for gid, count in sorted(guilds.items()):
            await record_action(
                tx, guild_id=gid, actor_id=anonymous, action=ERASE_ACTION,
                target_user_id=anonymous, detail={"images": count},
            )  # fmt: skip
        # Whatever else names the member by foreign key (tables added later) cascades.
        await tx.execute("DELETE FROM users WHERE id = ?", (user_id,))
        return Erasure(anonymous, image_ids, keys, posts, sorted(guilds), ledger_rows)

    return await db.write(body)


async def images_older_than(
    db: Database, cutoff: str, *, guild_id: int | None, exclude_guilds: list[int], limit: int
) -> list[str]:
    """Ids of images created before `cutoff` (ISO text) in one server (`guild_id`), or in
    every server but `exclude_guilds` (and in no server) when `guild_id` is None."""
    if guild_id is not None:
        rows = await db.fetchall(
            "SELECT id FROM images WHERE guild_id = ? AND created_at < ? "
            "ORDER BY created_at LIMIT ?",
            (str(guild_id), cutoff, limit),
        )
    else:
        skip = ""
        params: list[Any] = [cutoff]
        if exclude_guilds:
            marks = ", ".join("?" * len(exclude_guilds))
            skip = f" AND (guild_id IS NULL OR guild_id NOT IN ({marks}))"
            params.extend(str(g) for g in exclude_guilds)
        rows = await db.fetchall(
            f"SELECT id FROM images WHERE created_at < ?{skip} ORDER BY created_at LIMIT ?",
            [*params, limit],
        )
    return [str(r[0]) for r in rows]


async def forget_posts(db: Database, image_ids: list[str]) -> None:
    """Drop the records of messages that showed these (deleted) images."""
    for start in range(0, len(image_ids), 500):
        batch = image_ids[start : start + 500]
        await db.execute(
            f"DELETE FROM image_posts WHERE image_id IN ({', '.join('?' * len(batch))})", batch
        )
