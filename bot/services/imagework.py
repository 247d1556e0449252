"""CPU-heavy image work (decoding, thumbnails, contact sheets, shrinking) in its own bounded
pool of processes, so it never holds the event loop's GIL, with back-pressure.

`run(fn, *args)` runs one of `bot.imaging`'s pure functions in the pool. At most `workers`
run at once and `queue_limit` more wait; past that, `run` refuses at once with `ImagesBusy`
("busy, try again") instead of queueing without end, so a burst of gallery clicks can slow
nobody else down. Work that a paid job needs (its thumbnails) passes `wait=True`: it is
never refused (the generation service bounds it itself, by its finishers).

`workers=0` runs the work in threads of this process instead (no extra process; Pillow
releases the GIL for most of its work, but not all).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from bot.services.errors import ImagesBusy

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Modules the pool's processes import once, before they take work.
PRELOAD = ["bot.imaging"]


def _warm() -> int:
    """A no-op run once at start, so the first real job doesn't pay for starting a process."""
    return 0


def end_with(owner: int) -> None:
    """Run first in each pool process: end this process as soon as process `owner` (the bot)
    ends, however it ends, SIGKILL included.

    Nothing else would end it: a worker forked by the forkserver is the forkserver's child,
    not the bot's, and it holds both ends of its own task queue (so it never reads an end of
    input) and the forkserver's "alive" pipe (so the forkserver, which stops when the last
    holder of that pipe is gone, and multiprocessing's resource tracker wait for it too). With
    the workers gone, those two end by themselves."""

    def watch() -> None:
        try:
            # Readable once the process has ended (Linux 5.3+); no polling, no reused pid.
            handle = os.pidfd_open(owner)
        except ProcessLookupError:
            os._exit(0)
        except (AttributeError, OSError):
            handle = None
        if handle is not None:
            select.select([handle], [], [])
        else:
            while _exists(owner):
                time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="end-with-bot", daemon=True).start()


def _exists(pid: int) -> bool:
    with contextlib.suppress(PermissionError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True


def _context() -> Any:
    """`forkserver` where there is one (Linux): workers fork from a small clean process with
    `bot.imaging` already imported, never from the bot's own threads; `spawn` elsewhere."""
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class ImageWork:
    """The bounded image pool (one per bot). Start with `start()`, stop with `close()`."""

    def __init__(self, workers: int = 1, queue_limit: int = 8) -> None:
        if workers < 0 or queue_limit < 0:
            raise ValueError("workers and queue_limit must not be negative")
        self.workers = workers
        self.queue_limit = queue_limit
        self._executor: Executor | None = None
        self._outstanding = 0
        #: How many requests were refused because the pool was full.
        self.refused = 0

    @property
    def capacity(self) -> int:
        """Running plus waiting requests the pool takes before refusing."""
        return max(1, self.workers) + self.queue_limit

    @property
    def outstanding(self) -> int:
        """Requests running or waiting now."""
        return self._outstanding

    def has_room(self) -> bool:
        return self._outstanding < self.capacity

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.workers == 0:
                self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="images")
            else:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=_context(),
                    initializer=end_with, initargs=(os.getpid(),),
                )  # fmt: skip
        return self._executor

    async def start(self) -> None:
        """Start the pool's processes now (each costs a fork and imports)."""
        await asyncio.gather(*(self.run(_warm, wait=True) for _ in range(max(1, self.workers))))

    async def run(self, fn: Callable[..., T], *args: Any, wait: bool = False, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in the pool. Raises ImagesBusy at once when the pool is full,
        unless `wait`; whatever `fn` raises comes back as it was raised."""
        if not wait and not self.has_room():
            self.refused += 1
            raise ImagesBusy()
        self._outstanding += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool(), functools.partial(fn, *args, **kwargs))
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start afresh for the next request.
            log.error("an image worker process died; the pool is restarted")
            self._reset()
            raise ImagesBusy() from None
        finally:
            self._outstanding -= 1

    def _reset(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the pool (running work is abandoned; its callers are gone by now)."""
        self._reset()
