"""Work for the image pool's processes that tests control (importable there by name)."""

from __future__ import annotations

import time
from pathlib import Path


def hold_until_exists(path: str, timeout: float = 60.0) -> None:
    """Keep a pool worker busy until the test creates `path` (at most `timeout` seconds): a
    busy pool for exactly as long as the test needs it, however slow the machine."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
