"""This process's lease in the database, renewed by a heartbeat (DESIGN 7b).

Every bot process registers itself with a lease of `lease_seconds`, renewed every third of
it. What the process holds (its jobs, generation slots, objects being written, named locks)
is its own while the lease runs; once it stops renewing (a crash, a kill, a host gone), any
other process may fail and refund its jobs, exactly once. A process that starts never touches
another's live jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from storage.leases import LeaseRepository

log = logging.getLogger(__name__)


def describe_process(shard_ids: list[int] | None = None) -> str:
    """Host, pid and shards: how people recognise a process in `bot_processes`."""
    shards = "all shards" if shard_ids is None else "shards " + ",".join(map(str, shard_ids))
    return f"{socket.gethostname()} pid {os.getpid()} ({shards})"


class ProcessLease:
    """Register with `start()`, renew in the background, retire with `close()`."""

    def __init__(
        self,
        leases: LeaseRepository,
        *,
        lease_seconds: float = 30.0,
        name: str | None = None,
        process_id: str | None = None,
    ) -> None:
        self.leases = leases
        self.lease_seconds = lease_seconds
        self.name = name or describe_process()
        #: A new id at every start: a restarted process never claims its past life's jobs.
        self.id = process_id or uuid.uuid4().hex
        self.renewals = 0
        #: Whether the database knows this process (jobs may be taken only then: a job of
        #: an unknown process looks expired to every other process).
        self.registered = False
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._heartbeat is not None

    async def start(self) -> None:
        """Register and start the heartbeat. A database that can't take the registration
        now (locked, unreachable) doesn't stop start-up: the heartbeat keeps trying, and
        until it succeeds this process takes no job."""
        if self._heartbeat is not None:
            return
        try:
            await self._register()
        except Exception as error:
            log.error("process %s: could not register yet (%s); retrying", self.id, error)
        self._heartbeat = asyncio.create_task(self._beat(), name="process-heartbeat")

    async def _register(self) -> None:
        await self.leases.register(self.id, self.name, self.lease_seconds)
        self.registered = True
        log.info("process %s registered (%s, lease %.0fs)", self.id, self.name,
                 self.lease_seconds)  # fmt: skip

    async def _beat(self) -> None:
        interval = self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval if self.registered else min(interval, 0.5))
            try:
                if not self.registered:
                    await self._register()
                elif not await self.leases.renew(self.id, self.lease_seconds):
                    log.error(
                        "process %s: its lease had lapsed and another process took it for "
                        "dead (its jobs may have been refunded); registered again",
                        self.id,
                    )
                self.renewals += 1
            except Exception as error:
                # The database is unreachable: keep trying; past the lease, other processes
                # will take this one for dead (every job step is guarded, so nothing is lost).
                log.warning("process %s: heartbeat failed (%s)", self.id, error)

    async def close(self) -> None:
        """Stop renewing and retire: what this process still holds is expired at once."""
        task, self._heartbeat = self._heartbeat, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if not self.registered:
            return
        self.registered = False
        try:
            await self.leases.retire(self.id)
        except Exception as error:
            log.warning("process %s: could not retire (%s); its lease will expire", self.id,
                        error)  # fmt: skip

    @contextlib.asynccontextmanager
    async def holding(self, lock: str) -> AsyncIterator[bool]:
        """The named lock for the block if no other live process holds it; yields whether it
        was taken (the block decides what to skip without it)."""
        taken = await self.leases.acquire(lock, self.id)
        try:
            yield taken
        finally:
            if taken:
                with contextlib.suppress(Exception):
                    await self.leases.release(lock, self.id)
