"""Retrying storage steps that may pass: a SQLite file locked by another process, a PostgreSQL
server restarting, a bucket that is briefly unreachable. Anything else (a bug, a missing
object, a refused transition) is raised at once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from storage.errors import DatabaseBusy
from storage.objects import InvalidKey, ObjectNotFound, StorageError

log = logging.getLogger("bot.services.generation")

T = TypeVar("T")

#: First wait between two tries, and the longest one.
FIRST_DELAY = 0.05
MAX_DELAY = 5.0

_random = random.Random()


def is_transient(error: BaseException) -> bool:
    """A storage failure that may pass: a locked, busy or unreachable database, an
    unreachable bucket."""
    if isinstance(error, ObjectNotFound | InvalidKey):
        return False
    return isinstance(error, DatabaseBusy | StorageError)


async def persist(what: str, operation: Callable[[], Awaitable[T]], budget: float) -> T:
    """Run `operation`, retrying transient failures with jittered exponential backoff (capped
    at `MAX_DELAY`) for `budget` seconds; then the last error is raised. `what` names the
    step in the (rate-limited) warnings."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + budget
    delay = FIRST_DELAY
    tries = 0
    while True:
        try:
            return await operation()
        except Exception as error:
            tries += 1
            if not is_transient(error) or loop.time() + delay > give_up_at:
                raise
            if tries == 1 or tries % 10 == 0:
                log.warning("%s failed (%s); retrying (try %d)", what, error, tries)
            await asyncio.sleep(delay * (0.5 + _random.random() / 2))
            delay = min(delay * 2, MAX_DELAY)
