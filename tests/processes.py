"""Processes a test session started and left running: the session fails on them.

A test that starts a process (a bot to SIGKILL, an image pool, a database server) must end it,
and so must the bot when it is killed. What counts as left behind, at the session's end:
- any process below this one (children, grandchildren...), except this process's own
  multiprocessing forkserver and resource tracker, which end with it;
- any process started during the session, from this checkout (its command line names the
  checkout, or it runs in it), that is no longer below this one: orphans, like an image pool
  whose bot was SIGKILLed.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

# This process's own multiprocessing helpers: they end when it does.
OWN_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


def _running(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


#: Interactive and tool shells sitting in the checkout (an editor's terminal, another
#: engineer's shell) are not something a test started.
SHELLS = frozenset({"bash", "sh", "dash", "zsh", "fish"})


def _from_checkout(process: psutil.Process, root: Path) -> bool:
    try:
        where = process.cwd()
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        where, name = "", ""
    if f"{root}/" in _command(process):
        return True
    return where == str(root) and name not in SHELLS


def leftovers(started: float, root: Path) -> list[psutil.Process]:
    """The processes this session left running (see the module's docstring)."""
    me = psutil.Process()
    helpers = {
        child.pid for child in me.children() if any(name in _command(child) for name in OWN_HELPERS)
    }
    # A helper's own children (a pool's workers) are not helpers.
    below = [p for p in me.children(recursive=True) if p.pid not in helpers]
    # The shells that started this session are not left behind by it (psutil's start times
    # are only as exact as the kernel's boot time, whole seconds, so a shell started just
    # before the session can look started during it).
    mine = {p.pid for p in me.children(recursive=True)} | {me.pid} | {p.pid for p in me.parents()}
    orphans = []
    for process in psutil.process_iter():
        try:
            if process.pid in mine or process.create_time() < started:
                continue
        except psutil.NoSuchProcess:
            continue
        if _from_checkout(process, root) and not _another_session(process, me.pid):
            orphans.append(process)
    unique = {p.pid: p for p in [*below, *orphans]}
    return [p for p in unique.values() if _running(p)]


def _another_session(process: psutil.Process, me: int) -> bool:
    """Whether this is, or runs under, another test session (run beside this one)."""
    try:
        chain = [process, *process.parents()]
    except psutil.NoSuchProcess:
        return False
    return any(p.pid != me and "pytest" in _command(p) for p in chain)


def wait_for_leftovers(started: float, root: Path, timeout: float) -> list[psutil.Process]:
    """`leftovers`, after giving them up to `timeout` seconds to end (a pool shut down without
    waiting, a killed bot's pool noticing)."""
    deadline = time.monotonic() + timeout
    left = leftovers(started, root)
    while left and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=0.2)
        left = leftovers(started, root)
    return left


def describe(process: psutil.Process) -> str:
    try:
        parent = process.ppid()
    except psutil.NoSuchProcess:
        parent = 0
    return f"pid {process.pid} (parent {parent}): {_command(process)[:160]}"
