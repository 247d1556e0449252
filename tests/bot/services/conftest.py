"""Service fixtures: the real Nano Banana client against the fake server, a local store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.nanobanana import NanobananaClient
from bot.services.generation import Failure, Job, Result
from storage.objects import LocalObjectStore
from tests.fakes.nanobanana_server import FakeNanobanana


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeNanobanana]:
    async with FakeNanobanana(image_size=256) as fake:
        yield fake


@pytest.fixture
async def client(fake_api: FakeNanobanana) -> AsyncIterator[NanobananaClient]:
    async with NanobananaClient(
        "test-key", base_url=fake_api.base_url, timeout=5, max_attempts=2, backoff_base=0.01
    ) as nano:
        yield nano


@pytest.fixture
async def local_store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    return store


class RecordingListener:
    """Collects a job's events; `await done()` waits for its outcome."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.result: Result | None = None
        self.failure: Failure | None = None
        self._done = asyncio.Event()

    async def queued(self, job: Job, position: int) -> None:
        self.events.append(("queued", position))

    async def started(self, job: Job) -> None:
        self.events.append(("started", None))

    async def completed(self, job: Job, result: Result) -> None:
        self.events.append(("completed", result.image.id))
        self.result = result
        self._done.set()

    async def failed(self, job: Job, failure: Failure) -> None:
        self.events.append(("failed", failure.key))
        self.failure = failure
        self._done.set()

    async def done(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._done.wait(), timeout)
