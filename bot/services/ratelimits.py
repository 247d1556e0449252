"""Rate limits: per-member token buckets for every command and component (`MemberLimits`,
at the rates of `DEFAULT_RATES`, RATE_LIMITS and each server's settings), and a sliding window
per key for the HTTP API's tokens (`SlidingWindow`).

Each is shared by every surface its rule covers (Discord and the HTTP API), so that a member
can't get around a limit by switching between them. In memory: each process of the bot counts
its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

from bot.rates import ACTIONS, DEFAULT_RATES, parse_rates
from bot.services.errors import TooSoon

__all__ = ["ACTIONS", "DEFAULT_RATES", "MemberLimits", "SlidingWindow", "parse_rates"]

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


# Buckets idle long enough to be full again are dropped once this many are held.
_PRUNE_BUCKETS_AT = 50_000


class MemberLimits:
    """Token buckets per member and action: `rate` tokens a minute, holding at most `rate`
    (a minute's uses at once, then one every 60/rate seconds).

    Every attempt takes a token, refused ones too (a refused attempt costs the bot a reply
    as well): a member hammering a command stays refused, down to a debt of a minute's
    worth, instead of getting through each time a token trickles back. Counted per member across
    servers (joining more servers gives no more), at the rate of the server they act in; in
    memory, so each process counts its own. Checking is synchronous: it runs before anything
    else, and before any await."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        # (action, member) -> (tokens, when they were counted)
        self._buckets: dict[tuple[str, Hashable], tuple[float, float]] = {}
        #: Refusals by action, for logs and benchmarks.
        self.refused: dict[str, int] = {}

    def take(self, action: str, member: Hashable, rate: int, uses: int = 1) -> None:
        """Count one attempt of `uses` uses (a batch of images is one use each); raises
        TooSoon with the seconds until it would pass (a refused attempt takes one token)."""
        now = self.clock()
        per_token = 60.0 / max(1, rate)
        capacity = float(rate)
        key = (action, member)
        tokens, stamp = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - stamp) / per_token)
        allowed = tokens >= uses
        # A refused attempt takes a token too, down to a debt of one minute's worth.
        tokens = tokens - uses if allowed else max(-float(rate), tokens - 1.0)
        if len(self._buckets) >= _PRUNE_BUCKETS_AT and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens, now)
        if not allowed:
            self.refused[action] = self.refused.get(action, 0) + 1
            raise TooSoon((max(1, uses) - tokens) * per_token)

    def _prune(self, now: float) -> None:
        # A bucket idle for a minute is full whatever its rate: forgetting it changes nothing.
        for key in [k for k, (_, stamp) in self._buckets.items() if now - stamp >= 60.0]:
            del self._buckets[key]
