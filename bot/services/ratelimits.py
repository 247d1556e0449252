"""Per-key rate limits (a sliding window): at most `rate` hits in any `per` seconds.

One instance per rule, shared by every surface that rule covers (Discord and the HTTP API), so
that a member can't get around a limit by switching between them. In memory: each process of
the bot counts its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from bot.services.errors import TooSoon

# Keys whose last hit is older than the window are dropped once this many are held.
_PRUNE_AT = 10_000


class SlidingWindow:
    """`hit(key)` records a hit or raises TooSoon with the seconds until the next is allowed."""

    def __init__(
        self, rate: int, per: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("a rate limit allows at least one hit in a positive window")
        self.rate = rate
        self.per = per
        self.clock = clock
        self._hits: dict[Hashable, deque[float]] = {}

    def retry_after(self, key: Hashable) -> float:
        """Seconds until `key` may hit again (0: now)."""
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            return 0.0
        while hits and now - hits[0] >= self.per:
            hits.popleft()
        if len(hits) < self.rate:
            return 0.0
        return self.per - (now - hits[0])

    def hit(self, key: Hashable) -> None:
        """Count one hit for `key`, or raise TooSoon (counting nothing) when over the limit."""
        wait = self.retry_after(key)
        if wait > 0:
            raise TooSoon(wait)
        if len(self._hits) >= _PRUNE_AT:
            self._prune()
        self._hits.setdefault(key, deque()).append(self.clock())

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, hits in self._hits.items() if not hits or now - hits[-1] >= self.per]:
            del self._hits[key]
