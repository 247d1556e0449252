"""Reliability: a seeded storm of operations under API and storage faults, with hard kills.

The short run is part of `make test`; `make soak` runs 10,000 operations (SOAK_OPERATIONS).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.scenario import run


async def test_short_storm_loses_nothing(tmp_path: Path) -> None:
    figures = await run(tmp_path, operations=160, seed=7, kills=1)
    print(figures.summary())
    assert figures.kills == 1 and figures.restarts == 2
    assert figures.operations.total() == 160
    assert figures.interactions_answered > 0.8 * figures.interactions_sent
    assert figures.failed_generations > 0  # the faults did bite
    assert figures.problems == [], figures.summary()


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_soak(tmp_path: Path) -> None:
    operations = int(os.environ.get("SOAK_OPERATIONS", "10000"))
    kills = max(1, operations // 2500)
    figures = await run(tmp_path, operations=operations, seed=2026, kills=kills)
    print(figures.summary())
    assert figures.problems == [], figures.summary()
