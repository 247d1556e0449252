"""Reading request bodies within limits: multipart forms with image files, and JSON objects.
Problems become InvalidInput with the same message keys the commands use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from bot.services.errors import InvalidInput

MAX_FIELD_CHARS = 20_000
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


def too_large(name: str, size: int, limit: int) -> InvalidInput:
    return InvalidInput(
        "image.too_large", name=name, size_mb=f"{size / 1048576:.1f}",
        limit_mb=f"{limit / 1048576:.1f}",
    )  # fmt: skip


def check_length(request: web.Request, limit: int) -> None:
    """Refuse a body whose declared length is over `limit` before reading any of it."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large("the request", request.content_length, limit)


async def read_form(
    request: web.Request, *, file_fields: tuple[str, ...], max_file_bytes: int
) -> Form:
    """A multipart/form-data body: text fields, and the named file fields (each at most
    `max_file_bytes`, read in chunks so an oversized one is refused without holding it)."""
    if request.content_type != "multipart/form-data":
        raise InvalidInput("api.not_multipart")
    form = Form()
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.filename is not None:
                if part.name not in file_fields:
                    raise InvalidInput("api.unexpected_file", field=part.name[:50])
                name = part.filename[:200] or part.name
                form.files[part.name] = UploadedFile(
                    name, await _read_file(part, name, max_file_bytes)
                )
            else:
                text = await part.text()
                if len(text) > MAX_FIELD_CHARS:
                    raise InvalidInput(
                        "api.field_too_long", field=part.name[:50], limit=MAX_FIELD_CHARS
                    )
                form.fields[part.name] = text
    except (ValueError, AssertionError, UnicodeDecodeError, HttpProcessingError):
        # HttpProcessingError: a part's headers aiohttp refuses (InvalidHeader for a control
        # character in a name, BadHttpMessage...): the client's mistake, not ours.
        raise InvalidInput("api.bad_form") from None
    return form


async def _read_file(part: BodyPartReader, name: str, limit: int) -> bytes:
    data = bytearray()
    while True:
        chunk = await part.read_chunk(_CHUNK)
        if not chunk:
            return bytes(data)
        data.extend(chunk)
        if len(data) > limit:
            raise too_large(name, len(data), limit)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body (application/json)."""
    if request.content_type != "application/json":
        raise InvalidInput("api.not_json")
    try:
        value = json.loads(await request.read())
        # JSON may escape a lone surrogate ("\ud800"): a string that is no Unicode text, so
        # nothing could encode it later; refused here as the malformed input it is.
        json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError):
        # RecursionError: nesting deeper than the parser goes (`[[[[...`).
        raise InvalidInput("api.bad_json") from None
    if not isinstance(value, dict):
        raise InvalidInput("api.bad_json")
    return value


def text_field(
    values: dict[str, Any], name: str, *, required: bool = False, default: str | None = None
) -> str | None:
    """A string field of a JSON object or form; wrong types are 422, missing required 400."""
    value = values.get(name)
    if value is None:
        if required:
            raise InvalidInput("api.missing_field", field=name)
        return default
    if not isinstance(value, str):
        raise InvalidInput("api.not_text", field=name)
    return value
