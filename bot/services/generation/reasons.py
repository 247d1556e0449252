"""Why an image job failed, in words a member reads (a message key), never a raw API code."""

from __future__ import annotations

from typing import Any

from bot.i18n import has_message
from bot.nanobanana import (
    AuthenticationFailed,
    ContentBlocked,
    InvalidRequest,
    NanobananaError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)


def failure_reason(error: NanobananaError) -> tuple[str, dict[str, Any]]:
    """A model error as a message key and params for the member."""
    if isinstance(error, ContentBlocked):
        if error.stage == "output" and error.reason in ("NO_IMAGE", "STOP"):
            return "reason.no_image", {}
        key = f"block.{error.stage}.{error.reason}"
        return (key if has_message(key) else f"block.{error.stage}.unknown"), {}
    if isinstance(error, QuotaExhausted):
        return ("reason.quota_daily" if error.kind == "daily" else "reason.quota_none"), {}
    if isinstance(error, RateLimited):
        return "reason.rate_limited", {}
    if isinstance(error, AuthenticationFailed):
        return "reason.auth", {}
    if isinstance(error, InvalidRequest):
        key = f"reason.request.{error.code}"
        if has_message(key):
            return key, {}
        return "reason.invalid", {"detail": error.user_message}
    if isinstance(error, ProviderUnavailable):
        return "reason.unavailable", {}
    return "reason.unavailable", {}
