"""The deployment files agree with the code: compose runs PostgreSQL and bot processes that
cover every shard once, the image runs as a non-root user with a health check the CLI has,
and service managers give the SIGTERM drain more time than it takes.

The image's contents and its run as its user: tests/test_image.py."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.app import SHUTDOWN_DEADLINE
from bot.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def test_compose_runs_postgresql_and_a_process_per_shard() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    bots = {name: s for name, s in services.items() if name.startswith("bot-")}
    assert len(bots) == 2
    counts = {int(s["environment"]["SHARD_COUNT"]) for s in bots.values()}
    assert counts == {2}
    shards = sorted(int(i) for s in bots.values() for i in s["environment"]["SHARD_IDS"].split(","))
    assert shards == [0, 1]
    for service in bots.values():
        env = service["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert seconds(service["stop_grace_period"]) > SHUTDOWN_DEADLINE
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        password = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"
        settings = load_settings(
            discord_token="t", shard_count=env["SHARD_COUNT"], shard_ids=env["SHARD_IDS"],
            database_url=env["DATABASE_URL"].replace(password, "pw"),
        )  # fmt: skip
        assert settings.postgres_url is not None


def test_the_systemd_unit_drains_on_sigterm() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy" / "nanobanana-bot@.service")
    service = unit["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > SHUTDOWN_DEADLINE
    assert service["ExecStart"].endswith("-m bot run")
    assert service["User"] != "root"


UNIT = ROOT / "deploy" / "nanobanana-bot@.service"


def test_the_systemd_unit_gives_the_bot_a_folder_of_its_own() -> None:
    """The bot runs in its StateDirectory (made by systemd, owned by its user), so the
    relative paths of .env.example land there; no ReadWritePaths= that fails the unit while
    its folder does not exist."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(UNIT)
    service = unit["Service"]
    state = f"/var/lib/{service['StateDirectory']}"
    assert service["WorkingDirectory"] == state
    assert all(p.startswith("-") for p in service.get("ReadWritePaths", "").split())
    assert service["ProtectSystem"] == "strict"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` on a root folder with the system's units, ours, and the
    program its ExecStart names: no error and no warning."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    system_units = next(
        (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
        None,
    )
    if system_units is None:
        pytest.skip("no systemd units on this machine to verify against")
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(UNIT)
    program = root / unit["Service"]["ExecStart"].split()[0].lstrip("/")
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", "nanobanana-bot@main.service"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def make_commands(target: str) -> list[str]:
    """What `make TARGET` would run on a fresh clone (`make -n -B`: print, run nothing)."""
    printed = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), target], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    return [line for line in printed.splitlines() if "pip install" in line]


def test_make_run_installs_only_what_the_bot_runs_on_and_make_test_adds_the_tools() -> None:
    run = make_commands("run")
    assert run[-1].endswith("pip install --quiet -e .")
    assert not any("[dev]" in line for line in run)
    assert any(line.endswith("-e '.[dev]'") for line in make_commands("unit"))
