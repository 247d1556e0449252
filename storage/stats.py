"""Deployment-wide figures for /metrics, read from the database (so every process of a
deployment reports the same numbers): jobs by state, refunds, this month's spend, budgets'
use, generation slots held and live processes.

Every query here is one cheap read (on an index, or over small tables: nothing that reads every
image or ledger row); `read_figures` runs them on committed data only and never writes. When
the paid-job model moves (a `jobs` table), only `_job_states` changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.db import Database
from storage.timeutil import utcnow_iso
from storage.usage import GLOBAL_SCOPE


@dataclass(frozen=True)
class BudgetUse:
    """What one budget period holds now: µUSD this month (`usd_month`) or images today
    (`images_day`), for the deployment (`scope` "global") or a server ("guild:<id>");
    `limit` when a cap is set for it."""

    scope: str
    kind: str
    used: int
    limit: int | None


@dataclass(frozen=True)
class DeploymentFigures:
    """One consistent-enough look at the database (each figure is its own read)."""

    #: Generation jobs by state: PENDING and PROCESSING (unfinished), COMPLETED (kept: members'
    #: deletions take theirs away).
    jobs: dict[str, int] = field(default_factory=dict)
    #: Uploaded images kept.
    uploads: int = 0
    #: REFUND rows of the ledger (every refund ever made).
    refunds: int = 0
    #: What answers cost the host this month (billed rows), in µUSD.
    spend_micros_month: int = 0
    budgets: list[BudgetUse] = field(default_factory=list)
    #: Generation slots (MAX_CONCURRENT_GENERATIONS, shared) held by live processes, and all.
    slots_held: int = 0
    slots_total: int = 0
    #: Bot processes whose lease is live.
    processes: int = 0


async def _job_states(db: Database) -> tuple[dict[str, int], int]:
    """Unfinished jobs (of every kind) from their partial indexes; finished images from the
    gallery's own counters (a COUNT over every image would read them all: ~0.8 s at a
    million)."""
    rows = await db.fetchall(
        "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('PENDING', 'PROCESSING') "
        "GROUP BY status"
    )
    jobs = {str(row["status"]): int(row["n"]) for row in rows}
    kept = {
        str(row["type"]): int(row["n"])
        for row in await db.fetchall(
            "SELECT type, COALESCE(SUM(count), 0) AS n FROM gallery_counts GROUP BY type"
        )
    }
    jobs["COMPLETED"] = kept.get("GENERATED", 0)
    return jobs, kept.get("UPLOADED", 0)


async def read_figures(
    db: Database, *, month: str, day: str, global_cap_micros: int | None
) -> DeploymentFigures:
    """The figures now; `month` (YYYY-MM) and `day` (YYYY-MM-DD) name the current budget
    periods, `global_cap_micros` the deployment's MONTHLY_BUDGET_USD (None: no cap)."""
    jobs, uploads = await _job_states(db)
    # Counted on the partial index of refunds alone (no table rows read).
    refunds = await db.fetchval("SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND'")
    spend = await db.fetchval(
        "SELECT COALESCE(SUM(cost_micros), 0) FROM generation_usage "
        "WHERE month = ? AND status = 'BILLED'",
        (month,),
    )
    limits: dict[tuple[str, str], int] = {}
    if global_cap_micros is not None:
        limits[(GLOBAL_SCOPE, "usd_month")] = global_cap_micros
    for row in await db.fetchall(
        "SELECT guild_id, daily_image_cap, monthly_budget_micros FROM guild_settings "
        "WHERE daily_image_cap IS NOT NULL OR monthly_budget_micros IS NOT NULL"
    ):
        scope = f"guild:{row['guild_id']}"
        if row["daily_image_cap"] is not None:
            limits[(scope, "images_day")] = int(row["daily_image_cap"])
        if row["monthly_budget_micros"] is not None:
            limits[(scope, "usd_month")] = int(row["monthly_budget_micros"])
    used: dict[tuple[str, str], int] = {}
    for row in await db.fetchall(
        "SELECT scope, kind, used FROM budget_totals WHERE (kind = 'usd_month' AND period = ?) "
        "OR (kind = 'images_day' AND period = ?)",
        (month, day),
    ):
        used[(str(row["scope"]), str(row["kind"]))] = int(row["used"])
    budgets = [
        BudgetUse(scope, kind, used.get((scope, kind), 0), limits.get((scope, kind)))
        for scope, kind in sorted(set(used) | set(limits))
    ]
    now = utcnow_iso()
    slots = await db.fetchone(
        "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM bot_processes p "
        "WHERE p.id = s.holder AND p.lease_until >= ?) THEN 1 ELSE 0 END), 0) AS held "
        "FROM generation_slots s",
        (now,),
    )
    processes = await db.fetchval(
        "SELECT COUNT(*) FROM bot_processes WHERE lease_until >= ?", (now,)
    )
    return DeploymentFigures(
        jobs=jobs,
        uploads=uploads,
        refunds=int(refunds or 0),
        spend_micros_month=int(spend or 0),
        budgets=budgets,
        slots_held=int(slots["held"]) if slots else 0,
        slots_total=int(slots["total"]) if slots else 0,
        processes=int(processes or 0),
    )
