"""Errors that services raise for the user to read. Cogs turn them into localised messages.

Each carries a message key (see `bot.i18n`) and the numbers the message needs, so services stay
free of Discord and of language.
"""

from __future__ import annotations

from typing import Any


class UserFacingError(Exception):
    """A failure the user caused or can fix; `key` names the message, `params` fill it in."""

    key = "error.generic"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        super().__init__(f"{self.key} {params}" if params else self.key)


class InvalidInput(UserFacingError):
    """A bad option: empty prompt, not an image, too large, unsupported ratio..."""

    key = "error.invalid"


class NotEnoughCoins(UserFacingError):
    key = "error.coins"

    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(balance=balance, cost=cost)
        self.balance = balance
        self.cost = cost


class TooManyJobs(UserFacingError):
    key = "error.too_many_jobs"


class QueueFull(UserFacingError):
    key = "error.queue_full"


class NotAllowed(UserFacingError):
    key = "error.not_allowed"


class ImageNotFound(UserFacingError):
    key = "error.image_not_found"


class JobNotFound(ImageNotFound):
    """A job that is not the caller's, or never was (personal access says "not found")."""

    key = "error.job_not_found"


class NotCancellable(UserFacingError):
    """A cancel of a job no longer waiting: a worker started it (it may be calling the API:
    `cancel.started`, nothing refunded) or it ended already (`cancel.finished`)."""

    key = "cancel.started"


class ConversationNotFound(ImageNotFound):
    """A conversation that is not the caller's to see, or never was (issue 22)."""

    key = "conv.not_found"


class ShuttingDown(UserFacingError):
    key = "error.shutting_down"


class TooSoon(UserFacingError):
    """A per-member rate limit (e.g. uploads a minute); `retry_after` is in seconds."""

    key = "error.cooldown"

    def __init__(self, retry_after: float) -> None:
        super().__init__(seconds=f"{max(1, round(retry_after))}")
        self.retry_after = retry_after


class ImagesBusy(UserFacingError):
    """The image pool has no room (see bot.services.imagework): nothing was charged."""

    key = "error.images_busy"


class Unauthenticated(UserFacingError):
    """No usable credentials: a missing, malformed, unknown or revoked API token, or a member
    who is no longer in the token's server."""

    key = "api.unauthenticated"


class Unavailable(UserFacingError):
    """A service the request needs (Discord, to check membership) can't be reached now."""

    key = "api.unavailable"


class BudgetReached(UserFacingError):
    """A cap on what images cost the host is reached; `at` (epoch seconds) is its reset."""

    key = "budget.global_month"

    def __init__(self, key: str, *, at: int, **params: Any) -> None:
        super().__init__(key, at=at, **params)
        self.at = at
