"""A seeded storm of operations against the real bot, with faults and hard kills.

The bot runs in child processes (tests/reliability/bot_process.py) so that one can be killed
with SIGKILL mid-flight and started again on the same database and storage. With one process
it runs every shard on a SQLite file; with several (`processes=2`...) each runs its own Discord
shards (the first two shards, then one each) and they share one PostgreSQL database
(`database_url`) and one object store. The fake Discord (routing each server's events to its
shard's process) and the fake Nano Banana API run here. Members use the bot in servers spread
over the shards (most members are in two of them), each server with its own moderator, in
either economy scope. While operations run, the API fails 30% of calls in assorted ways and the
object store fails 10% of writes. At the end the invariants are checked on the database and
the storage, wallet by wallet, and returned as figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import discord
from PIL import Image as PILImage

from bot.nanobanana.wire import parse_usage
from bot.services.jobs import INTERRUPTED
from bot.services.pricing import PriceTable, UsageCounts, micros
from storage.db import Database
from storage.images import history_keys
from storage.objects import LocalObjectStore, ObjectStore
from storage.open import open_database
from storage.usage import Cap, CapKind, UsageRepository
from tests.fakes.discord_server import (
    FakeDiscord,
    FakeGuild,
    FakeMessage,
    FakeUser,
    InteractionRecord,
)
from tests.fakes.nanobanana_server import Behaviour, FakeNanobanana, Mode
from tests.reliability.scrape import Sample, Scraper

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)
MANAGE_GUILD = discord.Permissions(manage_guild=True).value
OWNED_PREFIXES = ("images/", "thumbnails/", "inputs/")

# Weights of the operation mix.
MIX = {
    "generate": 26,
    # issue 23: /generate count: (a job per image, one message) and the Variations button.
    "batch": 6,
    "variations": 4,
    "reroll": 10,
    "edit": 8,
    "upload": 11,
    "delete": 8,
    "grant": 8,
    "gallery": 10,
    "coins": 6,
    "daily": 4,
    "settings": 2,
    "help": 1,
    # Cancel a waiting job (issue 23): its owner mostly, sometimes its server's moderator or
    # another member (refused).
    "cancel": 4,
    # /pay (issue 23): to another member of the server, sometimes more than the payer has,
    # sometimes to themselves (refused, free).
    "pay": 4,
}
SERVERS = 3
COSTS = ("10", "20", "30")


@dataclass
class Figures:
    """What a run did and what it found."""

    operations: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    interactions_sent: int = 0
    interactions_answered: int = 0
    unanswered_while_alive: list[str] = field(default_factory=list)
    in_flight_at_kill: int = 0
    kills: int = 0
    restarts: int = 0
    api_calls: int = 0
    api_failures_injected: int = 0
    scope: str = "guild"
    servers: int = 0
    users: int = 0
    wallets: int = 0
    ledger_rows: int = 0
    ledger_mismatches: int = 0
    transfers: int = 0  # TRANSFER ledger rows (two a payment)
    negative_wallets: int = 0
    double_refunds: int = 0
    orphans: int = 0
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    failed_generations: int = 0
    refunded_at_restart: int = 0
    interrupted_notices: int = 0
    discord_429s: int = 0  # rate-limit answers the bot had to ride out
    late_answers: int = 0  # first answers after Discord's 3 s (404 10062)
    refund_rows: int = 0
    objects: int = 0
    processes: int = 1
    shards: int = 1
    backend: str = "sqlite"
    refunded_and_delivered: int = 0
    # Shown, then not stored (storage failed for good, or the process was killed first):
    # refunded by design.
    delivered_unsaved: int = 0
    stuck_jobs: int = 0
    # What the images cost the host: Google's bill (every answer with images the fake API
    # gave, priced by the table) and the bot's own books, against the budgets.
    budget_usd: str = ""
    api_spend_micros: int = 0
    billed_micros: int = 0
    overrun_allowance_micros: int = 0
    budget_refusals: int = 0
    server_caps: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # With `metrics`: scrapes of /metrics made while it ran, the slowest, the last scrape of
    # every process summed, and the database's own figures at that moment.
    scrapes: int = 0
    scrape_seconds: list[float] = field(default_factory=list)
    scrape_seconds_max: float = 0.0
    metrics: dict[Sample, float] = field(default_factory=dict)
    database_counts: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        return json.dumps(
            {
                "seconds": round(self.seconds, 1),
                "backend": self.backend,
                "processes": self.processes,
                "shards": self.shards,
                "scope": self.scope,
                "servers": self.servers,
                "operations": dict(self.operations),
                "outcomes": dict(self.outcomes),
                "interactions_sent": self.interactions_sent,
                "interactions_answered": self.interactions_answered,
                "in_flight_at_kill": self.in_flight_at_kill,
                "kills": self.kills,
                "restarts": self.restarts,
                "api_calls": self.api_calls,
                "users": self.users,
                "wallets": self.wallets,
                "ledger_rows": self.ledger_rows,
                "ledger_mismatches": self.ledger_mismatches,
                "transfer_rows": self.transfers,
                "negative_wallets": self.negative_wallets,
                "double_refunds": self.double_refunds,
                "orphans": self.orphans,
                "stuck_jobs": self.stuck_jobs,
                "refunded_and_delivered": self.refunded_and_delivered,
                "delivered_unsaved": self.delivered_unsaved,
                "jobs_by_status": self.jobs_by_status,
                "failed_generations": self.failed_generations,
                "refunded_at_restart": self.refunded_at_restart,
                "interrupted_notices": self.interrupted_notices,
                "discord_429s": self.discord_429s,
                "late_answers": self.late_answers,
                "refund_rows": self.refund_rows,
                "objects": self.objects,
                "budget_usd": self.budget_usd,
                "api_spend_micros": self.api_spend_micros,
                "billed_micros": self.billed_micros,
                "overrun_allowance_micros": self.overrun_allowance_micros,
                "budget_refusals": self.budget_refusals,
                "server_caps": self.server_caps,
                "scrapes": self.scrapes,
                "scrape_seconds_max": round(self.scrape_seconds_max, 3),
                "database_counts": self.database_counts,
                "problems": self.problems,
            },
            indent=2,
        )


def _png(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    colour = tuple(rng.randrange(256) for _ in range(3))
    PILImage.new("RGB", (rng.randrange(16, 96), rng.randrange(16, 96)), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _has_image(message: FakeMessage) -> bool:
    return any(name.startswith("nanobanana-") for name in message.filenames)


class BotProcess:
    """One bot process (over `shard_ids`, or every shard): start, wait until it answers in
    `probe_guild`, kill or stop it."""

    def __init__(
        self,
        fake: FakeDiscord,
        env: dict[str, str],
        log_path: Path,
        *,
        shard_ids: list[int] | None = None,
        probe_guild: FakeGuild | None = None,
    ) -> None:
        self.fake = fake
        self.env = env
        self.log_path = log_path
        self.shard_ids = shard_ids
        self.probe_guild = probe_guild
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, probe_user: FakeUser) -> None:
        identifies = len(self.fake.identifies)
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.reliability.bot_process",
            env=self.env, cwd=str(ROOT), stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 90
        shards = self.shard_ids or [0]

        def connected() -> bool:
            if len(self.fake.identifies) < identifies + len(shards):
                return False
            return self.fake.shards_connected(shards) if self.shard_ids else self.fake.connected

        while not connected():
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start; see {self.log_path}:\n{self.tail()}")
            await asyncio.sleep(0.05)
        # Ready when it answers: GUILD_CREATE handling and cog loading are done by then.
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot does not answer; see {self.log_path}:\n{self.tail()}")
            try:
                rec = await self.fake.slash("coins", {}, user=probe_user, guild=self.probe_guild)
            except LookupError:
                # This server's commands are synced by shard 0's process, maybe still at it.
                await asyncio.sleep(0.2)
                continue
            with contextlib.suppress(TimeoutError):
                await rec.wait_callback(timeout=5)
                return

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self) -> int:
        """SIGTERM: the bot closes gracefully (running jobs finish, queued ones refunded)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Scenario:
    """Drives the operation mix and tracks every interaction sent."""

    def __init__(self, fake: FakeDiscord, api: FakeNanobanana, rng: random.Random) -> None:
        self.fake = fake
        self.api = api
        self.rng = rng
        self.figures = Figures()
        self.members: list[FakeUser] = []
        self.guilds: list[FakeGuild] = []
        self.mods: dict[int, FakeUser] = {}  # guild id -> its moderator (Manage Server)
        self.admin: FakeUser | None = None  # in ADMIN_USER_IDS, Manage Server nowhere
        self.results: list[tuple[FakeMessage, FakeUser]] = []  # messages with job buttons
        self.jobs: list[tuple[InteractionRecord, FakeUser]] = []  # paid orders, newest last
        self.records: list[tuple[InteractionRecord, str, int]] = []  # (record, op, epoch)
        self._settled = 0  # records before this index already settled
        self._followers: set[asyncio.Future[None]] = set()
        self.epoch = 0  # bumps at every kill: interactions of a dead epoch may go unanswered

    async def run_op(self, op: str) -> None:
        """One operation; never raises for the bot's refusals (those are valid answers)."""
        self.figures.operations[op] += 1
        user = self.rng.choice(self.members)
        # A server this member is in.
        guild = self.rng.choice([g for g in self.guilds if user.id in g.members])
        fake = self.fake
        if op == "generate":
            options: dict[str, Any] = {"prompt": f"scene {self.rng.randrange(10**6)}"}
            if self.rng.random() < 0.15:
                options["image"] = fake.upload(_png(self.rng), "in.png")
            if self.rng.random() < 0.3:
                options["aspect_ratio"] = self.rng.choice(["16:9", "3:4", "1:1"])
            rec = await fake.slash("generate", options, user=user, guild=guild)
            await self._track(rec, op, user)
        elif op == "batch":
            # Two fit a member's two job slots here; three are refused (privately, free).
            count = self.rng.choice([2, 2, 2, 3])
            options = {"prompt": f"batch {self.rng.randrange(10**6)}", "count": count}
            rec = await fake.slash("generate", options, user=user, guild=guild)
            await self._track(rec, op, user)
        elif op == "upload":
            rec = await fake.slash("upload", {"image": fake.upload(_png(self.rng), "up.png")},
                                   user=user, guild=guild)  # fmt: skip
            await self._track(rec, op, user)
        elif op in ("gallery", "coins", "daily", "help"):
            await self._track(await fake.slash(op, {}, user=user, guild=guild), op, user)
        elif op == "grant":
            assert self.admin is not None
            # The server's moderator (refused in the global economy) or a bot admin.
            granter = self.mods[guild.id] if self.rng.random() < 0.7 else self.admin
            amount = self.rng.choice([50, 100, 250, 0, 5000])  # 0 and 5000 are refused
            rec = await fake.slash("grant", {"user": user, "amount": amount}, user=granter,
                                   guild=guild)  # fmt: skip
            await self._track(rec, op, user)
        elif op == "settings":
            # A moderator changes the cost of an image in their server (members may not).
            setter = self.mods[guild.id] if self.rng.random() < 0.8 else user
            options = {"setting": "generation_cost", "value": self.rng.choice(COSTS)}
            rec = await fake.slash("settings set", options, user=setter, guild=guild)
            await self._track(rec, op, setter)
        elif op == "cancel":
            await self._cancel(user)
        elif op == "pay":
            others = [m for m in self.members if m.id in guild.members and m.id != user.id]
            to = user if not others or self.rng.random() < 0.05 else self.rng.choice(others)
            amount = self.rng.choice([1, 5, 20, 20, 10**6])  # a million: over any balance
            rec = await fake.slash("pay", {"member": to, "amount": amount}, user=user,
                                   guild=guild)  # fmt: skip
            await self._track(rec, op, user)
        elif op in ("reroll", "edit", "delete", "variations"):
            live = [(m, o) for m, o in self.results if not m.deleted and m.buttons()]
            if not live:
                self.figures.outcomes[f"{op}:nothing_to_press"] += 1
                return
            message, owner = self.rng.choice(live)
            presser = owner if self.rng.random() < 0.85 else user
            name = {"reroll": "Reroll", "edit": "Edit", "delete": "Delete",
                    "variations": "Variations"}[op]  # fmt: skip
            # A single result's button, or one image's of a batch ("Reroll 2").
            labels = [
                str(b.get("label"))
                for b in message.buttons()
                if b.get("label") == name or str(b.get("label")).startswith(f"{name} ")
            ]
            if not labels:
                self.figures.outcomes[f"{op}:no_button"] += 1
                return
            rec = await fake.click(message, label=self.rng.choice(labels), user=presser)
            if op == "edit" and presser is owner:
                await self._edit(rec, owner)
            await self._track(rec, op, presser)
            if op == "delete":
                await self._confirm_delete(rec, presser)

    async def _cancel(self, user: FakeUser) -> None:
        """Press Cancel under a recent job that still shows one (it is waiting)."""
        waiting = []
        for rec, owner in self.jobs[-60:]:
            message = rec.original
            if message is None or message.deleted:
                continue
            cancel = next((c for c in message.custom_ids() if c.startswith("nb:cancel:")), None)
            if cancel is not None:
                waiting.append((message, cancel, owner))
        if not waiting:
            self.figures.outcomes["cancel:nothing_to_press"] += 1
            return
        message, custom_id, owner = self.rng.choice(waiting)
        draw = self.rng.random()
        presser = owner
        if draw > 0.9 and message.guild_id in self.mods:
            presser = self.mods[message.guild_id]
        elif draw > 0.8:
            presser = user  # anyone: refused unless it is their own job
        rec = await self.fake.click(message, custom_id, user=presser)
        await self._track(rec, "cancel", presser)

    async def _confirm_delete(self, rec: InteractionRecord, presser: FakeUser) -> None:
        """Delete asks first (privately): confirm it, as a member would."""
        epoch = self.epoch
        try:
            asked = await rec.wait_original(timeout=10)
        except TimeoutError:
            return  # the bot died: tracked anyway
        if epoch != self.epoch or not asked.buttons():
            return  # refused (not theirs, deleted already)
        confirm = await self.fake.click(asked, label="Delete for good", user=presser)
        await self._track(confirm, "delete_confirm", presser)

    async def _edit(self, rec: InteractionRecord, owner: FakeUser) -> None:
        epoch = self.epoch
        try:
            modal = await rec.wait_modal(timeout=10)
        except TimeoutError:
            return  # answered otherwise (e.g. image deleted), or the bot died: tracked anyway
        if epoch != self.epoch:
            return
        instruction = self.rng.choice(["make it blue", "add a hat", "  "])
        submitted = await self.fake.submit_modal(modal, {"instruction": instruction}, user=owner)
        await self._track(submitted, "edit_submit", owner)

    async def _track(self, rec: InteractionRecord, op: str, user: FakeUser) -> None:
        self.figures.interactions_sent += 1
        self.records.append((rec, op, self.epoch))
        if op in ("generate", "batch", "reroll", "variations", "edit_submit"):
            self.jobs.append((rec, user))
            task = asyncio.ensure_future(self._follow_job(rec, user, self.epoch))
            self._followers.add(task)
            task.add_done_callback(self._followers.discard)

    async def _follow_job(self, rec: InteractionRecord, user: FakeUser, epoch: int) -> None:
        """Remember result messages, so later operations can press their buttons."""
        with contextlib.suppress(TimeoutError):
            message = await rec.wait_message(
                lambda m: _has_image(m) or m.ephemeral or "cancelled this job" in m.content,
                timeout=120,
            )
            if _has_image(message) and epoch == self.epoch:
                self.results.append((message, user))

    async def settle(self, timeout: float = 120) -> None:
        """Wait until every interaction of the live epoch got its first answer, and every
        generation its outcome."""
        started = time.monotonic()
        deadline = started + timeout
        for rec, op, epoch in self.records[self._settled :]:
            if epoch != self.epoch:
                continue
            remaining = max(0.1, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await rec.wait_callback(timeout=remaining)
            if op in ("generate", "batch", "reroll", "variations", "edit_submit") and rec.responded:
                with contextlib.suppress(TimeoutError):
                    await rec.wait_message(
                        lambda m: _has_image(m) or m.ephemeral or "refunded" in m.content,
                        timeout=max(0.1, deadline - time.monotonic()),
                    )
            if op == "upload" and rec.responded:
                # An upload answers "thinking" first; it is done at its real answer. (A stop
                # while one is still storing leaves its objects to the next start-up's
                # reconciliation, which a final stop never reaches.)
                with contextlib.suppress(TimeoutError):
                    await rec.wait_message(
                        lambda m: not m.loading, timeout=max(0.1, deadline - time.monotonic())
                    )
            if time.monotonic() - started > 5:
                log.warning("slow to settle: %s %s", op, rec.describe()[:400])
        self._settled = len(self.records)

    def account(self) -> None:
        """Count answers; an interaction of a killed epoch may legitimately have none."""
        for rec, op, epoch in self.records:
            if rec.responded:
                self.figures.interactions_answered += 1
                self.figures.outcomes[f"{op}:{_outcome(rec)}"] += 1
            elif epoch != self.epoch or self._was_in_flight(rec, epoch):
                self.figures.in_flight_at_kill += 1
            else:
                self.figures.unanswered_while_alive.append(f"{op} {rec.describe()[:300]}")

    def _was_in_flight(self, rec: InteractionRecord, epoch: int) -> bool:
        return epoch < self.epoch


def _outcome(rec: InteractionRecord) -> str:
    """How an interaction ended, from every version of its messages (a later Delete edits a
    result message in place, so the latest version alone would hide the image)."""
    versions = [m for m in (*rec.messages, *rec.edits) if not m.loading]
    if any(_has_image(m) for m in versions):
        return "image"
    if rec.modal is not None:
        return "modal"
    text = " ".join(m.content for m in versions)
    if "for good?" in text:
        return "asked_to_confirm"
    if "cancelled this job" in text:
        return "cancelled_refunded"
    if "The member was refunded" in text:
        return "cancelled_by_moderator"
    if "refunded" in text:
        return "failed_refunded"
    for phrase, name in (
        ("image budget", "refused_budget"),
        ("images for today", "refused_budget"),
        ("You need", "refused_coins"),
        ("in progress", "refused_job_limit"),
        ("Slow down", "refused_cooldown"),
        ("images at once", "refused_batch_size"),
        ("isn't yours", "refused_not_yours"),
        ("Granted", "granted"),
        ("deleted", "deleted"),
        ("You claimed", "claimed"),
        ("already claimed", "refused_daily"),
        ("is now", "setting_changed"),
        ("already started", "refused_started"),
        ("already ended", "refused_ended"),
        ("Only", "refused_not_allowed"),
        ("only the bot's admins", "refused_not_allowed"),
    ):
        if phrase in text:
            return name
    if any(m.ephemeral for m in versions):
        return "ephemeral"
    return "answered"


async def check_invariants(
    db: Database,
    objects_dir: Path | ObjectStore,
    figures: Figures,
    *,
    scope: str = "guild",
    delivered: set[str] | None = None,
) -> None:
    """The money and storage invariants, counted in `figures` and listed in its problems.
    `delivered`: short ids of the images members received (none may have been refunded)."""
    problems = figures.problems
    figures.users = int(await db.fetchval("SELECT COUNT(*) FROM users"))
    wallets = await db.fetchall(
        "SELECT w.id, w.coins, w.guild_id, COALESCE(SUM(t.delta), 0) AS total "
        "FROM wallets w LEFT JOIN coin_transactions t ON t.wallet_id = w.id GROUP BY w.id"
    )
    figures.wallets = len(wallets)
    for row in wallets:
        if row["coins"] < 0:
            figures.negative_wallets += 1
            problems.append(f"wallet {row['id']} has a negative balance")
        if row["coins"] != row["total"]:
            figures.ledger_mismatches += 1
            problems.append(f"wallet {row['id']}: coins {row['coins']} != ledger {row['total']}")
    stale = await db.fetchval(
        "SELECT COUNT(*) FROM wallets w WHERE (SELECT t.balance_after FROM "
        "coin_transactions t WHERE t.wallet_id = w.id ORDER BY t.seq DESC LIMIT 1) "
        "!= w.coins"
    )
    if stale:
        figures.ledger_mismatches += int(stale)
        problems.append(f"{stale} wallets whose newest ledger row is not their balance")
    strangers = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions t JOIN wallets w ON w.id = t.wallet_id "
        "WHERE t.user_id != w.user_id"
    )
    if strangers:
        figures.ledger_mismatches += int(strangers)
        problems.append(f"{strangers} ledger rows naming another member than their wallet's")
    # A payment is two TRANSFER rows in one transaction: together they add up to nothing.
    transferred = await db.fetchval(
        "SELECT COALESCE(SUM(delta), 0) FROM coin_transactions WHERE kind = 'TRANSFER'"
    )
    if transferred:
        figures.ledger_mismatches += 1
        problems.append(f"payments created or destroyed {transferred} coins")
    figures.transfers = int(
        await db.fetchval("SELECT COUNT(*) FROM coin_transactions WHERE kind = 'TRANSFER'")
    )
    negative_rows = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions WHERE balance_after < 0"
    )
    if negative_rows:
        figures.negative_wallets += int(negative_rows)
        problems.append(f"{negative_rows} ledger rows with a negative balance_after")
    if scope == "global":
        scoped = await db.fetchval("SELECT COUNT(*) FROM wallets WHERE guild_id IS NOT NULL")
        if scoped:
            problems.append(f"{scoped} per-server wallets in the global economy")
    else:
        elsewhere = await db.fetchval(
            "SELECT COUNT(*) FROM jobs j JOIN wallets w ON w.id = j.wallet_id "
            "WHERE w.guild_id IS DISTINCT FROM j.guild_id"
        )
        if elsewhere:
            problems.append(f"{elsewhere} jobs paid from another server's wallet")
    figures.servers = int(await db.fetchval("SELECT COUNT(DISTINCT guild_id) FROM jobs"))
    figures.ledger_rows = int(await db.fetchval("SELECT COUNT(*) FROM coin_transactions"))
    status_rows = await db.fetchall("SELECT status, COUNT(*) AS n FROM jobs GROUP BY 1")
    figures.jobs_by_status = {r["status"]: r["n"] for r in status_rows}
    unfinished = figures.jobs_by_status.get("PENDING", 0) + figures.jobs_by_status.get(
        "PROCESSING", 0
    )
    unstored = await db.fetchval("SELECT COUNT(*) FROM images WHERE status <> 'COMPLETED'")
    if unstored:
        problems.append(f"{unstored} image rows that are not COMPLETED (jobs make only those)")
    figures.stuck_jobs = unfinished
    if unfinished:
        problems.append(f"{unfinished} jobs left PENDING/PROCESSING")
    refunds = await db.fetchall(
        "SELECT j.id, j.cost AS coins_used, j.error, j.refund_owed, "
        "(SELECT COUNT(*) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'REFUND') AS refunds, "
        "(SELECT COALESCE(SUM(delta), 0) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'REFUND') AS refunded, "
        "(SELECT COUNT(*) FROM coin_transactions t WHERE t.job_id = j.id "
        " AND t.kind = 'REFUND' AND t.wallet_id IS DISTINCT FROM j.wallet_id) AS misdirected "
        "FROM jobs j WHERE j.kind = 'image' AND j.status = 'FAILED'"
    )
    figures.failed_generations = len(refunds)
    for row in refunds:
        expected = 1 if row["coins_used"] else 0
        if row["refunds"] > 1:
            figures.double_refunds += 1
        if delivered is not None and row["id"][:8] in delivered:
            # Delivery comes first: an answer shown whose storing then failed for good, or
            # whose process was killed before it was stored, is refunded by design (the
            # member keeps the picture, not a gallery entry). Any other failure must not
            # have been shown.
            error = str(row["error"] or "")
            if error.startswith(("storage", "interrupted")):
                figures.delivered_unsaved += 1
            else:
                figures.refunded_and_delivered += 1
                problems.append(f"failed image {row['id']} was refunded and delivered ({error})")
        if row["refunds"] != expected or row["refunded"] != row["coins_used"]:
            problems.append(
                f"failed job {row['id']}: {row['refunds']} refunds of "
                f"{row['refunded']} for cost {row['coins_used']}"
            )
        if row["misdirected"]:
            problems.append(f"failed job {row['id']}: refunded to another wallet")
    figures.refunded_at_restart = int(
        await db.fetchval(
            "SELECT COUNT(*) FROM jobs WHERE status = 'FAILED' AND error = ?", (INTERRUPTED,)
        )
    )
    figures.refund_rows = int(
        await db.fetchval("SELECT COUNT(*) FROM coin_transactions WHERE kind = 'REFUND'")
    )
    wrong_refunds = await db.fetchval(
        "SELECT COUNT(*) FROM coin_transactions t LEFT JOIN jobs j ON j.id = t.job_id "
        "WHERE t.kind = 'REFUND' AND (j.id IS NULL OR j.status != 'FAILED')"
    )
    if wrong_refunds:
        problems.append(f"{wrong_refunds} refunds of jobs that did not fail")
    completed = await db.fetchall(
        "SELECT id, storage_key, thumbnail_key, metadata FROM images WHERE status='COMPLETED'"
    )
    referenced: set[str] = set()
    for row in await db.fetchall(
        "SELECT storage_key, thumbnail_key, metadata FROM images"
    ):  # fmt: skip
        referenced.update(k for k in (row["storage_key"], row["thumbnail_key"]) if k)
        metadata = json.loads(row["metadata"])
        referenced.update(metadata.get("input_keys") or [])
        # A thinking model's edits keep the earlier turn's images too (metadata.history).
        referenced.update(history_keys(metadata.get("history")))
    store = LocalObjectStore(objects_dir) if isinstance(objects_dir, Path) else objects_dir
    present: set[str] = set()
    for prefix in OWNED_PREFIXES:
        present.update(await store.list(prefix))
    figures.objects = len(present)
    for row in completed:
        for key in (row["storage_key"], row["thumbnail_key"]):
            if not key or key not in present:
                problems.append(f"completed image {row['id']} is missing object {key}")
        metadata = json.loads(row["metadata"])
        for key in [*(metadata.get("input_keys") or []), *history_keys(metadata.get("history"))]:
            if key not in present:
                problems.append(f"completed image {row['id']} is missing input {key}")
    await check_budgets(db, figures)
    if figures.interrupted_notices != figures.refunded_at_restart:
        problems.append(
            f"{figures.refunded_at_restart} jobs refunded at restart but "
            f"{figures.interrupted_notices} members told"
        )
    orphans = sorted(present - referenced)
    figures.orphans = len(orphans)
    if orphans:
        problems.append(f"{len(orphans)} objects without a row, e.g. {orphans[:3]}")
    if figures.unanswered_while_alive:
        problems.append(
            f"{len(figures.unanswered_while_alive)} interactions got no answer: "
            f"{figures.unanswered_while_alive[:2]}"
        )


