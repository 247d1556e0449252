"""Another process holding a SQLite database's write lock, as a second bot, a backup tool or an
owner's `sqlite3` shell would: a real subprocess with a real `BEGIN IMMEDIATE` transaction.

    async with LockedDatabase(path) as lock:   # held from here
        ...
        await lock.release()                    # or at the end of the block
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
print("released", flush=True)
"""


class LockedDatabase:
    """A child process that takes the write lock of `path` and holds it until `release()`."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _HOLDER,
            self.path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        if line.strip() != b"locked":
            raise RuntimeError(f"the lock holder did not start: {line!r}")
        return self

    @property
    def held(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def release(self) -> None:
        """Commit and end the holder (idempotent)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
        await asyncio.wait_for(process.wait(), 30)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()
