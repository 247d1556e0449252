"""ImageRepository: the seed's image API, keyset-paginated. Images are what jobs made: an image
job's rows are written, COMPLETED, in the transaction that completes the job
(`complete_with_extras`); an upload's row with its charge (`create_upload`). The money of jobs
lives in storage/jobs.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage import jobs, ledger
from storage.cursors import decode_cursor, encode_cursor
from storage.db import Database, Transaction
from storage.errors import (
    InvalidCursor,
    InvalidTransition,
    NotFound,
    ObjectsReclaimed,
)
from storage.intents import clear_intents
from storage.jobs import JobStatus
from storage.library import library_keys
from storage.models import (
    Image,
    ImageStatus,
    ImageType,
    Page,
    TransactionKind,
    UserStats,
)
from storage.timeutil import utcnow_iso

_IMAGE_COLUMNS = (
    "id, user_id, type, status, title, description, prompt, storage_key, storage_url, "
    "thumbnail_key, thumbnail_url, metadata, coins_used, created_at, updated_at, guild_id, "
    "wallet_id"
)
_UPDATABLE = frozenset(
    {
        "title",
        "description",
        "storage_key",
        "storage_url",
        "thumbnail_key",
        "thumbnail_url",
        "metadata",
    }
)
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class StoredObject:
    """Where an image's bytes (and thumbnail) live, to record on completion or upload."""

    storage_key: str
    storage_url: str | None
    thumbnail_key: str | None
    thumbnail_url: str | None


