"""What generations cost the host, and the budgets that bound it, enforced in the database.

Each period a job counts in (the deployment's month, its server's month and day) has a running
total in `budget_totals`: the estimates of jobs in flight plus the billed cost (or images) of
answered ones. A reservation (`claim`, inside the same transaction as the coin debit) adds its
estimate to each with one guarded UPDATE where a cap applies (`used + estimate <= cap`, like a
debit's `coins >= cost`), and raises `BudgetExceeded` (rolling the whole reservation back) when
one refuses. Billing replaces the estimate by the real cost; a job that ends without an answer
takes its estimate back. So caps hold under concurrency, across restarts and across processes:
nothing about them lives in memory, and the check costs the same however busy the month is.

Standard SQL only (`?` placeholders, `CASE`, `COALESCE`, `ON CONFLICT DO NOTHING`,
`RETURNING`): this runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from storage.db import Database, Transaction
from storage.errors import StorageLayerError
from storage.timeutil import utcnow_iso

GLOBAL_SCOPE = "global"


class CapKind(StrEnum):
    IMAGES_PER_DAY = "images_day"
    USD_PER_MONTH = "usd_month"


@dataclass(frozen=True)
class Cap:
    """One budget: `limit` images a day or micro-dollars a month, for the whole deployment
    (`guild_id` None) or one server, in the period named `period` (a day or a month)."""

    kind: CapKind
    limit: int
    period: str
    guild_id: int | None = None

    @property
    def scope(self) -> str:
        return GLOBAL_SCOPE if self.guild_id is None else f"guild:{self.guild_id}"

    def amount(self, estimate_micros: int) -> int:
        """How much of this cap one job takes."""
        return 1 if self.kind is CapKind.IMAGES_PER_DAY else estimate_micros


@dataclass(frozen=True)
class BudgetClaim:
    """A job asking to be admitted: its estimate, the caps that bind it, and when (the
    service's clock decides the day and month, so tests can cross period boundaries)."""

    guild_id: int | None
    model: str
    image_size: str | None
    estimate_micros: int
    day: str
    month: str
    now: str
    caps: tuple[Cap, ...] = ()


@dataclass(frozen=True)
class Level:
    """How much of a cap is used (`used`, after this job when it was admitted)."""

    cap: Cap
    used: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.cap.limit if self.cap.limit else 100.0


class BudgetExceeded(StorageLayerError):
    """Admitting the job would pass `cap`; `used` is what the period already holds."""

    def __init__(self, cap: Cap, used: int) -> None:
        super().__init__(f"{cap.scope} {cap.kind} cap {cap.limit} reached ({used} used)")
        self.cap = cap
        self.used = used


# Counted by the budgets: a job in flight by its estimate, a billed one by its real cost; in
# images, a job in flight as one plus the further images of its answer already counted
# (`take_extra_images`: a RESERVED row's `images` holds those), a billed one by its images.
_COUNTED_USD = "CASE WHEN status = 'RESERVED' THEN estimate_micros ELSE cost_micros END"
_COUNTED_IMAGES = "CASE WHEN status = 'RESERVED' THEN 1 + images ELSE images END"
NOTICE_THRESHOLDS = (80, 100)


def _scope_filter(cap: Cap) -> tuple[str, list[Any]]:
    column = "day" if cap.kind is CapKind.IMAGES_PER_DAY else "month"
    where = [f"{column} = ?", "status <> 'VOID'"]
    params: list[Any] = [cap.period]
    if cap.guild_id is not None:
        where.append("guild_id = ?")
        params.append(str(cap.guild_id))
    return " AND ".join(where), params


def _periods(guild_id: int | None, day: str, month: str) -> list[tuple[str, CapKind, str]]:
    """The totals a job counts in (whether or not a cap applies to them now: a cap set in the
    middle of a month must see what the month already spent). Global first: every
    transaction takes the rows in the same order."""
    periods = [(GLOBAL_SCOPE, CapKind.USD_PER_MONTH, month)]
    if guild_id is not None:
        scope = f"guild:{guild_id}"
        periods += [(scope, CapKind.USD_PER_MONTH, month), (scope, CapKind.IMAGES_PER_DAY, day)]
    return periods


async def _add(tx: Transaction, key: tuple[str, CapKind, str], amount: int) -> None:
    """Move a total by `amount` (unguarded: billing and refunds)."""
    if amount:
        await tx.execute(
            "UPDATE budget_totals SET used = used + ? WHERE scope = ? AND kind = ? AND period = ?",
            (amount, key[0], key[1].value, key[2]),
        )


async def _take(
    tx: Transaction, key: tuple[str, CapKind, str], amount: int, cap: Cap | None
) -> int | None:
    """Add `amount` to a total, within `cap` if given; the new total, or None if refused."""
    await tx.execute(
        "INSERT INTO budget_totals (scope, kind, period, used) VALUES (?, ?, ?, 0) "
        "ON CONFLICT DO NOTHING",
        (key[0], key[1].value, key[2]),
    )
    sql = "UPDATE budget_totals SET used = used + ? WHERE scope = ? AND kind = ? AND period = ?"
    params: list[Any] = [amount, key[0], key[1].value, key[2]]
    if cap is not None:
        sql += " AND used + ? <= ?"
        params += [amount, cap.limit]
    row = await tx.fetchone(sql + " RETURNING used", params)
    return None if row is None else int(row[0])


async def used(tx: Transaction, cap: Cap) -> int:
    """What the cap's period holds now (in this transaction)."""
    row = await tx.fetchone(
        "SELECT used FROM budget_totals WHERE scope = ? AND kind = ? AND period = ?",
        (cap.scope, cap.kind.value, cap.period),
    )
    return 0 if row is None else int(row[0])


async def claim(
    tx: Transaction, claim: BudgetClaim, *, job_id: str, user_id: str, coins: int
) -> list[Level]:
    """Admit the job or raise BudgetExceeded (the caller's transaction then rolls back
    everything). Records the RESERVED usage row; returns each cap's level after it."""
    caps = {(cap.scope, cap.kind, cap.period): cap for cap in claim.caps}
    levels = []
    for key in _periods(claim.guild_id, claim.day, claim.month):
        cap = caps.pop(key, None)
        amount = 1 if key[1] is CapKind.IMAGES_PER_DAY else claim.estimate_micros
        after = await _take(tx, key, amount, cap)
        if cap is not None:
            if after is None:
                raise BudgetExceeded(cap, await used(tx, cap))
            levels.append(Level(cap, after))
    if caps:
        raise ValueError(f"caps outside the job's periods: {sorted(caps)}")
    await tx.execute(
        "INSERT INTO generation_usage (id, guild_id, user_id, model, image_size, status, coins, "
        "estimate_micros, day, month, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, 'RESERVED', ?, ?, ?, ?, ?, ?)",
        (
            job_id,
            None if claim.guild_id is None else str(claim.guild_id),
            user_id,
            claim.model,
            claim.image_size,
            coins,
            claim.estimate_micros,
            claim.day,
            claim.month,
            claim.now,
            claim.now,
        ),
    )
    return levels


async def _settle(tx: Transaction, job_id: str, cost_micros: int | None, images: int) -> bool:
    """A RESERVED job's totals: its estimate replaced by `cost_micros` and one image by
    `images` (None: it ended without an answer, so it takes nothing). False if the job was
    not RESERVED (already settled: nothing moves twice)."""
    # Locked (PostgreSQL): a bill and a refund racing for the job settle it once.
    row = await tx.fetchone(
        "SELECT guild_id, day, month, estimate_micros, images FROM generation_usage "
        f"WHERE id = ? AND status = 'RESERVED'{tx.dialect.for_update}",
        (job_id,),
    )
    if row is None:
        return False
    guild_id = int(row[0]) if row[0] is not None else None
    estimate = int(row[3])
    counted = 1 + int(row[4])  # the reservation's image and the extras taken since
    for key in _periods(guild_id, str(row[1]), str(row[2])):
        if key[1] is CapKind.IMAGES_PER_DAY:
            await _add(tx, key, (images if cost_micros is not None else 0) - counted)
        else:
            await _add(tx, key, (cost_micros if cost_micros is not None else 0) - estimate)
    return True


async def record_notice(tx: Transaction, cap: Cap, threshold: int) -> bool:
    """Remember that `threshold`% of `cap` was announced; False if it already was (so each
    notice goes out once, whichever process gets there first)."""
    cursor = await tx.execute(
        "INSERT INTO budget_notices (scope, cap, period, threshold, created_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (cap.scope, cap.kind.value, cap.period, threshold, utcnow_iso()),
    )
    return cursor == 1


async def notices_due(tx: Transaction, levels: Sequence[Level]) -> list[tuple[Level, int]]:
    """The thresholds these levels reach that were not announced yet (recorded now)."""
    due = []
    for level in levels:
        for threshold in NOTICE_THRESHOLDS:
            if level.used * 100 >= threshold * level.cap.limit and await record_notice(
                tx, level.cap, threshold
            ):
                due.append((level, threshold))
    return due


async def void(tx: Transaction, job_id: str, *, billed_if_started: bool = False) -> None:
    """The job ended without an answer: its reservation no longer counts, its coins were
    refunded. With `billed_if_started`, a job the API may have answered (interrupted while
    PROCESSING) keeps its estimate as its cost: a budget never under-counts."""
    now = utcnow_iso()
    if billed_if_started:
        await tx.execute(
            "UPDATE generation_usage SET status = 'BILLED', cost_micros = estimate_micros, "
            "images = 1 + images, updated_at = ? WHERE id = ? AND status = 'RESERVED'",
            (now, job_id),
        )
    elif await _settle(tx, job_id, None, 0):
        await tx.execute(
            "UPDATE generation_usage SET status = 'VOID', updated_at = ? "
            "WHERE id = ? AND status = 'RESERVED'",
            (now, job_id),
        )
    await tx.execute("UPDATE generation_usage SET coins = 0 WHERE id = ?", (job_id,))


@dataclass(frozen=True)
class Billed:
    """What one answer cost: µUSD, images, and its token counts."""

    cost_micros: int
    images: int
    prompt_tokens: int = 0
    output_tokens: int = 0
    image_tokens: int = 0
    thoughts_tokens: int = 0


@dataclass(frozen=True)
class Totals:
    images: int = 0
    cost_micros: int = 0
    coins: int = 0
    in_flight: int = 0


@dataclass(frozen=True)
class Group:
    """A line of a breakdown (by model and size, member, server or day)."""

    key: tuple[str | None, ...]
    images: int
    cost_micros: int


class UsageRepository:
    """Usage rows: billing a finished call, and the figures /usage shows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def bill(self, job_id: str, billed: Billed) -> bool:
        """The API answered: the job now counts its real cost (once; False if it had ended)."""

        async def write(tx: Transaction) -> bool:
            if not await _settle(tx, job_id, billed.cost_micros, billed.images):
                return False
            cursor = await tx.execute(
                "UPDATE generation_usage SET status = 'BILLED', cost_micros = ?, images = ?, "
                "prompt_tokens = ?, output_tokens = ?, image_tokens = ?, thoughts_tokens = ?, "
                "updated_at = ? WHERE id = ? AND status = 'RESERVED'",
                (
                    billed.cost_micros, billed.images, billed.prompt_tokens, billed.output_tokens,
                    billed.image_tokens, billed.thoughts_tokens, utcnow_iso(), job_id,
                ),
            )  # fmt: skip
            return cursor == 1

        return await self.db.write(write)

    async def take_extra_images(self, job_id: str, wanted: int, limit: int) -> int:
        """Count up to `wanted` further images of a RESERVED job's answer in its server's day,
        as far as `limit` (the server's daily image cap) leaves room; returns how many were
        counted (0 if the job is no longer RESERVED or has no server). The job's own image
        was counted by its reservation; its bill then counts what it stored."""

        async def write(tx: Transaction) -> int:
            row = await tx.fetchone(
                "SELECT guild_id, day FROM generation_usage "
                f"WHERE id = ? AND status = 'RESERVED'{tx.dialect.for_update}",
                (job_id,),
            )
            if row is None or row[0] is None or wanted <= 0:
                return 0
            key = (f"guild:{row[0]}", CapKind.IMAGES_PER_DAY, str(row[1]))
            # Locked (PostgreSQL; SQLite's write lock serialises anyway): the room read here
            # is the room taken.
            total = await tx.fetchone(
                "SELECT used FROM budget_totals WHERE scope = ? AND kind = ? AND period = ?"
                f"{tx.dialect.for_update}",
                (key[0], key[1].value, key[2]),
            )
            used_now = 0 if total is None else int(total[0])
            granted = max(0, min(wanted, limit - used_now))
            if granted:
                await _add(tx, key, granted)
                await tx.execute(
                    "UPDATE generation_usage SET images = images + ? WHERE id = ?",
                    (granted, job_id),
                )
            return granted

        return await self.db.write(write)

    async def record_notice(self, cap: Cap, threshold: int) -> bool:
        """`record_notice` in its own transaction (for a refusal, whose own rolled back)."""
        return await self.db.write(lambda tx: record_notice(tx, cap, threshold))

    async def cost_of(self, job_id: str) -> int | None:
        """What a job cost the host so far (its estimate while in flight), or None."""
        row = await self.db.fetchone(
            f"SELECT {_COUNTED_USD} FROM generation_usage WHERE id = ?", (job_id,)
        )
        return None if row is None else int(row[0])

    async def level(self, cap: Cap) -> int:
        """What the cap's period holds (its running total)."""
        value = await self.db.fetchval(
            "SELECT used FROM budget_totals WHERE scope = ? AND kind = ? AND period = ?",
            (cap.scope, cap.kind.value, cap.period),
        )
        return 0 if value is None else int(value)

    async def recount(self, cap: Cap) -> int:
        """The same figure summed from the usage rows (what the running total must equal)."""
        where, params = _scope_filter(cap)
        counted = _COUNTED_IMAGES if cap.kind is CapKind.IMAGES_PER_DAY else _COUNTED_USD
        value = await self.db.fetchval(
            f"SELECT COALESCE(SUM({counted}), 0) FROM generation_usage WHERE {where}", params
        )
        return int(value)

    @staticmethod
    def _where(guild_id: int | None, column: str, value: str) -> tuple[str, list[Any]]:
        where, params = [f"{column} = ?"], [value]
        if guild_id is not None:
            where.append("guild_id = ?")
            params.append(str(guild_id))
        return " AND ".join(where), params

    async def totals(self, guild_id: int | None, column: str, value: str) -> Totals:
        """Billed images and cost, coins paid and jobs in flight, of a day or a month
        (`column` 'day' or 'month'), in one server or (None) everywhere."""
        if column not in ("day", "month"):
            raise ValueError(column)
        where, params = self._where(guild_id, column, value)
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(CASE WHEN status = 'BILLED' THEN images ELSE 0 END), 0), "
            "COALESCE(SUM(CASE WHEN status = 'BILLED' THEN cost_micros ELSE 0 END), 0), "
            "COALESCE(SUM(coins), 0), "
            "COALESCE(SUM(CASE WHEN status = 'RESERVED' THEN 1 ELSE 0 END), 0) "
            f"FROM generation_usage WHERE {where}",
            params,
        )
        assert row is not None
        return Totals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))

    async def breakdown(
        self, guild_id: int | None, month: str, by: str, *, limit: int = 10
    ) -> list[Group]:
        """Billed images and cost of a month grouped `by` 'model' (model and size), 'user' or
        'guild', dearest first."""
        columns = {"model": "model, image_size", "user": "user_id", "guild": "guild_id"}[by]
        where, params = self._where(guild_id, "month", month)
        rows = await self.db.fetchall(
            f"SELECT {columns}, SUM(images) AS n, SUM(cost_micros) AS cost "
            f"FROM generation_usage WHERE {where} AND status = 'BILLED' "
            f"GROUP BY {columns} ORDER BY cost DESC, n DESC LIMIT ?",
            (*params, limit),
        )
        width = len(columns.split(","))
        return [
            Group(tuple(row[i] for i in range(width)), int(row["n"]), int(row["cost"]))
            for row in rows
        ]

    async def daily(self, guild_id: int | None, first_day: str) -> list[Group]:
        """Billed images and cost per day from `first_day` on (days without any are absent)."""
        where, params = ["day >= ?", "status = 'BILLED'"], [first_day]
        if guild_id is not None:
            where.append("guild_id = ?")
            params.append(str(guild_id))
        rows = await self.db.fetchall(
            "SELECT day, SUM(images) AS n, SUM(cost_micros) AS cost FROM generation_usage "
            f"WHERE {' AND '.join(where)} GROUP BY day ORDER BY day",
            params,
        )
        return [Group((row["day"],), int(row["n"]), int(row["cost"])) for row in rows]
