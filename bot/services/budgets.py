"""Budgets: what the host lets Google bill, per deployment and per server, enforced before any
coin moves; the real cost of each answer; notices at 80% and 100%; and the /usage report.

Caps (all optional):
- `MONTHLY_BUDGET_USD`: the whole deployment, per calendar month (UTC);
- a server's `monthly_budget_usd` (per calendar month) and `daily_image_cap` (per UTC day),
  set with /settings.

A job is admitted when what the period holds (billed cost of answered jobs plus the estimates
of jobs in flight) plus its own estimate stays within every cap; the check runs in the database,
in the transaction that debits the member (`storage.usage.claim`), so concurrent requests,
restarts and several bot processes can't overshoot; only the difference between a running
job's estimate and its real cost can. Periods come from an injectable clock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.services.errors import BudgetReached
from bot.services.events import EventBus
from bot.services.pricing import PriceTable, UsageCounts
from storage.timeutil import to_iso, utcnow
from storage.usage import (
    Billed,
    BudgetClaim,
    BudgetExceeded,
    Cap,
    CapKind,
    Group,
    Level,
    Totals,
    UsageRepository,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CHART_DAYS = 30


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def next_day(moment: datetime) -> datetime:
    start = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=1)


def next_month(moment: datetime) -> datetime:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=32)).replace(day=1)


def previous_month(moment: datetime) -> str:
    first = moment.astimezone(UTC).replace(day=1)
    return month_of(first - timedelta(days=1))


@dataclass(frozen=True)
class ServerCaps:
    """A server's own caps (None: no cap)."""

    daily_images: int | None = None
    monthly_micros: int | None = None


@dataclass(frozen=True)
class BudgetNotice:
    """A cap reached `threshold`% (80 or 100) of its limit: tell the server's moderators, or
    for the deployment's cap the bot admins."""

    cap: Cap
    used: int
    threshold: int
    resets_at: datetime


@dataclass(frozen=True)
class BudgetLeft:
    cap: Cap
    used: int
    resets_at: datetime

    @property
    def left(self) -> int:
        return max(0, self.cap.limit - self.used)


@dataclass(frozen=True)
class UsageReport:
    """What /usage shows for one server (`guild_id`) or all of them (None)."""

    guild_id: int | None
    today: Totals
    this_month: Totals
    last_month: Totals
    by_model: list[Group]
    top_members: list[Group]
    by_server: list[Group]
    daily: list[Group]  # one entry per day of the last CHART_DAYS days, oldest first
    budgets: list[BudgetLeft]
    generated_at: datetime


