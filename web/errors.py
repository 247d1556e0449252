"""Errors as HTTP answers: every API error is JSON `{"error": {"code", "message", "status"}}`.

`code` is stable: the service's message key with dots turned into underscores
(`image.too_large` -> `image_too_large`), or one of the HTTP-level codes below; `message` is the
catalogue's text in the caller's language (Accept-Language).
"""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web

from bot.i18n import t
from bot.services.errors import (
    BudgetReached,
    ImageNotFound,
    InvalidInput,
    NotAllowed,
    NotCancellable,
    NotEnoughCoins,
    QueueFull,
    ShuttingDown,
    TooManyJobs,
    TooSoon,
    Unauthenticated,
    Unavailable,
    UserFacingError,
)

# Input problems that are not 422 (the body can't be used at all, or isn't what we take).
_INPUT_STATUS: dict[str, int] = {
    "image.too_large": 413,
    "image.not_image": 415,
    "image.unsupported_format": 415,
    "image.animated": 415,
    "api.not_multipart": 415,
    "api.not_json": 415,
    "api.bad_json": 400,
    "api.bad_cursor": 400,
    "api.missing_field": 400,
    "api.unexpected_file": 400,
    "api.bad_form": 400,
    "gen.not_configured": 503,
}
# Seconds a client should wait before retrying, for limits without their own figure.
RETRY_JOBS = 10
RETRY_BUSY = 30


def code_of(key: str) -> str:
    """The stable code of a message key."""
    return key.replace(".", "_")


def status_of(error: UserFacingError) -> int:
    """The HTTP status for a service's refusal."""
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, NotEnoughCoins):
        return 402
    if isinstance(error, ImageNotFound):
        return 404
    if isinstance(error, NotAllowed):
        return 403
    if isinstance(error, NotCancellable):
        return 409
    if isinstance(error, TooSoon | TooManyJobs | BudgetReached):
        return 429
    if isinstance(error, QueueFull | ShuttingDown | Unavailable):
        return 503
    if isinstance(error, InvalidInput):
        return _INPUT_STATUS.get(error.key, 422)
    # Storage or the database unavailable ("reason.storage", "error.busy").
    return 503


def retry_after(error: UserFacingError) -> int | None:
    if isinstance(error, TooSoon):
        return max(1, math.ceil(error.retry_after))
    if isinstance(error, TooManyJobs):
        return RETRY_JOBS
    if isinstance(error, BudgetReached):
        return max(1, error.at - int(time.time()))  # until the cap resets
    if status_of(error) == 503:
        return RETRY_BUSY
    return None


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """The API's error answer."""
    body = {"error": {"code": code, "message": message, "status": status, **extra}}
    return web.json_response(body, status=status, headers=headers)


def service_error(error: UserFacingError, language: str) -> web.Response:
    """A service refusal as JSON, with Retry-After / WWW-Authenticate where they apply."""
    status = status_of(error)
    headers: dict[str, str] = {}
    wait = retry_after(error)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="nanobanana"'
    extra: dict[str, Any] = {}
    if isinstance(error, NotEnoughCoins):
        extra = {"balance": error.balance, "cost": error.cost}
    return json_error(
        status, code_of(error.key), t(language, error.key, **error.params), headers=headers,
        **extra,
    )  # fmt: skip
