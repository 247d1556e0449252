"""Objects the character library and style presets keep (under `characters/` and `styles/`).

Their rows name them (`characters.refs`, a JSON list of {"key", "mime_type"};
`style_presets.reference_keys`, a JSON list of keys). Backups copy them, `fsck` checks them and
a member's erasure deletes their own; the start-up storage sweep leaves these prefixes alone
(a library image is put before its row is written, with no intent recorded), and `fsck`
deletes an orphan there only after its grace period.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from storage.db import Database

#: Where library objects live in the store.
LIBRARY_PREFIXES = ("characters/", "styles/")

#: Each library row's id (prefixed with its kind) and the JSON naming its objects. Plain SQL
#: that SQLite and PostgreSQL both read, so a backup can run it on its snapshot too.
LIBRARY_SQL = (
    "SELECT 'character:' || id, refs FROM characters",
    "SELECT 'style:' || id, reference_keys FROM style_presets",
)


def keys_in(raw: Any) -> set[str]:
    """The object keys a `refs` or `reference_keys` value names (JSON text or decoded)."""
    value = json.loads(raw) if isinstance(raw, str) else raw
    keys: set[str] = set()
    for item in value if isinstance(value, list) else ():
        key = item.get("key") if isinstance(item, dict) else item
        if isinstance(key, str) and key:
            keys.add(key)
    return keys


def library_keys_of_rows(rows: Iterable[Any]) -> dict[str, set[str]]:
    """`LIBRARY_SQL` rows -> {"character:<id>" or "style:<id>": the keys it names}."""
    return {str(row[0]): keys_in(row[1]) for row in rows}


async def library_keys(db: Database) -> dict[str, set[str]]:
    """Every library row's objects, by prefixed row id."""
    found: dict[str, set[str]] = {}
    for sql in LIBRARY_SQL:
        found.update(library_keys_of_rows(await db.fetchall(sql)))
    return found
