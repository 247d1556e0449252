"""How the bot's process runs: its event loop (uvloop where installed), and memory settings the
process applies to itself, so a host need not set MALLOC_ARENA_MAX or anything else.

- `tune_memory()`: with glibc, at most two malloc arenas (threads otherwise get one each, up
  to 8 per core, and keep freed memory in each), and a fixed 1 MiB mmap threshold: buffers
  of that size or more (decoded images, 5-7 MB answers, uploads) are mapped and unmapped, so
  their memory goes back to the system when they are freed instead of staying in the heap
  (glibc's own threshold creeps up to 32 MiB after the first large frees). Call it first,
  before threads start. Elsewhere it does nothing.
- `run(main, loop)`: `asyncio.run` on uvloop (`auto`, when installed) or asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
LoopChoice = Literal["auto", "uvloop", "asyncio"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024
ARENA_MAX = 2


def tune_memory() -> bool:
    """Apply the malloc settings above (glibc only); True when they were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt): its defaults stay
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_ARENA_MAX, ARENA_MAX),
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
    if not applied:
        log.debug("mallopt refused a memory setting; glibc's defaults stay")
    return applied


def loop_factory(choice: LoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to run on: uvloop's (if installed, unless `asyncio`), else None
    (asyncio's own). `uvloop` insists, raising ImportError when it is missing."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Callable[[], Coroutine[Any, Any, T]], loop: LoopChoice = "auto") -> T:
    """Run `main()` to completion on the chosen event loop."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main())
