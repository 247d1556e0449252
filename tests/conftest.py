"""Shared fixtures: real SQLite files, a real moto S3 server over HTTP, real repositories, and
the per-test check that no fake Discord saw a request real Discord would refuse."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from moto.server import ThreadedMotoServer

from storage.db import Database
from storage.images import ImageRepository
from storage.objects import S3ObjectStore
from storage.users import UserRepository
from tests.fakes.discord_server import FakeDiscord

# Settings must never pick up a developer's real .env or environment during tests.
for _name in list(os.environ):
    if _name.startswith(("DISCORD_", "GEMINI_", "S3_", "R2_", "NANOBANANA_")):
        del os.environ[_name]


@pytest.fixture(autouse=True)
def discord_strictness() -> Iterator[None]:
    """Fail any test during which a fake Discord saw a request that real Discord would refuse
    as malformed (or a route the fake does not serve, or an error inside the fake)."""
    FakeDiscord.instances.clear()
    yield
    fakes, FakeDiscord.instances[:] = list(FakeDiscord.instances), []
    problems = [problem for fake in fakes for problem in fake.problems()]
    if problems:
        pytest.fail(
            f"{len(problems)} request(s) Discord would refuse:\n" + "\n".join(problems),
            pytrace=False,
        )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database in a real file."""
    database = Database(tmp_path / "bot.db")
    await database.connect()
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def users(db: Database) -> UserRepository:
    return UserRepository(db)


@pytest.fixture
def images(db: Database) -> ImageRepository:
    return ImageRepository(db)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 over real HTTP on 127.0.0.1; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
async def s3_store(moto_server: str) -> AsyncIterator[S3ObjectStore]:
    """A fresh bucket on the moto server (state reset between tests)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{moto_server}/moto-api/reset") as response,
    ):
        response.raise_for_status()
    store = S3ObjectStore(
        bucket="nanobanana-test",
        endpoint_url=moto_server,
        access_key_id="test-key",
        secret_access_key="test-secret",
        region="us-east-1",
        public_base_url="https://cdn.example.test",
    )
    await store.open()
    await store.ensure_bucket()
    try:
        yield store
    finally:
        await store.close()
