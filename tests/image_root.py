"""A Docker image's file system, assembled without Docker, to test what the image holds.

No container engine runs where the tests run, so `assemble` does what `docker build` would do
with this project's Dockerfile, step by step, in a folder that stands for the image's `/`:

- the Dockerfile is read by `dockerfile-parse` (no regexes), its build context filtered by
  `.dockerignore` with docker-py's own matcher;
- `COPY` copies from that filtered context as Docker does (a folder's contents into the
  destination; relative destinations under `WORKDIR`), owned by root;
- `RUN` runs each `&&`-joined command: `pip install` into a fresh virtualenv standing for the
  base image's Python; `useradd`, `mkdir`, `chown`, `ln` on the folder. A command this module
  does not know fails the build with its name, as a missing tool would;
- `ENV`, `WORKDIR`, `USER`, `VOLUME`, `HEALTHCHECK`, `STOPSIGNAL`, `CMD` are recorded.

`Image.run(argv, env_file=...)` then runs a command the way the container would: as the image's
user (its uid, when the tests run as root; otherwise this user, with everything the image's user
could not write made read-only), in `WORKDIR`, with the image's environment plus an env file
applied as compose's `env_file` applies it. In-image absolute paths (`/data/...`) in variables
and commands map into the folder. What differs from Docker, on purpose: pip keeps its cache
(faster; it changes no installed file), and the Python is this machine's, not the base image's.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser
from dotenv import dotenv_values

# What the official python image's own Dockerfile sets (python:3.11-slim).
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
# The base image's Python (a virtualenv of this machine's Python stands for it).
PYTHON_PREFIX = "/usr/local"


class BuildError(Exception):
    """What `docker build` would have stopped with."""


@dataclass
class ImageUser:
    name: str
    uid: int
    gid: int
    home: str


@dataclass
class Image:
    """The assembled image: its root folder and what its Dockerfile recorded."""

    root: Path
    python: Path
    env: dict[str, str] = field(default_factory=lambda: dict(BASE_ENV))
    workdir: str = "/"
    user: str = "root"
    users: dict[str, ImageUser] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    stopsignal: str = ""
    #: In-image paths `chown`ed to a user, and so writable by them.
    owned: dict[str, str] = field(default_factory=dict)
    #: The top-level folders the build made (`app`, `data`).
    made: set[str] = field(default_factory=set)
    #: What the RUN lines' pip printed (warnings included).
    build_log: str = ""

    def host(self, path: str | PurePosixPath) -> Path:
        """Where an in-image path lives here (relative paths are under WORKDIR)."""
        inner = PurePosixPath(self.workdir) / path
        return self.root / str(inner).lstrip("/")

    def map_value(self, value: str) -> str:
        """An in-image absolute path in a folder the build made (`/data/bot.db`) mapped here."""
        if value.startswith("/") and value.lstrip("/").split("/")[0] in self.made:
            return str(self.host(value))
        return value

    def make(self, path: str) -> Path:
        """Create an in-image folder (and its parents), noting its top folder as the build's."""
        inner = PurePosixPath(self.workdir) / path
        self.made.add(inner.parts[1] if len(inner.parts) > 1 else "")
        where = self.host(inner)
        where.mkdir(parents=True, exist_ok=True)
        return where

    def environment(self, env_file: Path | None = None, **extra: str) -> dict[str, str]:
        """The container's environment: the image's ENV, then the env file (as compose's
        `env_file`: it overrides the image's values), then `extra` (compose's `environment`)."""
        env = dict(self.env)
        if env_file is not None:
            env.update({k: v or "" for k, v in dotenv_values(env_file).items()})
        env.update(extra)
        user = self.users.get(self.user)
        env["HOME"] = user.home if user else "/root"
        env["HOSTNAME"] = os.uname().nodename
        env = {key: self.map_value(value) for key, value in env.items()}
        env["PATH"] = f"{self.python.parent}:{env['PATH']}"
        return env

    def run(
        self,
        argv: Sequence[str],
        env_file: Path | None = None,
        timeout: float = 120,
        **extra: str,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` as the container would run it (see the module's docstring)."""
        env = self.environment(env_file, **extra)
        command = [str(self.python) if argv[0] in ("python", "python3") else argv[0], *argv[1:]]
        user = self.users.get(self.user)
        switch = user is not None and os.geteuid() == 0
        return subprocess.run(
            command, cwd=self.host(self.workdir), env=env, capture_output=True, text=True,
            timeout=timeout, check=False, user=user.uid if switch and user else None,
            group=user.gid if switch and user else None, extra_groups=[] if switch else None,
        )  # fmt: skip

    def files(self, under: str) -> set[str]:
        """Every path under an in-image folder, relative to it (symlinks not followed)."""
        top = self.host(under)
        return {str(p.relative_to(top)) for p in top.rglob("*")}

    def seal(self) -> None:
        """When not root, this user stands for the image's user: make read-only what the image's
        user could not write (everything not `chown`ed to it), as root's files are."""
        if os.geteuid() == 0:
            return
        writable = [self.host(path) for path in self.owned]
        for path in [self.root, *self.root.rglob("*")]:
            if path.is_symlink() or any(path.is_relative_to(w) for w in writable):
                continue
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def remove(self) -> None:
        for path in [self.root, *self.root.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(self.root)


def _words(value: str) -> list[str]:
    """An instruction's arguments, in JSON (exec) form or shell form."""
    value = value.strip()
    if value.startswith("["):
        words = json.loads(value)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return shlex.split(value)


def _runs_for_anyone(path: Path) -> bool:
    """Whether a user other than its owner can run this program (every folder on its way
    searchable by others, e.g. not under root's private home)."""
    real = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in [real, *real.parents])


def base_python() -> str:
    """A Python 3 the image's unprivileged user can run, for the venv standing for the base
    image's. As root, this test's own Python may live in root's private home (pyenv)."""
    candidates = [Path(sys.executable), Path(f"/usr/bin/python3.{sys.version_info.minor}"),
                  Path("/usr/bin/python3")]  # fmt: skip
    if os.geteuid() != 0:
        return sys.executable
    for candidate in candidates:
        if candidate.exists() and _runs_for_anyone(candidate):
            return str(candidate)
    raise BuildError("no Python here that an unprivileged user can run (e.g. /usr/bin/python3)")


def context_files(context: Path) -> set[str]:
    """The build context's paths after `.dockerignore`, as Docker sends them."""
    ignore = context / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.strip().startswith("#")
    ]
    return set(exclude_paths(str(context), patterns))


def assemble(context: Path, dockerfile: Path | None = None) -> Image:
    """Build the image's file system from `context` (see the module's docstring). The caller
    removes it with `Image.remove()`."""
    parser = DockerfileParser(str(dockerfile or context / "Dockerfile"))
    # Readable by the image's user (a temporary folder is private to its maker).
    root = Path(tempfile.mkdtemp(prefix="nanobanana-image-"))
    root.chmod(0o755)
    python = root / PYTHON_PREFIX.lstrip("/") / "venv" / "bin" / "python"
    image = Image(root=root, python=python)
    try:
        subprocess.run([base_python(), "-m", "venv", str(python.parent.parent)], check=True)
        # The base image ships a recent pip (this machine's Python may not): recent pips show
        # a build backend's warnings, which the build log must not have.
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       check=True, capture_output=True)  # fmt: skip
        allowed = context_files(context)
        for step in parser.structure:
            _apply(image, context, allowed, step["instruction"], step["value"])
        image.seal()
    except BaseException:
        image.remove()
        raise
    return image


def _apply(image: Image, context: Path, allowed: set[str], instruction: str, value: str) -> None:
    if instruction in ("COMMENT", "FROM", "ARG", "LABEL", "EXPOSE"):
        return
    if instruction == "ENV":
        image.env.update(_env_of(value))
    elif instruction == "WORKDIR":
        image.workdir = str(PurePosixPath(image.workdir) / value.strip())
        image.make(image.workdir)
    elif instruction == "COPY":
        _copy(image, context, allowed, _words(value))
    elif instruction == "RUN":
        for command in _commands(value):
            _run(image, command)
    elif instruction == "USER":
        image.user = value.strip().split(":")[0]
    elif instruction == "VOLUME":
        image.volumes += _words(value)
    elif instruction == "HEALTHCHECK":
        words = _words(value.split("CMD", 1)[1]) if "CMD" in value else []
        image.healthcheck = words
    elif instruction == "STOPSIGNAL":
        image.stopsignal = value.strip()
    elif instruction == "CMD":
        image.cmd = _words(value)
    else:
        raise BuildError(f"tests/image_root.py does not know {instruction}: teach it")


def _env_of(value: str) -> dict[str, str]:
    """One ENV instruction's variables (`KEY=VALUE ...` or the old `KEY VALUE`)."""
    words = shlex.split(value)
    if words and "=" not in words[0]:
        return {words[0]: value.strip()[len(words[0]) :].strip()}
    return dict(word.split("=", 1) for word in words)


def _copy(image: Image, context: Path, allowed: set[str], words: list[str]) -> None:
    if any(word.startswith("--") for word in words):
        raise BuildError(f"COPY options are not emulated: {words}")
    *sources, destination = words
    as_folder = len(sources) > 1 or destination.endswith("/")
    target = image.host(destination)
    for source in sources:
        name = os.path.normpath(source)
        if name not in allowed and name != ".":
            raise BuildError(f"COPY failed: {source} not found in the build context")
        origin = context / name
        if origin.is_dir():
            # A folder's contents go into the destination.
            for path in sorted(allowed):
                if name != "." and not path.startswith(f"{name}/"):
                    continue
                inner = Path(path).relative_to(name)
                _put(origin / inner, target / inner)
        else:
            _put(origin, target / origin.name if as_folder else target)


def _put(origin: Path, target: Path) -> None:
    if origin.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target)


def _commands(value: str) -> Iterator[list[str]]:
    """A RUN line's commands, split on `&&` (the only joiner this project's Dockerfile uses)."""
    words = _words(value)
    command: list[str] = []
    for word in words:
        if word in (";", "||", "|"):
            raise BuildError(f"RUN with {word!r} is not emulated: use &&")
        if word == "&&":
            yield command
            command = []
        else:
            command.append(word)
    if command:
        yield command


def _run(image: Image, command: list[str]) -> None:
    tool, args = command[0], command[1:]
    python_pip = command[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"])
    if tool in ("pip", "pip3") or python_pip:
        args = command[3:] if tool.startswith("python") else args
        env = image.environment()
        env.pop("PIP_NO_CACHE_DIR", None)  # the one liberty taken: pip's cache, for speed
        env["HOME"] = os.environ.get("HOME", "/root")
        result = subprocess.run(
            [str(image.python), "-m", "pip", *args], cwd=image.host(image.workdir), env=env,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        image.build_log += result.stdout + result.stderr
        if result.returncode != 0:
            raise BuildError(f"RUN pip {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    elif tool == "useradd":
        _useradd(image, args)
    elif tool == "mkdir":
        for path in _paths(args, {"-p", "--parents"}):
            image.make(path)
    elif tool == "chown":
        recursive = "-R" in args
        owner, *paths = [a for a in args if not a.startswith("-")]
        user = image.users[owner.split(":")[0]]
        for path in paths:
            image.owned[str(PurePosixPath(image.workdir) / path)] = user.name
            if os.geteuid() == 0:
                top = image.host(path)
                for item in [top, *(top.rglob("*") if recursive else [])]:
                    os.chown(item, user.uid, user.gid, follow_symlinks=False)
    elif tool == "ln" and args[:1] == ["-s"] and len(args) == 3:
        target, link = args[1], args[2]
        where = image.host(link)
        mapped = image.host(target) if target.startswith("/") else Path(target)
        where.symlink_to(mapped)
    else:
        raise BuildError(f"RUN {tool}: not emulated by tests/image_root.py: teach it")


def _paths(args: list[str], flags: set[str]) -> list[str]:
    unknown = [a for a in args if a.startswith("-") and a not in flags]
    if unknown:
        raise BuildError(f"options not emulated: {unknown}")
    return [a for a in args if not a.startswith("-")]


def _useradd(image: Image, args: list[str]) -> None:
    options: dict[str, str] = {}
    flags = {"--system", "-r", "--no-create-home", "-M", "--user-group", "-U"}
    with_value = {"--uid": "uid", "-u": "uid", "--gid": "gid", "-g": "gid", "--home-dir": "home",
                  "-d": "home", "--shell": "shell", "-s": "shell"}  # fmt: skip
    rest = list(args)
    name = ""
    while rest:
        word = rest.pop(0)
        if word in with_value:
            options[with_value[word]] = rest.pop(0)
        elif word in flags:
            continue
        elif word.startswith("-"):
            raise BuildError(f"useradd {word}: not emulated")
        else:
            name = word
    uid = int(options.get("uid", "999"))
    image.users[name] = ImageUser(
        name=name, uid=uid, gid=int(options.get("gid", uid)), home=options.get("home", "/")
    )


def compose_env(values: Mapping[str, object]) -> dict[str, str]:
    """A compose `environment:` mapping as the strings the container sees."""
    return {str(k): "" if v is None else str(v) for k, v in values.items()}
