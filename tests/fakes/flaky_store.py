"""An object store that fails on purpose: a real store underneath, with injected faults.

Used to prove that a failed write never leaves coins taken, objects orphaned or jobs stuck.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from storage.objects import ObjectStore, StorageError


class FlakyStore:
    """Delegates to `inner`, failing `put` when `fail_put(key)` says so (or at `rate`); with
    `hold`, every `put` first waits for that event (a slow bucket: results stay shown but not
    yet stored for as long as a test needs)."""

    def __init__(
        self,
        inner: ObjectStore,
        *,
        rate: float = 0.0,
        rng: random.Random | None = None,
        fail_put: Callable[[str], bool] | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.inner = inner
        self.hold = hold
        self.rate = rate
        self.rng = rng or random.Random(0)
        self.fail_put = fail_put
        self.failed_puts = 0

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if (self.fail_put is not None and self.fail_put(key)) or (
            self.rate and self.rng.random() < self.rate
        ):
            self.failed_puts += 1
            raise StorageError(f"injected failure writing {key}")
        await self.inner.put(key, data, content_type)

    async def get(self, key: str) -> bytes:
        return await self.inner.get(key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def list(self, prefix: str = "") -> list[str]:
        return await self.inner.list(prefix)

    def public_url(self, key: str) -> str | None:
        return self.inner.public_url(key)

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        return await self.inner.signed_url(key, expires_in)

    async def open(self) -> None:
        """Open the inner store (an S3 client) as the bot opens its own."""
        opener = getattr(self.inner, "open", None)
        if opener is not None:
            await opener()

    async def close(self) -> None:
        await self.inner.close()
