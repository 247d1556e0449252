"""Checks on a restored deployment, shared by the backup tests and the storm's."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image as PILImage

from storage.db import Database
from storage.images import history_keys
from storage.objects import ObjectStore
from tests.storage.helpers import assert_ledger_consistent


async def assert_restored(db: Database, store: ObjectStore) -> dict[str, int]:
    """Every wallet's invariant holds, and every object a row names is readable (images and
    thumbnails decode); returns what was found (rows and objects checked)."""
    await assert_ledger_consistent(db)
    checked = 0
    rows = await db.fetchall("SELECT id, status, storage_key, thumbnail_key, metadata FROM images")
    for row in rows:
        metadata = json.loads(row["metadata"])
        keys = [row["storage_key"], row["thumbnail_key"], *(metadata.get("input_keys") or []),
                *history_keys(metadata.get("history"))]  # fmt: skip
        if row["status"] != "COMPLETED":
            continue
        for key in filter(None, keys):
            data = await store.get(str(key))
            with PILImage.open(io.BytesIO(data)) as picture:
                picture.verify()
            checked += 1
    return {"images": len(rows), "objects_checked": checked}


def flip_a_byte(path: Path) -> None:
    """Corrupt a file in place (same size: only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