class ImageRepository:
    """Images: what image jobs made (COMPLETED rows) and what members uploaded."""

    def __init__(self, db: Database, *, max_balance: int = ledger.INT64_MAX) -> None:
        self.db = db
        #: Refunds never take a balance past this (see `fail_and_refund`).
        self.max_balance = max_balance

    # CRUD --------------------------------------------------------------------------------

    async def create(
        self,
        *,
        user_id: str,
        type: ImageType,
        status: ImageStatus = ImageStatus.PENDING,
        title: str | None = None,
        description: str | None = None,
        prompt: str | None = None,
        stored: StoredObject | None = None,
        metadata: dict[str, Any] | None = None,
        coins_used: int = 0,
        guild_id: int | None = None,
    ) -> Image:
        """Insert an image row (no coins move: see reserve_generation / create_upload)."""

        async def insert(tx: Transaction) -> Image:
            return await _fetch(tx, await _insert(
                tx, user_id=user_id, type=type, status=status, title=title,
                description=description, prompt=prompt, stored=stored, metadata=metadata,
                coins_used=coins_used, guild_id=guild_id,
            ))  # fmt: skip

        return await self.db.write(insert)

    async def get(self, image_id: str) -> Image | None:
        row = await self.db.fetchone(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,)
        )
        return Image.from_row(row) if row is not None else None

    async def find_by_prefix(self, prefix: str, *, limit: int = 2) -> list[Image]:
        """Images whose id starts with `prefix` (lowercase hex and dashes), by primary key
        range: enough rows to tell a unique match from an ambiguous one."""
        if not prefix or any(c not in "0123456789abcdef-" for c in prefix):
            return []
        # Every id with this prefix sorts between the prefix and the prefix plus "~" (which
        # sorts after every character an id holds).
        rows = await self.db.fetchall(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
            (prefix, prefix + "~", limit),
        )
        return [Image.from_row(r) for r in rows]

    async def update(self, image_id: str, **fields: Any) -> Image:
        """Change descriptive or storage fields; status changes go through update_status."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))} with update()")
        if "metadata" in fields:
            fields["metadata"] = _json(fields["metadata"])
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            changed = await self.db.execute(
                f"UPDATE images SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), utcnow_iso(), image_id),
            )
            if changed == 0:
                raise NotFound(f"image {image_id} does not exist")
        return await self._require(image_id)

    async def delete(self, image_id: str) -> Image | None:
        """Delete the row (ledger rows keep their history, with image_id set to NULL) and
        its place in the gallery counters, in one transaction. Returns the row as it was
        deleted (its object keys are the ones to remove, whatever a caller read earlier:
        a job may have completed meanwhile), or None if there was none."""

        async def remove(tx: Transaction) -> Image | None:
            row = await tx.fetchone(
                f"DELETE FROM images WHERE id = ? RETURNING {_IMAGE_COLUMNS}", (image_id,)
            )
            if row is None:
                return None
            image = Image.from_row(row)
            if image.status is ImageStatus.COMPLETED:
                await _count(tx, image.user_id, image.guild_id, image.type.value, -1)
            return image

        return await self.db.write(remove)

    # Listings ----------------------------------------------------------------------------

    async def list_by_user(
        self,
        user_id: str,
        type: ImageType | None = None,
        *,
        limit: int = 9,
        cursor: str | None = None,
        status: ImageStatus | None = ImageStatus.COMPLETED,
        guild_id: int | None = None,
    ) -> Page[Image]:
        """A user's images newest first, by keyset on (created_at, id): no OFFSET, so pages
        never repeat or skip rows while new images arrive. Completed images only by default
        (pass status=None for all); only those of one server with `guild_id`."""
        where, params = _member_filter(user_id, guild_id=guild_id, type=type)
        return await self._page(where, params, limit=limit, cursor=cursor, status=status)

    async def list_generated_by_user(
        self, user_id: str, *, limit: int = 9, cursor: str | None = None
    ) -> Page[Image]:
        return await self.list_by_user(user_id, ImageType.GENERATED, limit=limit, cursor=cursor)

    async def list_uploaded_by_user(
        self, user_id: str, *, limit: int = 9, cursor: str | None = None
    ) -> Page[Image]:
        return await self.list_by_user(user_id, ImageType.UPLOADED, limit=limit, cursor=cursor)

    async def list_all(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        status: ImageStatus | None = None,
    ) -> Page[Image]:
        """Every user's images newest first (admin views and maintenance)."""
        return await self._page([], [], limit=limit, cursor=cursor, status=status)

    async def count_by_user(
        self,
        user_id: str,
        type: ImageType | None = None,
        status: ImageStatus | None = ImageStatus.COMPLETED,
        *,
        guild_id: int | None = None,
    ) -> int:
        """How many images `list_by_user` would page through with the same filters. Finished
        images are read from the gallery counters (one or a few rows, however many images);
        other statuses are counted."""
        counted = status is ImageStatus.COMPLETED
        where, params = _member_filter(
            user_id, guild_id=guild_id, type=type, status=None if counted else status
        )
        if counted:
            total = await self.db.fetchval(
                f"SELECT COALESCE(SUM(count), 0) FROM gallery_counts WHERE {' AND '.join(where)}",
                params,
            )
            return int(total)
        sql = f"SELECT COUNT(*) FROM images WHERE {' AND '.join(where)}"
        return int(await self.db.fetchval(sql, params))

    async def _page(
        self,
        where: list[str],
        params: list[Any],
        *,
        limit: int,
        cursor: str | None,
        status: ImageStatus | None,
    ) -> Page[Image]:
        limit = max(1, min(limit, MAX_PAGE_SIZE))
        where, params = list(where), list(params)
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            if not isinstance(created_at, str):
                raise InvalidCursor("the page cursor is not valid")
            # Row-value comparison walks the (created_at DESC, id DESC) index directly.
            where.append("(created_at, id) < (?, ?)")
            params += [created_at, last_id]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self.db.fetchall(
            f"SELECT {_IMAGE_COLUMNS} FROM images {clause} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit + 1),
        )
        items = [Image.from_row(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(last["created_at"], last["id"])
        return Page(items, next_cursor)

    # Status ------------------------------------------------------------------------------

    async def complete(self, job_id: str, stored: StoredObject, metadata: dict[str, Any]) -> Image:
        """The image job `job_id` made one image: its row, COMPLETED with the job."""
        image, _ = await self.complete_with_extras(job_id, stored, metadata)
        return image

    async def complete_with_extras(
        self,
        job_id: str,
        stored: StoredObject,
        metadata: dict[str, Any],
        extras: Sequence[tuple[StoredObject, dict[str, Any]]] = (),
        *,
        owner: str | None = None,
        intents: Sequence[str] = (),
        extra_ids: Sequence[str] = (),
        title: str | None = None,
    ) -> tuple[Image, list[Image]]:
        """What an image job made, in one transaction with the job's completion
        (PROCESSING -> COMPLETED): its first image as a row with the job's id, prompt, server,
        wallet and cost, plus one row per further image of the same answer (`coins_used` 0,
        `metadata.extra_of` = the job); the gallery counters move with them. Returns the rows.
        `extra_ids` are the ids the extras get (new ones when not given): the member may have
        been shown them already.

        `intents` (the objects the job wrote, recorded by process `owner`) are cleared in the
        same transaction; if a sweep took them meanwhile (the objects may be deleted), nothing
        is written and ObjectsReclaimed is raised. A job that ended otherwise meanwhile
        (failed and refunded) raises InvalidTransition, and nothing is written.

        Idempotent: called again after it committed (same image object), it returns the same
        rows and changes nothing, so a retry after an unanswered COMMIT never looks like a
        failure (whose clean-up would delete the objects of a row that did commit)."""

        async def finish(tx: Transaction) -> tuple[Image, list[Image]]:
            existing = await tx.fetchone("SELECT storage_key FROM images WHERE id = ?", (job_id,))
            if existing is not None:
                if existing[0] == stored.storage_key:
                    # This very completion committed already (a retry after a COMMIT whose
                    # answer was lost with the connection): the same result, nothing twice.
                    return await _fetch(tx, job_id), await _extras_of(tx, job_id)
                raise InvalidTransition(job_id, "COMPLETED", ImageStatus.COMPLETED.value)
            job = await tx.fetchone(
                f"SELECT user_id, guild_id, wallet_id, cost, request, status FROM jobs "
                f"WHERE id = ?{tx.dialect.for_update}",
                (job_id,),
            )
            if job is None:
                raise NotFound(f"job {job_id} does not exist")
            if job["status"] != JobStatus.PROCESSING.value:
                raise InvalidTransition(job_id, str(job["status"]), ImageStatus.COMPLETED.value)
            await _clear_own_intents(tx, owner, intents)
            request = jobs.json_object(job["request"])
            prompt = request.get("prompt")
            guild = int(job["guild_id"]) if job["guild_id"] is not None else None
            common = dict(
                user_id=str(job["user_id"]), type=ImageType.GENERATED,
                status=ImageStatus.COMPLETED, title=title,
                prompt=prompt if isinstance(prompt, str) else None, guild_id=guild,
                wallet_id=job["wallet_id"],
            )  # fmt: skip
            await _insert(
                tx,
                **common,
                stored=stored,
                metadata=metadata,
                coins_used=int(job["cost"]),
                image_id=job_id,
            )
            rows = []
            for index, (extra_stored, extra_metadata) in enumerate(extras):
                extra_id = await _insert(
                    tx,
                    **common,
                    stored=extra_stored,
                    metadata={**extra_metadata, "extra_of": job_id},
                    image_id=extra_ids[index] if index < len(extra_ids) else None,
                )
                rows.append(await _fetch(tx, extra_id))
            await jobs.complete(tx, job_id, {"image_ids": [job_id, *(row.id for row in rows)]})
            return await _fetch(tx, job_id), rows

        return await self.db.write(finish)

    async def create_upload(
        self,
        *,
        user_id: str,
        wallet_id: str,
        cost: int,
        stored: StoredObject,
        metadata: dict[str, Any],
        guild_id: int | None = None,
        title: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        intents: Sequence[str] = (),
    ) -> tuple[Image, int]:
        """Debit the wallet (if the upload costs) and a COMPLETED upload row in one
        transaction; returns (image, balance). Clears the object `intents` of process `owner`
        in it (ObjectsReclaimed, nothing written, if a sweep took them meanwhile)."""

        async def insert(tx: Transaction) -> tuple[Image, int]:
            await _check_owner(tx, wallet_id, user_id)
            await _clear_own_intents(tx, owner, intents)
            balance = await ledger.balance(tx, wallet_id)
            image_id = await _insert(
                tx, user_id=user_id, type=ImageType.UPLOADED, status=ImageStatus.COMPLETED,
                title=title, description=description, stored=stored, metadata=metadata,
                coins_used=cost, guild_id=guild_id, wallet_id=wallet_id,
            )  # fmt: skip
            if cost:
                balance = await ledger.debit(
                    tx, wallet_id, cost, kind=TransactionKind.UPLOAD, image_id=image_id,
                    reason="upload",
                )  # fmt: skip
            return await _fetch(tx, image_id), balance

        return await self.db.write(insert)

    # Reconciliation --------------------------------------------------------------------

    async def referenced_keys(self) -> set[str]:
        """Every object key any row points to: image, thumbnail and stored inputs, and the
        character library's and style presets' images (storage.library)."""
        dialect = self.db.dialect
        rows = await self.db.fetchall(
            f"SELECT storage_key, thumbnail_key, {dialect.json_text('metadata', 'input_keys')} "
            f"AS inputs, {dialect.json_text('metadata', 'history')} AS history FROM images"
        )
        keys: set[str] = set()
        for row in rows:
            keys.update(k for k in (row["storage_key"], row["thumbnail_key"]) if k)
            if row["inputs"]:
                keys.update(str(k) for k in json.loads(row["inputs"]))
            if row["history"]:
                keys.update(history_keys(json.loads(row["history"])))
        for named in (await library_keys(self.db)).values():
            keys.update(named)
        return keys

    async def completed_keys(self) -> set[str]:
        """Image object keys of COMPLETED rows (each of these must exist in storage)."""
        rows = await self.db.fetchall(
            "SELECT storage_key FROM images WHERE status = 'COMPLETED' AND storage_key IS NOT NULL"
        )
        return {str(row[0]) for row in rows}

    # Statistics --------------------------------------------------------------------------

    async def user_stats(
        self, user_id: str, *, guild_id: int | None = None, wallet_id: str | None = None
    ) -> UserStats:
        """Counts by type and status, coins spent net of refunds, and the newest image; of one
        server with `guild_id`, and the coins of one wallet with `wallet_id`."""
        where, params = "user_id = ?", [user_id]
        if guild_id is not None:
            where, params = "user_id = ? AND guild_id = ?", [user_id, str(guild_id)]
        rows = await self.db.fetchall(
            f"SELECT type, status, COUNT(*) AS n FROM images WHERE {where} GROUP BY 1, 2",
            params,
        )
        by_status: dict[ImageStatus, int] = {}
        by_type: dict[ImageType, int] = {}
        for row in rows:
            status, image_type, n = ImageStatus(row["status"]), ImageType(row["type"]), row["n"]
            by_status[status] = by_status.get(status, 0) + n
            if status is ImageStatus.COMPLETED:
                by_type[image_type] = by_type.get(image_type, 0) + n
        owner_column, owner = ("wallet_id", wallet_id) if wallet_id else ("user_id", user_id)
        spent = await self.db.fetchval(
            f"SELECT COALESCE(-SUM(delta), 0) FROM coin_transactions WHERE {owner_column} = ? "
            "AND kind IN ('GENERATION', 'UPLOAD', 'REFUND')",
            (owner,),
        )
        newest = await self.list_by_user(user_id, limit=1, guild_id=guild_id)
        return UserStats(
            total_images=sum(by_type.values()),
            generated=by_type.get(ImageType.GENERATED, 0),
            uploaded=by_type.get(ImageType.UPLOADED, 0),
            by_status=by_status,
            coins_spent=int(spent),
            newest_image=newest.items[0] if newest.items else None,
        )

    async def _require(self, image_id: str) -> Image:
        image = await self.get(image_id)
        if image is None:
            raise NotFound(f"image {image_id} does not exist")
        return image


def history_keys(history: Any) -> list[str]:
    """Object keys of the images in a job's stored earlier turns (`metadata.history`)."""
    keys = []
    for turn in history if isinstance(history, list) else []:
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for part in parts if isinstance(parts, list) else []:
            key = part.get("key") if isinstance(part, dict) else None
            if isinstance(key, str) and key:
                keys.append(key)
    return keys


async def _fetch(tx: Transaction, image_id: str) -> Image:
    """The image as the current transaction sees it (read-your-writes)."""
    row = await tx.fetchone(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
    if row is None:
        raise NotFound(f"image {image_id} does not exist")
    return Image.from_row(row)


def _member_filter(
    user_id: str,
    *,
    guild_id: int | None = None,
    type: ImageType | None = None,
    status: ImageStatus | None = None,
) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters for a member's images (or their gallery counters, which
    have the same `user_id`, `guild_id` and `type` columns)."""
    where, params = ["user_id = ?"], [user_id]
    for column, value in (
        ("guild_id", None if guild_id is None else str(guild_id)),
        ("type", type.value if type else None),
        ("status", status.value if status else None),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


async def _extras_of(tx: Transaction, image_id: str) -> list[Image]:
    """The further images of a job's answer, in their order."""
    extra_of = tx.dialect.json_text("metadata", "extra_of")
    rows = await tx.fetchall(
        f"SELECT {_IMAGE_COLUMNS} FROM images WHERE user_id = "
        f"(SELECT user_id FROM images WHERE id = ?) AND {extra_of} = ?",
        (image_id, json.dumps(image_id)),
    )
    extras = [Image.from_row(row) for row in rows]
    return sorted(extras, key=lambda image: int(image.metadata.get("index", 0)))


async def _clear_own_intents(tx: Transaction, owner: str | None, intents: Sequence[str]) -> None:
    """Clear this process's object intents; refuse the write if a sweep took any."""
    if owner is None or not intents:
        return
    if await clear_intents(tx, owner, intents) != len(set(intents)):
        raise ObjectsReclaimed(
            "this process's lease lapsed and another process reclaimed its objects"
        )


async def _check_owner(tx: Transaction, wallet_id: str, user_id: str) -> None:
    """A member pays only from their own wallet."""
    if await ledger.owner(tx, wallet_id) != user_id:
        raise NotFound(f"wallet {wallet_id} is not user {user_id}'s")


def _json(value: Any) -> str:
    return json.dumps(value or {}, separators=(",", ":"))


async def _insert(
    tx: Transaction,
    *,
    user_id: str,
    type: ImageType,
    status: ImageStatus,
    title: str | None = None,
    description: str | None = None,
    prompt: str | None = None,
    stored: StoredObject | None = None,
    metadata: dict[str, Any] | None = None,
    coins_used: int = 0,
    guild_id: int | None = None,
    wallet_id: str | None = None,
    lease_owner: str | None = None,
    image_id: str | None = None,
) -> str:
    image_id = image_id or str(uuid.uuid4())
    now = utcnow_iso()
    await tx.execute(
        f"INSERT INTO images ({_IMAGE_COLUMNS}, lease_owner) VALUES ({', '.join('?' * 18)})",
        (
            image_id,
            user_id,
            type.value,
            status.value,
            title,
            description,
            prompt,
            stored.storage_key if stored else None,
            stored.storage_url if stored else None,
            stored.thumbnail_key if stored else None,
            stored.thumbnail_url if stored else None,
            _json(metadata),
            coins_used,
            now,
            now,
            str(guild_id) if guild_id is not None else None,
            wallet_id,
            lease_owner,
        ),
    )
    if status is ImageStatus.COMPLETED:
        await _count(tx, user_id, guild_id, type.value, 1)
    return image_id


async def _count(tx: Transaction, user_id: str, guild_id: Any, image_type: str, delta: int) -> None:
    """Move a member's gallery counter (0006_gallery_counters) by `delta`, in the caller's
    transaction: every change that adds or removes a COMPLETED image calls this."""
    key = (user_id, "" if guild_id is None else str(guild_id), image_type)
    if delta < 0:
        # The row exists: it counts the image being removed (and CHECK keeps it >= 0).
        await tx.execute(
            "UPDATE gallery_counts SET count = count + ? WHERE user_id = ? AND guild_id = ? "
            "AND type = ?",
            (delta, *key),
        )
        return
    await tx.execute(
        "INSERT INTO gallery_counts (user_id, guild_id, type, count) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user_id, guild_id, type) DO UPDATE "
        "SET count = gallery_counts.count + excluded.count",
        (*key, delta),
    )
