"""Waiting in tests for a condition, never for a guessed length of time.

Prefer an event (`FakeNanobanana.received`, `FakeDiscord.wait_for`, a listener's `done()`).
`until` is for conditions no event signals (a counter of another task, a database row): it
checks often, and fails with `what` after a generous `timeout`, however slow the machine."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str = "", timeout: float = 20
) -> None:
    """Return once `condition()` (a function or a coroutine function) is true."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > give_up:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)
