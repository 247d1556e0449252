"""axe-core (Deque's accessibility engine, from npm) run inside the browser tests' pages.

It is installed at test time into a cache directory (`AXE_CACHE_DIR`, default `.venv/npm`, so
`make clean` drops it) with `npm install axe-core@AXE_VERSION`, once; the browser tests skip
with one line only where npm itself is missing. A page fails on any serious or critical
violation, and on having no level-one heading (axe's `page-has-heading-one`, which it rates
moderate, but a page without an `<h1>` leaves screen-reader users without a title to jump to).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"  # npm view axe-core version, 2026-12-07
CACHE = Path(os.environ.get("AXE_CACHE_DIR") or ROOT / ".venv" / "npm")
SCRIPT = CACHE / "node_modules" / "axe-core" / "axe.min.js"
FAIL_IMPACTS = frozenset({"serious", "critical"})
ALWAYS_FAIL = frozenset({"page-has-heading-one"})


def axe_script() -> str:
    """The source of axe.min.js, installed from npm into the cache on first use."""
    installed = CACHE / "node_modules" / "axe-core" / "package.json"
    if SCRIPT.exists() and f'"version": "{AXE_VERSION}"' in installed.read_text("utf-8"):
        return SCRIPT.read_text("utf-8")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so axe-core can't be: accessibility not checked")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--silent",
         "--no-save", f"axe-core@{AXE_VERSION}"],
        check=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert SCRIPT.exists(), f"npm installed axe-core but {SCRIPT} is missing"
    return SCRIPT.read_text("utf-8")


def failures(results: dict[str, Any]) -> list[str]:
    """The violations a page fails on, one readable line each."""
    lines = []
    for violation in results["violations"]:
        if violation["impact"] in FAIL_IMPACTS or violation["id"] in ALWAYS_FAIL:
            targets = [", ".join(node["target"]) for node in violation["nodes"]][:5]
            lines.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} -> {targets}"
            )
    return lines


async def audit(page: Any, script: str, name: str) -> dict[str, Any]:
    """Run axe on the page as it is; fail the test on what `failures` lists. Returns axe's
    results (passes too, so a test can check that a rule really ran)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the pages' strict Content Security
        # Policy (no scripts at all) doesn't govern: a script tag would be refused, rightly.
        await page.evaluate(script + "\n;undefined")
    results: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations', 'passes']})"
    )
    problems = failures(results)
    assert not problems, f"{name} ({page.url}) fails accessibility checks:\n" + "\n".join(problems)
    return results
