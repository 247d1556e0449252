"""Opaque keyset cursors: the (sort key, id) of the last row a page returned."""

from __future__ import annotations

import base64
import json

from storage.errors import InvalidCursor


def encode_cursor(sort_key: str | int, row_id: str) -> str:
    """Pack the last row's position into a URL- and custom_id-safe string."""
    raw = json.dumps([sort_key, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Longer than any cursor `encode_cursor` makes (an ISO time or a count, and a row id).
MAX_CURSOR_CHARS = 512


def _plain(text: str) -> bool:
    """Printable text only: no NUL (PostgreSQL's text can't hold one), no lone surrogate
    (not UTF-8 at all), no other control or format character; no row id or time has any."""
    return len(text) <= MAX_CURSOR_CHARS and text.isprintable()


def decode_cursor(cursor: str) -> tuple[str | int, str]:
    """Unpack a cursor from `encode_cursor`; anything else raises InvalidCursor (before it
    reaches a query)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("the page cursor is not valid")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidCursor("the page cursor is not valid") from error
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str | int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], str)
        or not _plain(value[1])
        or (isinstance(value[0], str) and not _plain(value[0]))
        or (isinstance(value[0], int) and not -(2**63) <= value[0] < 2**63)
    ):
        raise InvalidCursor("the page cursor is not valid")
    return value[0], value[1]
