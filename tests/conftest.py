"""Shared fixtures: real databases (a SQLite file, and a database on a throwaway PostgreSQL
server), a real moto S3 server over HTTP, real repositories, and the per-test check that no
fake Discord saw a request real Discord would refuse.

The `db` fixture runs each test that uses it on both backends (`[sqlite]`, `[postgresql]`).
The PostgreSQL server starts once per session, on first use; each test gets a fresh database
copied from a migrated template. Without the server binaries those tests are skipped, and the
session ends with one line saying how to install them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from moto.server import ThreadedMotoServer

from storage.db import Database
from storage.images import ImageRepository
from storage.objects import S3ObjectStore
from storage.postgres import PostgresDatabase
from storage.sqlite import SQLiteDatabase
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.fakes.discord_server import FakeDiscord
from tests.pg_server import PostgresServer, PostgresUnavailable
from tests.processes import describe, wait_for_leftovers

BACKENDS = ("sqlite", "postgresql")
TEMPLATE = "nb_template"
_pg_outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
_pg_unavailable: list[str] = []

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


_server: list[PostgresServer] = []


def shared_pg_server() -> PostgresServer:
    """The session's throwaway PostgreSQL server with its migrated template, started on first
    use (raises PostgresUnavailable without the binaries); stopped at the session's end."""
    if not _server:
        server = PostgresServer.start()
        try:
            # In a thread of its own: the first test to ask may be running its event loop.
            with ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, _make_template(server)).result()
        except BaseException:
            server.stop()
            raise
        _server.append(server)
    return _server[0]


_session_started = time.time()
_left_behind: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the session's PostgreSQL server; then fail the session if it left a process
    running (tests/processes.py says what counts)."""
    while _server:
        _server.pop().stop()
    root = Path(__file__).resolve().parents[1]
    left = wait_for_leftovers(_session_started, root, timeout=10)
    if left:
        _left_behind[:] = [describe(process) for process in left]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server() -> PostgresServer:
    """The throwaway PostgreSQL server (the tests that need it skip without the binaries)."""
    try:
        return shared_pg_server()
    except PostgresUnavailable as error:
        _pg_unavailable[:] = [str(error)]
        pytest.skip(str(error))


async def _make_template(server: PostgresServer) -> None:
    async with PostgresDatabase(await server.create_database(TEMPLATE)) as database:
        await database.migrate()


@pytest.fixture
async def pg_url(pg_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a fresh, migrated PostgreSQL database (dropped after the test)."""
    async with fresh_database(pg_server) as url:
        yield url


@contextlib.asynccontextmanager
async def fresh_database(server: PostgresServer) -> AsyncIterator[str]:
    """A copy of the migrated template, dropped on exit; yields its URL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = await server.create_database(name, template=TEMPLATE)
    try:
        yield url
    finally:
        await server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database backend the test runs on."""
    return str(request.param)


@pytest.fixture
def pg_for_backend(backend: str, request: pytest.FixtureRequest) -> PostgresServer | None:
    """The session's PostgreSQL server when the test runs on it (skips without binaries)."""
    if backend != "postgresql":
        return None
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server


@pytest.fixture
async def db(pg_for_backend: PostgresServer | None, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database: a real SQLite file, or a fresh PostgreSQL database."""
    async with contextlib.AsyncExitStack() as stack:
        database: Database
        if pg_for_backend is not None:
            database = PostgresDatabase(
                await stack.enter_async_context(fresh_database(pg_for_backend))
            )
        else:
            database = SQLiteDatabase(tmp_path / "bot.db")
        await stack.enter_async_context(database)
        await database.migrate()
        yield database


@pytest.fixture
async def db_twin(db: Database) -> AsyncIterator[Database]:
    """A second connection to the same database, as another bot process would open it."""
    other: Database
    if isinstance(db, PostgresDatabase):
        other = PostgresDatabase(db.url)
    else:
        assert isinstance(db, SQLiteDatabase)
        other = SQLiteDatabase(db.path)
    async with other:
        yield other


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the tests that ran on PostgreSQL, for the closing line."""
    if "[postgresql" not in report.nodeid and "-postgresql" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _pg_outcomes[report.outcome] = _pg_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _left_behind:
        terminalreporter.write_line(
            f"FAILED: the session left {len(_left_behind)} process(es) running:", red=True
        )
        for line in _left_behind:
            terminalreporter.write_line(f"  {line}")
    ran = _pg_outcomes["passed"] + _pg_outcomes["failed"]
    if _pg_unavailable:
        terminalreporter.write_line(
            f"PostgreSQL: {_pg_outcomes['skipped']} tests skipped: {_pg_unavailable[0]}"
        )
    elif ran:
        terminalreporter.write_line(
            f"PostgreSQL: {ran} tests ran on a throwaway PostgreSQL server "
            f"({_pg_outcomes['passed']} passed, {_pg_outcomes['failed']} failed)"
        )


@pytest.fixture
def users(db: Database) -> UserRepository:
    return UserRepository(db)


@pytest.fixture
def wallets(db: Database) -> WalletRepository:
    return WalletRepository(db)


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
