"""The session's check for processes left behind (tests/processes.py) sees them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import leftovers, wait_for_leftovers

ROOT = Path(__file__).resolve().parents[1]
SLEEP = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_child_left_running_is_seen_until_it_ends() -> None:
    started = time.time() - 1
    child = subprocess.Popen(SLEEP)
    try:
        assert child.pid in {p.pid for p in leftovers(started, ROOT)}
    finally:
        child.kill()
        child.wait()
    assert child.pid not in {p.pid for p in wait_for_leftovers(started, ROOT, timeout=5)}


def test_an_orphan_from_this_checkout_is_seen() -> None:
    """A process whose parent ended (as an image pool whose bot was SIGKILLed) is no longer
    below the session, yet it is the session's: it runs in this checkout."""
    started = time.time() - 1
    launcher = subprocess.run(
        [sys.executable, "-c", "import subprocess, sys; "
         f"print(subprocess.Popen({SLEEP!r}, start_new_session=True, "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    orphan = int(launcher.stdout)
    try:
        assert orphan in {p.pid for p in leftovers(started, ROOT)}
    finally:
        os.kill(orphan, signal.SIGKILL)
    assert orphan not in {p.pid for p in wait_for_leftovers(started, ROOT, timeout=5)}
