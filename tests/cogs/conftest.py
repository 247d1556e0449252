"""End-to-end harness: the real NanoBananaBot, logged in to the fake Discord, generating through
the real client against the fake Nano Banana API, on a real SQLite file and a local store.

The world has two servers: "Banana Club" (alice, bob, a moderator, a bot account, and `owner2`
as a plain member) and "Other Club", owned by `owner2` (so a moderator there).
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
from PIL import Image as PILImage

from bot.app import NanoBananaBot
from bot.config import Settings, load_settings
from bot.services.members import Payer, Purpose
from bot.services.permissions import Identity
from storage.jobs import JobRow
from storage.objects import ObjectStore
from tests.conftest import fresh_database, shared_pg_server
from tests.fakes.discord_server import (
    FakeDiscord,
    FakeGuild,
    FakeMessage,
    FakeUser,
    InteractionRecord,
    running_bot,
)
from tests.fakes.nanobanana_server import FakeNanobanana

MANAGE_GUILD = discord.Permissions(manage_guild=True).value


def png(width: int = 64, height: int = 48, colour: str = "orange") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Harness:
    """Everything a cog test touches."""

    fake: FakeDiscord
    api: FakeNanobanana
    settings: Settings
    guild: FakeGuild
    alice: FakeUser
    bob: FakeUser
    mod: FakeUser
    robot: FakeUser
    stack: AsyncExitStack
    other: FakeGuild
    owner2: FakeUser
    bot: NanoBananaBot | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def app(self) -> NanoBananaBot:
        assert self.bot is not None, "the bot is not running"
        return self.bot

    async def start_bot(
        self, store: ObjectStore | None = None, *, web: bool = False, **overrides: Any
    ) -> NanoBananaBot:
        """Start a fresh bot process-equivalent on the same database and storage; `web`
        runs its web server on a free port (`app.web.url`)."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        bot = NanoBananaBot(
            settings, store=store, web_listen=0 if web else None, guild_ready_timeout=0
        )
        self.bot = await self.stack.enter_async_context(running_bot(self.fake, bot))
        return bot

    async def settle(self) -> None:
        """Until every job has been stored (results are shown before they are stored)."""
        async with asyncio.timeout(30):
            await self.app.generation.wait_idle()

    async def stop_bot(self) -> None:
        """Close the running bot (graceful: queued jobs are refunded)."""
        assert self.bot is not None
        await self.bot.close()
        self.bot = None

    async def balance(self, user: FakeUser, guild: FakeGuild | None = None) -> int:
        """The user's coins in `guild` (default: the first server; the global wallet with
        ECONOMY_SCOPE=global); a wallet the bot never opened counts as untouched (the starter
        amount, with no ledger movement)."""
        app = self.app
        found = await app.accounts.find(user.id)
        wallet = None
        if found is not None:
            wallet = await app.wallets.peek(found, (guild or self.guild).id)
        if wallet is None:
            return self.settings.starter_coins
        return wallet.coins

    async def payer(
        self, user: FakeUser, guild: FakeGuild | None = None, purpose: Purpose = Purpose.UPLOAD
    ) -> Payer:
        """`user` as a member of `guild` (default: the first), paying for `purpose` there."""
        where = guild or self.guild
        identity = Identity(
            user.id, user.username, locale="en-US", guild_id=where.id,
            channel_id=where.default_channel.id,
        )  # fmt: skip
        member = await self.app.members.enter(identity)
        return await self.app.members.payer(member, purpose)

    async def user_id(self, user: FakeUser) -> str:
        found = await self.app.accounts.find(user.id)
        assert found is not None, f"{user.username} has no account"
        return found.id

    async def rows(self, table: str) -> int:
        return int(await self.app.db.fetchval(f"SELECT COUNT(*) FROM {table}"))

    async def counts(self) -> dict[str, int]:
        """Rows of every table a command could write, and objects in storage."""
        tables = ("users", "wallets", "coin_transactions", "images", "jobs", "guild_settings",
                  "guild_settings_changes")  # fmt: skip
        counts = {table: await self.rows(table) for table in tables}
        counts["objects"] = len(await self.objects())
        return counts

    async def objects(self) -> list[str]:
        return await self.app.store.list()

    async def crashed_job(
        self,
        user: FakeUser,
        prompt: str,
        *,
        cost: int = 100,
        told: bool = True,
        processing: bool = False,
    ) -> JobRow:
        """An image job as a process that crashed left it: paid for, PENDING (or PROCESSING),
        owned by no live process; `told`: it names the channel it was asked in (the member
        hears of its refund there)."""
        payer = await self.payer(user, purpose=Purpose.GENERATE)
        channel = self.guild.default_channel
        context = {"channel_id": channel.id, "guild_id": self.guild.id} if told else {}
        jobs = self.app.engine.jobs
        reservation = await jobs.reserve(
            kind="image", user_id=payer.user_id, wallet_id=payer.wallet_id, cost=cost,
            guild_id=self.guild.id if told else None,
            request={"prompt": prompt, **({"context": context} if context else {})},
            lease_owner="crashed-process",
        )  # fmt: skip
        job = reservation.job
        if processing:
            await self.app.db.execute(
                "UPDATE jobs SET status = 'PROCESSING' WHERE id = ?", (job.id,)
            )
        return job

    async def unfinished_jobs(self) -> list[JobRow]:
        return await self.app.engine.jobs.list_unfinished()


