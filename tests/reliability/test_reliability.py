"""Reliability: a seeded storm of operations under API and storage faults, with hard kills,
over three servers, in both economy scopes.

The short runs are part of `make test`; `make soak` runs 10,000 operations (SOAK_OPERATIONS),
half in each scope.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.scenario import Figures, run

SCOPES = ("guild", "global")


def assert_sound(figures: Figures) -> None:
    """The four figures the storm exists for, and every other problem it found (a budget
    passed among them: see `check_budgets`)."""
    assert figures.ledger_mismatches == 0 and figures.negative_wallets == 0
    assert figures.double_refunds == 0 and figures.orphans == 0
    assert figures.problems == [], figures.summary()


@pytest.mark.parametrize("scope", SCOPES)
async def test_short_storm_loses_nothing(tmp_path: Path, scope: str) -> None:
    figures = await run(tmp_path, operations=160, seed=7, kills=1, scope=scope)
    print(figures.summary())
    assert figures.kills == 1 and figures.restarts == 2
    assert figures.operations.total() == 160
    assert figures.interactions_answered > 0.8 * figures.interactions_sent
    assert figures.failed_generations > 0  # the faults did bite
    assert figures.servers == 3
    # The budgets bit (requests refused before any coin moved) and held (in assert_sound).
    assert figures.budget_refusals > 0 and figures.api_spend_micros > 0
    assert_sound(figures)


def soak_budget(operations: int) -> str:
    """The deployment's monthly budget for a long run: what the short runs' $1.00 is to their
    160 operations, so that the budget bites late in the run instead of in its first minute."""
    return f"{operations / 160:.2f}"


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("scope", SCOPES)
async def test_soak(tmp_path: Path, scope: str) -> None:
    operations = int(os.environ.get("SOAK_OPERATIONS", "10000")) // len(SCOPES)
    kills = max(1, operations // 2500)
    figures = await run(
        tmp_path, operations=operations, seed=2026, kills=kills, scope=scope,
        budget_usd=soak_budget(operations),
    )  # fmt: skip
    print(figures.summary())
    assert_sound(figures)


@pytest.mark.parametrize("scope", SCOPES, ids=[f"{s}-postgresql" for s in SCOPES])
async def test_short_storm_over_two_processes_on_postgresql(
    tmp_path: Path, pg_url: str, scope: str
) -> None:
    """Two bot processes (shards 0,1 and 2 of 3) share one PostgreSQL database and one object
    store; processes are SIGKILLed mid-flight and restarted while the other goes on."""
    figures = await run(
        tmp_path, operations=160, seed=11, kills=2, scope=scope, processes=2,
        database_url=pg_url,
    )  # fmt: skip
    print(figures.summary())
    assert (figures.processes, figures.shards, figures.backend) == (2, 3, "postgresql")
    assert figures.kills == 2 and figures.restarts == 4
    assert figures.operations.total() == 160
    assert figures.interactions_answered > 0.8 * figures.interactions_sent
    assert figures.failed_generations > 0
    assert figures.servers == 3
    assert figures.stuck_jobs == 0 and figures.refunded_and_delivered == 0
    assert_sound(figures)


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_soak_over_three_processes_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """The long multi-process run: three processes (shards 0,1 / 2 / 3 of 4) on one
    PostgreSQL, half as many operations as the single-process soak, a kill every 1,000."""
    operations = int(os.environ.get("SOAK_OPERATIONS", "10000")) // 2
    kills = max(2, operations // 1000)
    figures = await run(
        tmp_path, operations=operations, seed=2028, kills=kills, processes=3,
        database_url=pg_url, budget_usd=soak_budget(operations),
    )  # fmt: skip
    print(figures.summary())
    assert figures.stuck_jobs == 0 and figures.refunded_and_delivered == 0
    assert_sound(figures)
