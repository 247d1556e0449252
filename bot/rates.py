"""The per-member rate limits' table (what each action allows a minute) and the parser of
RATE_LIMITS and `/settings rate_limits`: configuration values, read by bot.config and by the
services that count (bot.services.ratelimits), so they sit below both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: What one member may do per minute, by action, unless RATE_LIMITS (the host) or a server's
#: `/settings` (stricter only) says otherwise. Every command and component belongs to one.
DEFAULT_RATES: Final[dict[str, int]] = {
    "generate": 10,  # every paid job: /generate, Reroll, Edit, /describe, the API's generate
    "upload": 5,  # /upload and the API's upload
    "gallery": 10,  # /gallery
    "page": 30,  # a gallery's Previous / Next
    "open": 10,  # opening one image (the gallery's menu, /gallery image:)
    "delete": 20,  # Delete buttons
    "coins": 10,  # /coins
    "other": 20,  # every other command: /daily, /help, /settings, /token, /grant...
}
ACTIONS: Final[tuple[str, ...]] = tuple(DEFAULT_RATES)


def parse_rates(value: Any, *, ceiling: Mapping[str, int] | None = None) -> dict[str, int]:
    """`action=N` pairs (per minute), comma- or space-separated (`generate=5, gallery=20`),
    or a mapping; each action must be one of ACTIONS and N a whole number from 1 to its
    `ceiling` (10,000 without one). Raises ValueError saying what is wrong."""
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        items = []
        for chunk in value.replace(",", " ").replace(";", " ").split():
            name, sep, count = chunk.partition("=")
            if not sep:
                raise ValueError(f"{chunk!r} is not action=number")
            items.append((name, count))
    else:
        raise ValueError("must be action=number pairs")
    rates: dict[str, int] = {}
    for raw_action, raw_amount in items:
        action = raw_action.strip().lower()
        if action not in DEFAULT_RATES:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        try:
            amount = int(raw_amount.strip())
        except ValueError:
            raise ValueError(f"{action}: {raw_amount.strip()!r} is not a whole number") from None
        high = ceiling[action] if ceiling is not None else 10_000
        if not 1 <= amount <= high:
            raise ValueError(f"{action} must be from 1 to {high} a minute")
        rates[action] = amount
    return rates