def private_answer(rec: InteractionRecord) -> FakeMessage | None:
    """The private answer to a request, if there is one yet: the first response itself (a
    refusal before any await), or the followup that replaced the public job message (a
    refusal after it, which also deletes that message)."""
    original = rec.original
    shown = original is not None and bool(original.content or original.embeds)
    if original is not None and original.ephemeral and not original.deleted and shown:
        return original
    return next((m for m in rec.followups if m.ephemeral), None)


async def refusal(rec: InteractionRecord, timeout: float = 10) -> FakeMessage:
    """Wait for the private answer of a refused request (see `private_answer`)."""
    await rec.wait_for(lambda r: private_answer(r) is not None, timeout)
    answer = private_answer(rec)
    assert answer is not None
    if rec.original is not None and not rec.original.ephemeral:
        assert rec.original.deleted, "a refusal must not leave the public job message behind"
    return answer


async def outcome(rec: InteractionRecord, timeout: float = 15) -> FakeMessage:
    """A job's first visible outcome: its image, or the private answer of a refusal (before
    or after the first response)."""

    def found(r: InteractionRecord) -> FakeMessage | None:
        original = r.original
        shown = original is not None and not original.deleted
        if shown and any(n.startswith("nanobanana-") for n in original.filenames):  # type: ignore[union-attr]
            return original
        return private_answer(r)

    await rec.wait_for(lambda r: found(r) is not None, timeout)
    message = found(rec)
    assert message is not None
    return message


def make_settings(tmp_path: Path, api: FakeNanobanana, *guild_ids: int) -> Settings:
    return load_settings(
        discord_token="fake-bot-token",
        discord_guild_ids=list(guild_ids),
        admin_user_ids=[],
        database_path=tmp_path / "bot.db",
        local_storage_dir=tmp_path / "objects",
        gemini_api_key="test-key",
        nanobanana_base_url=api.base_url,
        nanobanana_max_attempts=1,
        nanobanana_timeout=10,
        generation_cost=100,
        starter_coins=300,
        max_grant=1000,
        max_upload_bytes=1_000_000,
        max_prompt_chars=200,
        max_concurrent_generations=2,
        max_jobs_per_user=2,
        # Storage trouble is retried this long before a job fails: short, so tests are quick.
        job_retry_seconds=1.0,
        # No web server unless a test asks for one (Harness.start_bot(web=True), any free port).
        web_port=0,
    )


async def make_harness(
    stack: AsyncExitStack, tmp_path: Path, *, web: bool = False, **overrides: Any
) -> Harness:
    """The world described above, with the bot started (its web server too with `web`)."""
    fake = await stack.enter_async_context(FakeDiscord())
    api = await stack.enter_async_context(FakeNanobanana(image_size=256))
    guild = fake.add_guild("Banana Club")
    alice = fake.add_user("alice", guilds=[guild])
    bob = fake.add_user("bob", guilds=[guild])
    mod = fake.add_user("mod", guilds=[])
    fake.add_member(guild, mod, permissions=MANAGE_GUILD)
    robot = fake.add_user("robot", bot=True, guilds=[guild])
    owner2 = fake.add_user("owner2", guilds=[guild])
    other = fake.add_guild("Other Club", owner=owner2)
    settings = make_settings(tmp_path, api, guild.id, other.id)
    if os.environ.get("TEST_DATABASE") == "postgresql":
        # The end-to-end tests on PostgreSQL too (TEST_DATABASE=postgresql make test).
        url = await stack.enter_async_context(fresh_database(shared_pg_server()))
        settings = load_settings(**{**settings.model_dump(), "database_url": url})
    if overrides:
        settings = load_settings(**{**settings.model_dump(), **overrides})
    harness = Harness(
        fake, api, settings, guild, alice, bob, mod, robot, stack, other=other, owner2=owner2
    )
    await harness.start_bot(web=web)
    return harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with AsyncExitStack() as stack:
        yield await make_harness(stack, tmp_path)
