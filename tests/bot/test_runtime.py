"""The process's own settings: malloc tuning and the event loop."""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot import runtime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_memory_tuning_applies_on_glibc() -> None:
    assert runtime.tune_memory() is True


def test_run_picks_the_loop() -> None:
    async def name() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert runtime.run(name, "asyncio").startswith("asyncio")
    pytest.importorskip("uvloop")
    assert runtime.run(name, "uvloop") == "uvloop"
    assert runtime.run(name) == "uvloop"  # auto: uvloop when installed
