"""Discord's rate limits for the fake: per-route buckets and the global limit, on a clock the
test can advance.

Discord does not publish per-route limits (clients must read the headers), so the defaults
are the commonly observed ones: 5 messages per 5 s per channel, 5 requests per 2 s per
interaction token, 50 requests per second per bot for the rest; plus the documented global
limit of 50 requests per second per bot, which interaction endpoints are not bound by.

Every answer under a bucket carries ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (epoch
seconds), ``-Reset-After`` (seconds) and ``-Bucket`` (an opaque hash shared by the routes of a
bucket); an exhausted bucket answers ``429 {"message": "You are being rate limited.",
"retry_after": s, "global": false}`` with ``Retry-After``, ``X-RateLimit-Scope: user`` and
``Via`` (discord.py treats a 429 without ``Via`` as a Cloudflare ban). The global limit answers
the same with ``"global": true`` and ``X-RateLimit-Global: true``, ``X-RateLimit-Scope:
global``.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GLOBAL_LIMIT = 50
GLOBAL_PERIOD = 1.0
# Routes that are not bound by the bot's global limit (they carry an interaction token).
_INTERACTION_ROUTE = re.compile(r"^/(interactions/[^/]+/[^/]+/callback|webhooks/[^/]+/[^/]+)")


class FakeClock:
    """Monotonic time that a test can move forward (``advance``) instead of sleeping.

    It runs with real time, so what discord.py sleeps through (``retry_after``) passes here
    too; ``advance`` jumps over deadlines such as Discord's 3 s and 15 min interaction ones.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        """Epoch seconds on the same clock (for ``X-RateLimit-Reset``)."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.offset += seconds