class BudgetService:
    """Admission, billing and reporting of what generations cost the host."""

    def __init__(
        self,
        usage: UsageRepository,
        prices: PriceTable,
        *,
        monthly_budget_micros: int | None = None,
        clock: Clock = utcnow,
        events: EventBus | None = None,
    ) -> None:
        self.usage = usage
        self.prices = prices
        self.monthly_budget_micros = monthly_budget_micros
        self.clock = clock
        #: Where 80%/100% `BudgetNotice`s go (the Discord adapter delivers them).
        self.events = events or EventBus()
        #: µUSD billed by this process since it started, by model (for /metrics).
        self.billed_micros: Counter[str] = Counter()

    # Admission ---------------------------------------------------------------------------

    def caps(self, guild_id: int | None, server: ServerCaps, now: datetime) -> tuple[Cap, ...]:
        caps: list[Cap] = []
        if self.monthly_budget_micros is not None:
            caps.append(Cap(CapKind.USD_PER_MONTH, self.monthly_budget_micros, month_of(now)))
        if guild_id is not None:
            if server.monthly_micros is not None:
                caps.append(
                    Cap(CapKind.USD_PER_MONTH, server.monthly_micros, month_of(now), guild_id)
                )
            if server.daily_images is not None:
                caps.append(Cap(CapKind.IMAGES_PER_DAY, server.daily_images, day_of(now), guild_id))
        return tuple(caps)

    def claim(
        self,
        guild_id: int | None,
        server: ServerCaps,
        *,
        model: str,
        size: str | None,
        prompt_chars: int,
        input_images: int,
        grounded: bool = False,
    ) -> BudgetClaim:
        """What a reservation asks the database to admit (every job gets a usage row, capped
        or not, so /usage sees it); a grounded job reserves for its searches too."""
        now = self.clock()
        estimate = self.prices.estimate(
            model, size, prompt_chars=prompt_chars, input_images=input_images, grounded=grounded
        )
        return BudgetClaim(
            guild_id=guild_id, model=model, image_size=size, estimate_micros=estimate,
            day=day_of(now), month=month_of(now), now=to_iso(now),
            caps=self.caps(guild_id, server, now),
        )  # fmt: skip

    def resets_at(self, cap: Cap) -> datetime:
        now = self.clock()
        return next_day(now) if cap.kind is CapKind.IMAGES_PER_DAY else next_month(now)

    def refusal(self, error: BudgetExceeded) -> BudgetReached:
        """The member's message: which cap, and when it resets (never how much is left)."""
        cap = error.cap
        at = int(self.resets_at(cap).timestamp())
        if cap.guild_id is None:
            return BudgetReached("budget.global_month", at=at)
        if cap.kind is CapKind.IMAGES_PER_DAY:
            return BudgetReached("budget.server_day", at=at, limit=cap.limit)
        return BudgetReached("budget.server_month", at=at)

    async def exhausted(self, error: BudgetExceeded) -> None:
        """A request was refused by a cap: the 100% notice, once per period."""
        try:
            if await self.usage.record_notice(error.cap, 100):
                await self._notify(
                    BudgetNotice(error.cap, error.used, 100, self.resets_at(error.cap))
                )
        except Exception:
            log.exception("could not record or send a budget notice")

    async def announce(self, due: Sequence[tuple[Level, int]]) -> None:
        """Send the notices a reservation made due (already recorded as sent)."""
        for level, threshold in due:
            await self._notify(
                BudgetNotice(level.cap, level.used, threshold, self.resets_at(level.cap))
            )

    async def _notify(self, notice: BudgetNotice) -> None:
        log.warning(
            "budget %s %s reached %d%% (%d of %d)", notice.cap.scope, notice.cap.kind.value,
            notice.threshold, notice.used, notice.cap.limit,
        )  # fmt: skip
        await self.events.publish(notice)

    # Billing -----------------------------------------------------------------------------

    async def keep_images(self, job_id: str, images: int, daily_cap: int | None) -> int:
        """How many of an answer's `images` a job may keep under its server's daily image cap
        (at least the one its reservation counted): the cap is never passed in stored images,
        so further images beyond it are dropped, not stored. Without a cap: all of them."""
        if daily_cap is None or images <= 1:
            return images
        return 1 + await self.usage.take_extra_images(job_id, images - 1, daily_cap)

    async def bill(
        self,
        job_id: str,
        model: str,
        size: str | None,
        usage: dict[str, int],
        images: int,
        *,
        kept: int | None = None,
        searches: int = 0,
    ) -> int:
        """Record what an answer of `images` images cost (from its usageMetadata; Google bills
        every image it made, and each search query of a grounded answer) and how many of
        them were `kept` (stored: what the image caps and /usage count; all by default);
        returns µUSD."""
        counts = UsageCounts.from_usage(usage)
        cost = self.prices.cost(model, size, counts, images=images)
        cost += self.prices.search_micros(model, searches)
        counts = counts or UsageCounts()
        stored = images if kept is None else kept
        if await self.usage.bill(
            job_id,
            Billed(cost, stored, counts.prompt, counts.output, counts.image, counts.thoughts),
        ):
            self.billed_micros[model] += cost
        return cost

    # Reporting ---------------------------------------------------------------------------

    async def report(self, guild_id: int | None, server: ServerCaps | None = None) -> UsageReport:
        """Figures for /usage: one server, or every server with `guild_id` None."""
        now = self.clock()
        month, last = month_of(now), previous_month(now)
        first_day = now.astimezone(UTC) - timedelta(days=CHART_DAYS - 1)
        by_day = {g.key[0]: g for g in await self.usage.daily(guild_id, day_of(first_day))}
        daily = []
        for offset in range(CHART_DAYS):
            day = day_of(first_day + timedelta(days=offset))
            daily.append(by_day.get(day, Group((day,), 0, 0)))
        budgets = []
        for cap in self.caps(guild_id, server or ServerCaps(), now):
            budgets.append(BudgetLeft(cap, await self.usage.level(cap), self.resets_at(cap)))
        return UsageReport(
            guild_id=guild_id,
            today=await self.usage.totals(guild_id, "day", day_of(now)),
            this_month=await self.usage.totals(guild_id, "month", month),
            last_month=await self.usage.totals(guild_id, "month", last),
            by_model=await self.usage.breakdown(guild_id, month, "model"),
            top_members=await self.usage.breakdown(guild_id, month, "user", limit=5),
            by_server=(
                await self.usage.breakdown(None, month, "guild", limit=10)
                if guild_id is None
                else []
            ),
            daily=daily,
            budgets=budgets,
            generated_at=now,
        )
