"""What the Docker image holds, and that the bot runs in it as shipped.

No container engine runs where the tests run, so the image's file system is assembled from the
Dockerfile (tests/image_root.py: its COPY lines from the `.dockerignore`d build context, its
RUN line into a fresh virtualenv), once per session. The bot's commands then run there as the
image's unprivileged user, with the image's environment plus `.env.example` applied the way
compose applies `env_file`, which is what README tells an owner to do. compose.yaml is checked
against that image and the settings the bot reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bot.app import SHUTDOWN_DEADLINE
from bot.config import Settings
from tests.image_root import Image, assemble, compose_env, context_files

ROOT = Path(__file__).resolve().parents[1]
# The settings an owner must fill in before the first start (README, "Set-up").
OWNER_FILLS_IN = {"DISCORD_TOKEN": "MTAx.fake.token-for-the-image-test"}
SETTINGS = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="session")
def image() -> Iterator[Image]:
    """The image's file system (one virtualenv build per session: about half a minute)."""
    built = assemble(ROOT)
    try:
        yield built
    finally:
        built.remove()


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    """`.env` as README's set-up makes it: `.env.example` with the token filled in."""
    text = (ROOT / ".env.example").read_text()
    for name, value in OWNER_FILLS_IN.items():
        text, count = re.subn(rf"(?m)^{name}=.*$", f"{name}={value}", text)
        assert count == 1, f".env.example has no {name}= line"
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def tracked(*folders: str) -> set[str]:
    """The checkout's files under these folders (what a fresh clone has)."""
    listed = subprocess.run(["git", "ls-files", "--", *folders], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    return set(listed)


def test_the_image_holds_every_file_the_bot_imports_and_reads(image: Image) -> None:
    """Every package pyproject installs (templates and static files included) and the
    migrations the storage layer reads from beside it are in the image, and every module
    imports there, as the image's user."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages is not None
    folders = [name.strip(' "*') for name in packages.group(1).split(",")] + ["migrations"]
    missing = {f for f in tracked(*folders) if not image.host(f"/app/{f}").is_file()}
    assert not missing, f"files of the checkout missing from the image: {sorted(missing)}"
    imports = textwrap.dedent(f"""
        import importlib, pkgutil
        for top in {folders[:-1]!r}:
            package = importlib.import_module(top)
            for module in pkgutil.walk_packages(package.__path__, top + "."):
                importlib.import_module(module.name)
        print("imported")
    """)
    result = image.run(["python", "-c", imports])
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr


def test_the_run_time_install_is_lean_and_quiet(image: Image) -> None:
    """The image installs the bot as `make run` does (`pip install -e .`): its dependencies
    without the developer tools, and not one warning of the build backend's on the way."""
    noise = [line for line in image.build_log.splitlines()
             if re.search(r"Warning|[Dd]eprecat|setuptools|!!", line)]  # fmt: skip
    assert not noise, "\n".join(noise)
    listed = image.run(["python", "-m", "pip", "list", "--format=freeze"])
    names = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert {"discord.py", "aiohttp", "pillow", "nanobanana-bot"} <= names, names
    assert not names & {"playwright", "moto", "mypy", "pytest", "ruff"}


def test_the_bot_migrates_checks_and_reports_health_in_the_image_with_its_data_in_data(
    image: Image, env_file: Path
) -> None:
    """`python -m bot migrate`, `health` and `check` as the image's user, configured by the
    owner's `.env`: everything the bot writes lands in /data (the volume), nothing in /app."""
    assert image.user not in ("root", "0")
    app_before = image.files(image.workdir)

    migrate = image.run(["python", "-m", "bot", "migrate"], env_file)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "applied 0001_initial" in migrate.stdout

    # The container's health check, before and after a bot process takes its lease.
    assert image.healthcheck == ["python", "-m", "bot", "health"]
    health = image.run(image.healthcheck, env_file)
    assert health.returncode == 1, health.stdout + health.stderr
    assert "FAIL no live bot process" in health.stdout
    lease = image.run(["python", "-c", textwrap.dedent("""
        import asyncio
        from bot.app import build_database
        from bot.config import load_settings
        from bot.services.processes import describe_process
        from storage.leases import LeaseRepository

        async def main():
            async with build_database(load_settings()) as db:
                await LeaseRepository(db).register("p-1", describe_process(), 60)

        asyncio.run(main())
    """)], env_file)  # fmt: skip
    assert lease.returncode == 0, lease.stderr
    health = image.run(image.healthcheck, env_file)
    assert health.returncode == 0, health.stdout + health.stderr

    check = image.run(["python", "-m", "bot", "check"], env_file, timeout=60)
    lines = (check.stdout + check.stderr).splitlines()
    # Only its own lines: no warnings of discord.py's between them, no traceback.
    assert lines and all(line.startswith(("OK ", "FAIL ")) for line in lines), "\n".join(lines)
    assert any(line.startswith("OK   database:") for line in lines), "\n".join(lines)
    assert any(line.startswith("OK   object store:") for line in lines), "\n".join(lines)

    data = image.host("/data")
    assert (data / "bot.db").is_file()
    assert (data / "objects").is_dir()
    assert image.files(image.workdir) == app_before, "the bot wrote into /app"


def test_the_data_stays_in_data_whatever_the_env_file_says(image: Image, env_file: Path) -> None:
    """The image's documented rule (README, "Docker"): relative paths resolve under /data, and
    the image's own defaults are there too."""
    for env in (image.environment(), image.environment(env_file)):
        for name in ("DATABASE_PATH", "LOCAL_STORAGE_DIR"):
            value = env.get(name, str(Settings.model_fields[name.lower()].default))
            where = (image.host(image.workdir) / value).resolve()
            assert where.is_relative_to(image.host("/data").resolve()), (name, value, where)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_uses_the_settings_the_bot_reads(image: Image) -> None:
    """Every variable compose or `.env.example` sets is one the bot reads (or compose's own
    `${...}`, which `.env.example` lists); the bot services run this image's health check."""
    spec = compose()
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"(?m)^([A-Z][A-Z0-9_]*)=", example))
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "compose.yaml").read_text()))
    assert interpolated <= documented, f"compose needs {interpolated - documented} in .env"
    unknown = documented - SETTINGS - interpolated
    assert not unknown, f".env.example sets what the bot does not read: {sorted(unknown)}"
    bots = {name: s for name, s in spec["services"].items() if s.get("build")}
    assert bots, "compose builds no bot service"
    for name, service in bots.items():
        assert service["env_file"] in (".env", [".env"]), name
        env = compose_env(service.get("environment", {}))
        assert set(env) <= SETTINGS, f"{name} sets {set(env) - SETTINGS}, unknown to the bot"
        assert seconds(service["stop_grace_period"]) > SHUTDOWN_DEADLINE


def seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def test_compose_keeps_the_data_where_the_image_puts_it(image: Image, env_file: Path) -> None:
    """Each bot service's images land in a volume it mounts (shared by the processes), and
    its published port is the one the bot listens on."""
    spec = compose()
    declared = set(spec.get("volumes") or {})
    bots = {name: s for name, s in spec["services"].items() if s.get("build")}
    for name, service in bots.items():
        mounts = {}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert source in declared, f"{name} mounts undeclared volume {source}"
            mounts[target] = source
        env = image.environment(env_file, **compose_env(service.get("environment", {})))
        if env.get("STORAGE_BACKEND", "local") == "local":
            where = (image.host(image.workdir) / env["LOCAL_STORAGE_DIR"]).resolve()
            inside = [t for t in mounts if where.is_relative_to(image.host(t).resolve())]
            assert inside, f"{name}: LOCAL_STORAGE_DIR {where} is in none of {sorted(mounts)}"
        for published in service.get("ports", []):
            container_port = str(published).rsplit(":", 1)[-1]
            assert container_port == env["WEB_PORT"], (name, published)
            assert env["WEB_HOST"] == "0.0.0.0", f"{name} publishes a port it does not serve"
    assert PurePosixPath("/data") in {PurePosixPath(v) for v in image.volumes}


def test_the_image_runs_the_bot_as_its_user_and_stops_it_with_sigterm(image: Image) -> None:
    assert image.user in image.users and image.users[image.user].uid != 0
    assert image.cmd == ["python", "-m", "bot", "run"]
    assert image.stopsignal == "SIGTERM"


def test_the_build_context_leaves_out_secrets_and_local_state(tmp_path: Path) -> None:
    """`.dockerignore` keeps the owner's `.env`, the database, the virtualenv and git out of
    what `docker build` sends (and so out of any layer)."""
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    private = [".env", "data/bot.db", ".venv/bin/python", ".git/HEAD", "bot/__pycache__/a.pyc",
               "nanobanana_bot.egg-info/PKG-INFO", ".mypy_cache/x", "tests/test_x.py"]  # fmt: skip
    for name in [*private, "bot/app.py", "web/templates/base.html"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    sent = context_files(tmp_path)
    assert not sent & set(private), sorted(sent & set(private))
    assert {"bot/app.py", "web/templates/base.html"} <= sent