def delivered_images(fake: FakeDiscord) -> set[str]:
    """Short ids of every image the bot sent (in interaction messages and channels)."""
    messages = [m for rec in fake.records for m in (*rec.messages, *rec.edits)]
    names = {name for m in (*messages, *fake.channel_log) for name in m.filenames}
    return {n.split("-", 1)[1].split(".")[0] for n in names if n.startswith("nanobanana-")}


def shard_layout(processes: int) -> tuple[int, list[list[int]] | None]:
    """SHARD_COUNT and each process's SHARD_IDS: the first process runs two shards, every
    other one; a single process runs every shard (none given)."""
    if processes <= 1:
        return 1, None
    count = processes + 1
    return count, [[0, 1], *([n] for n in range(2, count))]


def guild_id_on_shard(shard: int, count: int, n: int) -> int:
    """A snowflake whose guild lands on `shard` of `count` ((id >> 22) % count)."""
    base = (1_600_000_000_000 // count) * count + n * count
    return ((base + shard) << 22) | (n + 1)


async def database_counts(db: Database) -> dict[str, float]:
    """What the database says about the figures /metrics counts: jobs completed (every
    charge of a job not refunded: all jobs are paid and none is unfinished by then), refunds,
    the coins they returned, and what the API billed (USD)."""
    charges = await db.fetchval("SELECT COUNT(*) FROM coin_transactions WHERE kind = 'GENERATION'")
    refunds = await db.fetchone(
        "SELECT COUNT(*) AS n, COALESCE(SUM(delta), 0) AS coins FROM coin_transactions "
        "WHERE kind = 'REFUND'"
    )
    assert refunds is not None
    billed = await db.fetchval(
        "SELECT COALESCE(SUM(cost_micros), 0) FROM generation_usage WHERE status = 'BILLED'"
    )
    completed = await db.fetchval(
        "SELECT COUNT(*) FROM images WHERE type = 'GENERATED' AND status = 'COMPLETED'"
    )
    return {
        "jobs_completed": float(int(charges) - int(refunds["n"])),
        "refunds": float(refunds["n"]),
        "refunded_coins": float(refunds["coins"]),
        "spend_usd": int(billed) / 1_000_000,
        "completed_rows": float(completed),
    }


async def unfinished_jobs(db: Database) -> int:
    return int(
        await db.fetchval("SELECT COUNT(*) FROM jobs WHERE status IN ('PENDING', 'PROCESSING')")
    )


async def check_budgets(db: Database, figures: Figures) -> None:
    """No budget was exceeded: what was billed (in the bot's books, and by the API itself)
    stays within each cap, but for what answers cost beyond their reservation's estimate
    (e.g. two images in one answer), which only jobs already running can add."""
    problems = figures.problems
    left = await db.fetchval("SELECT COUNT(*) FROM generation_usage WHERE status = 'RESERVED'")
    if left:
        problems.append(f"{left} budget reservations left RESERVED")
    rows = await db.fetchall(
        "SELECT guild_id, day, month, cost_micros, estimate_micros, images "
        "FROM generation_usage WHERE status = 'BILLED'"
    )
    # Every running total (what the caps are checked against) equals its rows' sum.
    usage = UsageRepository(db)
    for total in await db.fetchall("SELECT scope, kind, period, used FROM budget_totals"):
        scope = str(total["scope"])
        period = Cap(
            CapKind(total["kind"]), 0, str(total["period"]),
            None if scope == "global" else int(scope.split(":")[1]),
        )  # fmt: skip
        if await usage.recount(period) != int(total["used"]):
            problems.append(f"budget total {dict(total)} != {await usage.recount(period)}")
    figures.billed_micros = sum(int(r["cost_micros"]) for r in rows)
    excess = sum(max(0, int(r["cost_micros"]) - int(r["estimate_micros"])) for r in rows)
    figures.overrun_allowance_micros = excess
    budget = micros(Decimal(figures.budget_usd)) if figures.budget_usd else None
    if budget is not None:
        for spent, what in ((figures.billed_micros, "billed"), (figures.api_spend_micros, "API")):
            if spent > budget + excess:
                problems.append(f"{what} spend {spent} µUSD passed MONTHLY_BUDGET_USD {budget}")
    for guild_id, cap in figures.server_caps.items():
        mine = [r for r in rows if r["guild_id"] == guild_id]
        mine_excess = sum(max(0, int(r["cost_micros"]) - int(r["estimate_micros"])) for r in mine)
        if cap.startswith("$"):
            spent = sum(int(r["cost_micros"]) for r in mine)
            if spent > micros(Decimal(cap[1:])) + mine_excess:
                problems.append(f"server {guild_id} spent {spent} µUSD past its {cap} budget")
        else:
            by_day: Counter[str] = Counter()
            for r in mine:
                by_day[r["day"]] += int(r["images"])
            extra = sum(int(r["images"]) - 1 for r in mine)
            if any(n > int(cap) + extra for n in by_day.values()):
                problems.append(f"server {guild_id} made {dict(by_day)} images past its cap {cap}")


def api_spend(api: FakeNanobanana) -> int:
    """What Google would bill for the answers the fake API gave (µUSD)."""
    prices = PriceTable()
    total = 0
    for request in api.requests:
        if request.billed_usage is not None:
            counts = UsageCounts.from_usage(parse_usage(request.billed_usage))
            total += prices.cost(request.model, request.image_size, counts)
    return total


async def run(
    workdir: Path,
    *,
    operations: int,
    seed: int,
    kills: int = 1,
    budget_usd: str = "1.00",
    api_failure_rate: float = 0.3,
    store_failure_rate: float = 0.1,
    api_latency: float = 0.15,
    batch: int = 8,
    scope: str = "guild",
    processes: int = 1,
    database_url: str | None = None,
    lease_seconds: float = 2.0,
    metrics: bool = False,
    during: Callable[[dict[str, str]], Coroutine[Any, Any, None]] | None = None,
    storage_env: dict[str, str] | None = None,
    store: ObjectStore | None = None,
) -> Figures:
    """Run the storm in ECONOMY_SCOPE `scope` over `processes` bot processes (sharing the
    PostgreSQL database at `database_url`, else a SQLite file) and check the invariants;
    returns the figures.

    `metrics`: every process serves /metrics on a port of its own, scraped all along (see
    tests/reliability/scrape.py); the last scrape and the database's figures at that moment
    land in the figures. `during(env)` runs beside the operations from half-way (with the
    first process's environment), and is awaited before the processes stop. `storage_env`
    (settings) and `store` (to check what it holds) put the objects elsewhere than the local
    folder."""
    rng = random.Random(seed)
    started = time.monotonic()
    db_path = workdir / "bot.db"
    objects_dir = workdir / "objects"
    shard_count, shard_ids = shard_layout(processes)
    servers = max(SERVERS, shard_count)
    async with FakeDiscord() as fake, FakeNanobanana(image_size=128) as api:
        scenario = Scenario(fake, api, rng)
        figures = scenario.figures
        figures.scope = scope
        figures.processes, figures.shards = processes, shard_count
        figures.backend = "postgresql" if database_url else "sqlite"
        guilds = [
            fake.add_guild(
                f"Storm {n}",
                id=guild_id_on_shard(n % shard_count, shard_count, n) if shard_ids else None,
            )
            for n in range(servers)
        ]  # fmt: skip
        scenario.guilds = guilds
        for n in range(12):
            # Each member is in all servers but one.
            skip = guilds[n % servers]
            member = fake.add_user(f"user{n}", guilds=[g for g in guilds if g is not skip])
            scenario.members.append(member)
        for n, guild in enumerate(guilds):
            mod = fake.add_user(f"moderator{n}")
            fake.add_member(guild, mod, permissions=MANAGE_GUILD)
            scenario.mods[guild.id] = mod
        scenario.admin = fake.add_user("admin", guilds=guilds)
        api.rng = random.Random(seed + 1)
        api.hang_seconds = 3
        api.failure_modes = [
            Behaviour(Mode.RATE_LIMIT, delay=0.05),
            Behaviour(Mode.UNAVAILABLE),
            Behaviour(Mode.BLOCK_PROMPT, reason="SAFETY"),
            Behaviour(Mode.BLOCK_OUTPUT, reason="IMAGE_SAFETY"),
            Mode.TEXT_ONLY,
            Mode.HANG,
            Mode.MALFORMED_JSON,
            # Shapes only the real API used to send: Google's HTML 502, NO_IMAGE with empty
            # content, several images in one answer, a used-up daily quota.
            Mode.HTML_502,
            Mode.NO_IMAGE,
            Behaviour(Mode.OK, images=2),
            Mode.QUOTA_DAY,
        ]
        api.failure_rate = api_failure_rate
        # Jobs take a moment, so that a kill finds some queued and some running.
        api.latency = api_latency
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "GEMINI"))},
            "PYTHONPATH": str(ROOT),
            "FAKE_DISCORD_URL": fake.base_url,
            "FAKE_GATEWAY_URL": fake.gateway_url,
            "DISCORD_TOKEN": "fake-bot-token",
            "DISCORD_GUILD_IDS": ",".join(str(g.id) for g in guilds),
            "ADMIN_USER_IDS": str(scenario.admin.id),
            "ECONOMY_SCOPE": scope,
            "DAILY_COINS": "40",
            "DATABASE_PATH": str(db_path),
            "DATABASE_URL": database_url or "",
            "LOCAL_STORAGE_DIR": str(objects_dir),
            "GEMINI_API_KEY": "test-key",
            "WEB_PORT": "0",
            "NANOBANANA_BASE_URL": api.base_url,
            "NANOBANANA_TIMEOUT": "0.5",
            "NANOBANANA_MAX_ATTEMPTS": "2",
            "GENERATION_COST": "20",
            "STARTER_COINS": "1000",
            "MAX_GRANT": "1000",
            "MAX_CONCURRENT_GENERATIONS": "3",
            "MAX_JOBS_PER_USER": "2",
            "MAX_UPLOAD_BYTES": "1000000",
            "STORE_FAILURE_RATE": str(store_failure_rate),
            "SHUTDOWN_DEADLINE": "10",
            "JOB_LEASE_SECONDS": str(lease_seconds),
            "DATABASE_POOL_SIZE": "4",
            "LOG_LEVEL": "INFO",
            "MONTHLY_BUDGET_USD": budget_usd,
            **({"METRICS_PORT": "0"} if metrics else {}),
            **(storage_env or {}),
        }
        bots: list[BotProcess] = []
        for n, shards in enumerate(shard_ids or [None]):
            bot_env = {**env, "STORE_FAILURE_SEED": str(seed + 2 + n)}
            if shards is not None:
                bot_env |= {"SHARD_COUNT": str(shard_count),
                            "SHARD_IDS": ",".join(map(str, shards))}  # fmt: skip
            probe = next(g for g in guilds if (g.id >> 22) % shard_count in (shards or [0]))
            bots.append(BotProcess(fake, bot_env, workdir / f"bot{n}.log", shard_ids=shards,
                                   probe_guild=probe))  # fmt: skip
        await asyncio.gather(*(bot.start(scenario.members[1]) for bot in bots))
        figures.restarts += len(bots)
        scraper = Scraper([bot.log_path for bot in bots])
        if metrics:
            scraper.start()
        beside: asyncio.Task[None] | None = None
        figures.budget_usd = budget_usd
        # Two servers' moderators cap their own server: a monthly budget, a daily image cap.
        server_caps = {
            guilds[0]: ("monthly_budget_usd", "$0.30"),
            guilds[1]: ("daily_image_cap", "6"),
        }
        for guild, (setting, value) in server_caps.items():
            rec = await fake.slash("settings set", {"setting": setting, "value": value},
                                   user=scenario.mods[guild.id], guild=guild)  # fmt: skip
            await rec.wait_original(timeout=10)
            figures.server_caps[str(guild.id)] = value
        kill_points = sorted(rng.sample(range(operations // 5, operations), kills)) if kills else []
        ops, weights = list(MIX), list(MIX.values())
        done = 0
        while done < operations:
            size = min(batch, operations - done)
            chosen = rng.choices(ops, weights, k=size)
            await asyncio.gather(*(scenario.run_op(op) for op in chosen))
            done += size
            if during is not None and beside is None and done >= operations // 2:
                beside = asyncio.create_task(during(bots[0].env))
            if kill_points and done >= kill_points[0]:
                kill_points.pop(0)
                victim = rng.choice(bots)
                # Kill while jobs are in flight: no graceful close, no refunds by the dying bot.
                await asyncio.sleep(rng.uniform(0.0, api_latency))
                victim.kill()
                await victim.wait()
                figures.kills += 1
                scenario.epoch += 1
                await victim.start(scenario.members[1])
                figures.restarts += 1
            elif done % (batch * 4) == 0:
                await scenario.settle(timeout=60)
        await scenario.settle(timeout=120)
        database = open_database(url=database_url, path=db_path)
        async with database:
            # The jobs of killed processes are refunded once their lease expires, by a live
            # process, which tells their members: wait for that before stopping.
            for _ in range(int((60 + 3 * lease_seconds) / 0.2)):
                if not await unfinished_jobs(database):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the notices go out right after the refunds
            if beside is not None:
                await beside
            if metrics:
                await scraper.stop()
                figures.metrics = await scraper.final()
                figures.database_counts = await database_counts(database)
                figures.scrapes = scraper.scrapes
                figures.scrape_seconds = list(scraper.seconds)
                figures.scrape_seconds_max = max(scraper.seconds, default=0.0)
                figures.problems.extend(scraper.problems)
            for bot in bots:
                code = await bot.stop()
                if code != 0:
                    figures.problems.append(f"bot exited with {code}:\n{bot.tail()}")
            scenario.account()
            # One notice per member, several to a message (one message per channel).
            figures.interrupted_notices = sum(
                m.content.count("interrupted by a bot restart") for m in fake.channel_log
            )
            figures.api_calls = len(api.requests)
            figures.api_spend_micros = api_spend(api)
            figures.budget_refusals = sum(
                n for key, n in figures.outcomes.items() if key.endswith("refused_budget")
            )
            figures.discord_429s = len(fake.ratelimits.hits)
            figures.late_answers = sum(
                1 for rec, _, _ in scenario.records if any(e.code == 10062 for e in rec.errors)
            )
            api.requests.clear()
            figures.seconds = time.monotonic() - started
            await check_invariants(
                database, store or objects_dir, figures, scope=scope,
                delivered=delivered_images(fake),
            )  # fmt: skip
    return figures