@dataclass(frozen=True)
class RateRule:
    """Requests matching ``method`` (or ``*``) and ``route`` (a spec path template, or a
    prefix ending in ``*``) share one bucket per value of their major parameters."""

    name: str
    method: str
    route: str
    limit: int
    period: float
    major: tuple[str, ...] = ()

    def matches(self, method: str, template: str) -> bool:
        if self.method not in ("*", method):
            return False
        if self.route.endswith("*"):
            return template.startswith(self.route[:-1])
        return template == self.route

    @property
    def bucket_hash(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()[:16]


DEFAULT_RULES = (
    RateRule("messages", "POST", "/channels/{channel_id}/messages", 5, 5.0, ("channel_id",)),
    RateRule(
        "message-edit", "PATCH", "/channels/{channel_id}/messages/{message_id}", 5, 5.0,
        ("channel_id",),
    ),
    RateRule(
        "message-delete", "DELETE", "/channels/{channel_id}/messages/{message_id}", 5, 5.0,
        ("channel_id",),
    ),
    RateRule(
        "interaction-webhook", "*", "/webhooks/{webhook_id}/{webhook_token}*", 5, 2.0,
        ("webhook_id", "webhook_token"),
    ),
)  # fmt: skip
# Every other route: its own bucket per method and path template, per major parameter.
DEFAULT_RULE = RateRule(
    "default", "*", "*", 50, 1.0,
    ("channel_id", "guild_id", "webhook_id", "webhook_token", "interaction_id",
     "interaction_token"),
)  # fmt: skip


@dataclass
class _Bucket:
    rule: RateRule
    remaining: int
    reset_at: float


@dataclass
class RateLimitHit:
    """One 429 the fake answered."""

    method: str
    path: str
    bucket: str
    retry_after: float
    is_global: bool


@dataclass
class Verdict:
    """The outcome for one request: headers to add, or a 429 to answer."""

    headers: dict[str, str] = field(default_factory=dict)
    limited: dict[str, Any] | None = None  # the 429 JSON body


class RateLimiter:
    """Buckets and the global window. ``enabled=False`` turns all of it off."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        rules: tuple[RateRule, ...] = DEFAULT_RULES,
        default: RateRule | None = DEFAULT_RULE,
        global_limit: int = GLOBAL_LIMIT,
        global_period: float = GLOBAL_PERIOD,
        enabled: bool = True,
    ) -> None:
        self.clock = clock
        self.rules = list(rules)
        self.default = default
        self.global_limit = global_limit
        self.global_period = global_period
        self.enabled = enabled
        self.hits: list[RateLimitHit] = []  # every 429 answered
        self.exhausted_answers = 0  # answers that said Remaining: 0
        self._buckets: dict[tuple[str, tuple[str, ...]], _Bucket] = {}
        self._forced: dict[tuple[str, tuple[str, ...]], float] = {}  # see exhaust()
        self._global_count = 0
        self._global_reset = 0.0

    def set_rule(
        self, method: str, route: str, limit: int, period: float, major: tuple[str, ...] = ()
    ) -> RateRule:
        """Add (in front) or replace the rule for ``method route``."""
        name = f"{method} {route}"
        rule = RateRule(name, method, route, limit, period, major)
        self.rules = [rule, *(r for r in self.rules if r.name != name)]
        return rule

    def rule_for(self, method: str, template: str) -> RateRule | None:
        for rule in self.rules:
            if rule.matches(method, template):
                return rule
        if self.default is None:
            return None
        d = self.default
        return RateRule(f"{method} {template}", method, template, d.limit, d.period, d.major)

    def _bucket(self, rule: RateRule, params: Mapping[str, str]) -> _Bucket:
        key = self._key(rule, params)
        now = self.clock.now()
        forced = self._forced.pop(key, None)
        if forced is not None:
            self._buckets[key] = _Bucket(rule, 0, now + forced)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = self._buckets[key] = _Bucket(rule, rule.limit, now + rule.period)
        return bucket

    def exhaust(
        self, method: str, template: str, params: Mapping[str, str], retry_after: float
    ) -> None:
        """The next request to this bucket finds it used up, as another process of the same
        bot would leave it: 429 with ``retry_after``, after which the bucket refills."""
        rule = self.rule_for(method, template)
        if rule is not None:
            self._forced[self._key(rule, params)] = retry_after

    def _key(self, rule: RateRule, params: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
        return (rule.name, tuple(params.get(p, "") for p in rule.major))

    def check(
        self, method: str, path: str, template: str, params: Mapping[str, str], bot_auth: bool
    ) -> Verdict:
        """Count one request; a 429 body in ``limited`` if it must be refused."""
        if not self.enabled:
            return Verdict()
        now = self.clock.now()
        if bot_auth and not _INTERACTION_ROUTE.match(path):
            if now >= self._global_reset:
                self._global_count, self._global_reset = 0, now + self.global_period
            if self._global_count >= self.global_limit:
                return self._refuse(method, path, "global", self._global_reset - now, True)
            self._global_count += 1
        rule = self.rule_for(method, template)
        if rule is None:
            return Verdict()
        bucket = self._bucket(rule, params)
        if bucket.remaining <= 0:
            verdict = self._refuse(method, path, rule.bucket_hash, bucket.reset_at - now, False)
            verdict.headers.update(self._headers(bucket, now))
            return verdict
        bucket.remaining -= 1
        if bucket.remaining == 0:
            self.exhausted_answers += 1
        return Verdict(headers=self._headers(bucket, now))

    def _headers(self, bucket: _Bucket, now: float) -> dict[str, str]:
        reset_after = max(0.0, bucket.reset_at - now)
        return {
            "X-RateLimit-Limit": str(bucket.rule.limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": f"{self.clock.wall() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket.rule.bucket_hash,
        }

    def _refuse(
        self, method: str, path: str, bucket: str, retry_after: float, is_global: bool
    ) -> Verdict:
        retry_after = round(max(retry_after, 0.001), 3)
        self.hits.append(RateLimitHit(method, path, bucket, retry_after, is_global))
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": "global" if is_global else "user",
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        return Verdict(headers=headers, limited=body)
