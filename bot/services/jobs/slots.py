"""The deployment's API slots: MAX_CONCURRENT_GENERATIONS calls to the model at once, over
every process (the API key's quota is shared), held around each HTTP exchange of a job only.

Each process takes its own share first (a semaphore, in order), then claims a free slot row in
the database. A slot given back while another job of this process waits passes straight to it
with no database round trip when `lend` is on (one process: SQLite); on PostgreSQL every slot
goes back through the database so every process gets its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from bot.services.processes import ProcessLease
from storage.leases import LeaseRepository

log = logging.getLogger(__name__)
T = TypeVar("T")

# Longest wait between two looks for a free slot held by another process.
SLOT_POLL_MAX = 0.5
# How long a slot handed to this process's next job may wait to be taken before it goes back.
SPARE_SLOT_SECONDS = 0.2
_jitter = random.Random()

Persist = Callable[..., Awaitable[Any]]


class StoppedBeforeStart(Exception):
    """The engine stopped while a job waited for a slot (it never called the API)."""


class ApiSlots:
    """This process's side of the deployment's slots."""

    def __init__(
        self,
        *,
        leases: LeaseRepository,
        process: ProcessLease,
        count: int,
        persist: Persist,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        accepting: Callable[[], bool],
        lend: bool,
        retry_seconds: float,
    ) -> None:
        self.leases = leases
        self.process = process
        self.count = count
        self._persist = persist
        self._spawn = spawn
        self._accepting = accepting
        #: Pass a held slot straight to this process's next job (see the module's docstring).
        self.lend = lend
        self.retry_seconds = retry_seconds
        self._freed = asyncio.Event()
        # This process's share of the slots, taken first (in order), then claimed in the
        # database, which bounds the whole deployment.
        self._local = asyncio.Semaphore(count)
        # Slots this process holds in the database that a job just gave back while another
        # of its jobs waited: the next one takes it without a database round trip.
        self._spare: list[int] = []
        self._waiters = 0
        self._ready = False
        #: Slots claimed from the database, and handed straight to this process's next job.
        self.claims = 0
        self.handovers = 0

    def slot(self, job_id: str) -> ApiSlot:
        """A slot for one job, taken around each HTTP exchange (`async with`)."""
        return ApiSlot(self, job_id)

    async def take(self, job_id: str) -> int:
        """Wait for one of this process's slots (in order), then take a spare slot it holds
        or claim a free one of the deployment."""
        if not self._accepting():
            raise StoppedBeforeStart(job_id)
        self._waiters += 1
        try:
            await self._local.acquire()
        finally:
            self._waiters -= 1
        try:
            if self._spare:
                self.handovers += 1
                return self._spare.pop()
            return await self._claim(job_id)
        except BaseException:
            self._local.release()
            raise

    async def _claim(self, job_id: str) -> int:
        """A free slot of the deployment for the job. A slot this process frees wakes its
        waiters at once; slots of other processes are looked for again after a short,
        growing, jittered wait."""
        delay = 0.02
        while True:
            if not self._accepting():
                raise StoppedBeforeStart(job_id)
            # Cleared before looking, so a slot freed while we look is not missed.
            self._freed.clear()
            if not self._ready:
                await self._persist(
                    "creating the generation slots",
                    functools.partial(self.leases.ensure_slots, self.count),
                )
                self._ready = True
            slot = await self._persist(
                f"job {job_id}: taking a generation slot",
                functools.partial(self.leases.claim_slot, job_id, self.process.id, self.count),
            )
            if slot is not None:
                self.claims += 1
                return int(slot)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), delay * (0.5 + _jitter.random()))
            delay = min(delay * 2, SLOT_POLL_MAX)

    def give_back(self, slot: int) -> None:
        """Give the slot back without waiting: to this process's next job at once if one
        waits for a slot (and lending is on), else to the database in the background."""
        if self.lend and self._waiters and self._accepting():
            self._spare.append(slot)
            self._local.release()
            self._spawn(self._return_unused(slot))
        else:
            self._spawn(self._free(slot))

    def stop(self) -> None:
        """The engine stops: wake every waiter (they are refunded), give spare slots back."""
        self._freed.set()
        for spare in self._spare:
            self._spawn(self._free(spare, local=False))
        self._spare.clear()

    async def _return_unused(self, slot: int) -> None:
        """A spare slot nobody took (its waiter went away) goes back to the database."""
        await asyncio.sleep(SPARE_SLOT_SECONDS)
        if slot in self._spare:
            self._spare.remove(slot)
            await self._free(slot, local=False)

    async def _free(self, slot: int, *, local: bool = True) -> None:
        """Give the slot back to the database (and, with `local`, this process's share).
        Never raises: a slot that can't be given back now is given back in the background
        (until then it stays this process's)."""
        try:
            await self._persist(
                f"giving back generation slot {slot}",
                functools.partial(self.leases.release_slot, slot, self.process.id),
                budget=min(self.retry_seconds, 5.0),
            )
        except Exception as error:
            log.error("generation slot %d not given back yet (%s); retrying", slot, error)
            self._spawn(self._free_later(slot))
        finally:
            if local:
                self._local.release()
            self._freed.set()

    async def _free_later(self, slot: int) -> None:
        with contextlib.suppress(Exception):
            await self._persist(
                f"giving back generation slot {slot} (background)",
                functools.partial(self.leases.release_slot, slot, self.process.id),
                budget=float("inf"),
            )
        self._freed.set()


class ApiSlot:
    """One of the deployment's slots for one job, which the model client holds around each
    HTTP exchange only (preparing the request, waiting to retry and decoding the answer
    happen outside it). Leaving gives the slot back without waiting."""

    def __init__(self, slots: ApiSlots, job_id: str) -> None:
        self._slots = slots
        self._job_id = job_id
        self._slot: int | None = None

    async def __aenter__(self) -> None:
        if self._slot is None:
            self._slot = await self._slots.take(self._job_id)

    async def __aexit__(self, *exc_info: object) -> None:
        self.give_back()

    def give_back(self) -> None:
        """Give the slot back if it is held (idempotent; never waits)."""
        slot, self._slot = self._slot, None
        if slot is not None:
            self._slots.give_back(slot)
