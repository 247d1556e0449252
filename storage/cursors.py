"""Opaque keyset cursors: the (sort key, id) of the last row a page returned."""

from __future__ import annotations

import base64
import json

from storage.errors import InvalidCursor


def encode_cursor(sort_key: str | int, row_id: str) -> str:
    """Pack the last row's position into a URL- and custom_id-safe string."""
    raw = json.dumps([sort_key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str | int, str]:
    """Unpack a cursor from `encode_cursor`; anything else raises InvalidCursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("the page cursor is not valid") from error
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str | int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], str)
    ):
        raise InvalidCursor("the page cursor is not valid")
    return value[0], value[1]
