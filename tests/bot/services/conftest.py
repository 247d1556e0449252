"""Service fixtures: the real Nano Banana client against the fake server, a local store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import EconomyScope, Settings
from bot.nanobanana import NanobananaClient
from bot.services.accounts import AccountService
from bot.services.generation import Failure, Job, Result
from bot.services.members import MemberService, Payer
from bot.services.permissions import PermissionService
from bot.services.settings import GuildSettingsService
from bot.services.wallets import WalletService
from storage.db import Database
from storage.guild_settings import GuildSettingsRepository
from storage.images import ImageRepository
from storage.jobs import JobRepository, JobRow
from storage.objects import LocalObjectStore
from storage.users import UserRepository
from storage.wallets import WalletRepository
from tests.fakes.nanobanana_server import FakeNanobanana
from tests.storage.helpers import member


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

    async def queued(self, job: Job[Any], position: int) -> None:
        self.events.append(("queued", position))

    async def started(self, job: Job[Any]) -> None:
        self.events.append(("started", None))

    async def completed(self, job: Job[Any], result: Result) -> None:
        self.events.append(("completed", result.image.id))
        self.result = result
        self._done.set()

    async def failed(self, job: Job[Any], failure: Failure) -> None:
        self.events.append(("failed", failure.key))
        self.failure = failure
        self._done.set()

    async def done(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self._done.wait(), timeout)


async def payer_for(
    db: Database,
    discord_id: int,
    coins: int,
    *,
    cost: int = 100,
    max_jobs: int = 100,
    guild_id: int | None = None,
) -> Payer:
    """A member with a wallet holding `coins`, as the payer of jobs costing `cost` (where the
    catalog sets no price) within `max_jobs` (the service's own limit applies too)."""
    user, wallet = await member(db, discord_id, coins, guild_id)
    return Payer(user.id, wallet.id, guild_id, cost, max_jobs, wallet.coins)


async def coins_of(db: Database, payer: Payer) -> int:
    """The payer's wallet balance now."""
    wallet = await WalletRepository(db).get(payer.wallet_id)
    assert wallet is not None
    return wallet.coins


async def job_row(db: Database, job_id: str) -> JobRow:
    """The job as stored (it must exist)."""
    row = await JobRepository(db).get(job_id)
    assert row is not None, f"job {job_id} is not in the jobs table"
    return row


async def ledger_of(db: Database, job_id: str) -> list[tuple[str, int]]:
    """The job's ledger rows, oldest first, as (kind, delta): a paid job that failed reads
    [("GENERATION", -cost), ("REFUND", cost)], charged and refunded exactly once."""
    rows = await db.fetchall(
        "SELECT kind, delta FROM coin_transactions WHERE job_id = ? ORDER BY seq", (job_id,)
    )
    return [(str(row["kind"]), int(row["delta"])) for row in rows]


async def unfinished_jobs(db: Database) -> list[JobRow]:
    """Jobs still PENDING or PROCESSING (none may be left once a test's work has ended)."""
    return await JobRepository(db).list_unfinished()


async def image_rows(db: Database) -> int:
    """How many image rows exist (a failed or unfinished job leaves none)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM images"))


@dataclass
class Services:
    """The money-and-rules services, wired as bot.app wires them."""

    permissions: PermissionService
    accounts: AccountService
    settings: GuildSettingsService
    wallets: WalletService
    members: MemberService


def build_services(
    db: Database,
    *,
    scope: EconomyScope = EconomyScope.GUILD,
    admins: frozenset[int] = frozenset(),
    allowed: frozenset[int] = frozenset(),
    **overrides: Any,
) -> Services:
    settings = Settings(discord_token=SecretStr("x"), **overrides)
    permissions = PermissionService(scope=scope, admin_user_ids=admins, allowed_guild_ids=allowed)
    accounts = AccountService(UserRepository(db), permissions)
    guild_settings = GuildSettingsService(
        GuildSettingsRepository(db), permissions, accounts,
        defaults=GuildSettingsService.defaults_from(settings), scope=scope,
        max_coins=settings.max_grant,
    )  # fmt: skip
    wallets = WalletService(
        wallets=WalletRepository(db, max_balance=settings.max_balance),
        images=ImageRepository(db, max_balance=settings.max_balance), accounts=accounts,
        settings=guild_settings, permissions=permissions, scope=scope,
        max_grant=settings.max_grant,
    )  # fmt: skip
    members = MemberService(
        accounts=accounts, settings=guild_settings, wallets=wallets, permissions=permissions
    )
    return Services(permissions, accounts, guild_settings, wallets, members)
