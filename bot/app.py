"""The composition root: NanoBananaBot builds every concrete object and loads the cogs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import secrets
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
import discord
from discord.ext import commands

from bot import runtime
from bot.config import Settings, SettingsError, StorageBackend
from bot.directory import DiscordDirectory
from bot.i18n import t
from bot.nanobanana import MAX_INPUT_SIDE, NanobananaClient
from bot.observe import Observability
from bot.services.accounts import AccountService
from bot.services.backup import BackupSchedule, DatabaseSource, take_backup
from bot.services.budgets import BudgetService
from bot.services.callers import CallerService
from bot.services.cancels import CancelService
from bot.services.captions import KIND as CAPTION_KIND
from bot.services.captions import CaptionJobs, CaptionService
from bot.services.catalog import Availability, ModelCatalog, resolve
from bot.services.characters import CharacterService
from bot.services.community import CommunityService
from bot.services.conversations import ConversationService
from bot.services.events import CatalogChanged, EventBus, ImageCreated, JobsRecovered
from bot.services.gallery import GalleryService
from bot.services.generation import GenerationService
from bot.services.imagework import ImageWork
from bot.services.jobs import JobEngine
from bot.services.maintenance import reconcile_storage
from bot.services.media import InputImages
from bot.services.members import MemberService
from bot.services.metrics import Metrics
from bot.services.models import ModelService, load_models
from bot.services.moderation import ModerationService
from bot.services.orders import OrderService
from bot.services.payments import PaymentService
from bot.services.permissions import PermissionService
from bot.services.pricing import PriceTable, micros, prices_of
from bot.services.privacy import PrivacyService, RetentionSweep
from bot.services.processes import ProcessLease, describe_process
from bot.services.ratelimits import MemberLimits
from bot.services.settings import GuildSettingsService
from bot.services.styles import StyleService
from bot.services.tokens import TokenService
from bot.services.uploads import UploadService
from bot.services.wallets import WalletService
from bot.services.websessions import WebSessionService
from storage.api_tokens import ApiTokenRepository
from storage.characters import CharacterRepository
from storage.conversations import ConversationRepository
from storage.db import Database
from storage.guild_settings import GuildSettingsRepository
from storage.images import ImageRepository
from storage.jobs import Refund
from storage.leases import LeaseRepository
from storage.model_states import ModelStateRepository
from storage.moderation import ModerationRepository
from storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore
from storage.open import open_database
from storage.preferences import MemberPreferenceRepository
from storage.presets import StylePresetRepository
from storage.timeutil import utcnow
from storage.usage import UsageRepository
from storage.users import UserRepository
from storage.wallets import WalletRepository
from storage.web_sessions import WebSessionRepository
from web.context import WebContext
from web.metrics import MetricsServer, Observed
from web.server import WebServer

log = logging.getLogger(__name__)

COGS = (
    "cogs.errors",  # first: it installs the command tree's error handler
    "cogs.translator",  # sets the tree's translator (every extension loads before the sync)
    "cogs.guilds",
    "cogs.generate",
    "cogs.describe",
    "cogs.edit_any",
    "cogs.characters",
    "cogs.conversations",
    "cogs.upload",
    "cogs.gallery",
    "cogs.coins",
    "cogs.daily",
    "cogs.admin",
    "cogs.settings",
    "cogs.usage",
    "cogs.modlog",
    "cogs.tokens",
    "cogs.privacy",
    "cogs.help",
    "cogs.community",
)
COMMANDS_HASH_KEY = "commands_hash"
# Named locks in the database: start-up maintenance runs in one process at a time.
STORAGE_SWEEP_LOCK = "storage-sweep"
COMMAND_SYNC_LOCK = "command-sync"
MESSAGE_CHARS = 2000  # Discord's limit on a message's content
# A notice line's leading mention of its requester.
_LINE_MENTION = re.compile(r"(?m)^<@(\d+)>")
SHUTDOWN_DEADLINE = 30.0
# Where the generated cookie-signing key is kept when WEB_SESSION_SECRET is unset.
WEB_SECRET_KEY = "web_session_secret"


def build_object_store(settings: Settings) -> ObjectStore:
    """The configured object store (not yet opened)."""
    if settings.storage_backend is StorageBackend.S3:
        assert settings.s3_bucket and settings.s3_access_key_id and settings.s3_secret_access_key
        return S3ObjectStore(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            access_key_id=settings.s3_access_key_id.get_secret_value(),
            secret_access_key=settings.s3_secret_access_key.get_secret_value(),
            public_base_url=settings.s3_public_base_url,
        )
    return LocalObjectStore(settings.local_storage_dir)


def build_database(settings: Settings) -> Database:
    """The configured database (PostgreSQL with DATABASE_URL, else SQLite), not yet opened."""
    return open_database(
        url=settings.postgres_url,
        path=settings.database_path,
        busy_timeout_ms=settings.database_busy_timeout_ms,
        pool_size=settings.database_pool_size,
    )


def build_models(
    settings: Settings,
    db: Database,
    *,
    client: NanobananaClient | None,
    events: EventBus | None = None,
    process: ProcessLease | None = None,
) -> ModelService:
    """The live model catalog (NANOBANANA_MODEL(S), NANOBANANA_MODEL_PROFILES, GENERATION_COST(S),
    NANOBANANA_THINKING); raises SettingsError (one line) for a setting that can't be."""
    lineup, model_settings = load_models(settings)
    if client is not None:
        client.lineup = lineup
    return ModelService(
        settings=model_settings,
        lineup=lineup,
        states=ModelStateRepository(db),
        lister=client if client is not None and client.configured else None,
        events=events,
        process=process,
        list_seconds=settings.nanobanana_models_refresh_hours * 3600,
        describe_model=settings.describe_model,
    )


def build_catalog(settings: Settings) -> ModelCatalog:
    """The catalog these settings give from the lineup alone (no database, no API): what a
    start-up without a models list would offer."""
    lineup, model_settings = load_models(settings)
    return resolve(model_settings, lineup, Availability(today=utcnow().date()))


def build_prices(settings: Settings, models: ModelService | None = None) -> PriceTable:
    """The lineup's list prices with the host's IMAGE_PRICES_USD / TOKEN_PRICES_USD."""
    table = PriceTable(
        image_prices=settings.image_prices_usd, token_prices=settings.token_prices_usd
    )
    if models is None:
        return table
    return replace(
        table,
        defaults=prices_of(models.lineup),
        lineup=models.lineup,
        aliases=models.catalog.aliases,
    )


class NanoBananaBot(commands.AutoShardedBot):
    """The bot over the shards this process runs (SHARD_COUNT / SHARD_IDS; every shard
    Discord recommends when unset). `setup_hook` opens storage, registers this process,
    refunds the jobs of dead processes, loads cogs; the process with shard 0 also sweeps
    storage and syncs commands, one process at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: ObjectStore | None = None,
        web_listen: int | None = None,
        **options: Any,
    ) -> None:
        """`options` go to commands.Bot (e.g. guild_ready_timeout=0 in tests). `store` replaces
        the configured object store (tests inject faults; benchmarks compare backends).
        `web_listen` runs the web server on that port whatever WEB_PORT says (0: any free
        port, for tests)."""
        options.setdefault("command_prefix", commands.when_mentioned)
        options.setdefault("intents", discord.Intents.default())
        options.setdefault("help_command", None)
        # Nobody is pinged unless a message names whom it may ping (prompts can hold <@id>).
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        options.setdefault("shard_count", settings.shard_count)
        options.setdefault("shard_ids", settings.shard_ids)
        #: /metrics and /readyz; it sees interactions' first answers through discord.py's HTTP.
        self.observability = Observability(Metrics())
        options.setdefault("http_trace", self.observability.trace)
        super().__init__(**options)
        self.settings = settings
        self.started_at = time.monotonic()
        # How long close() lets running jobs finish before refunding them.
        self.shutdown_deadline = SHUTDOWN_DEADLINE
        self.ready_after: float | None = None
        self._tell_task: asyncio.Task[None] | None = None
        self.db = build_database(settings)
        self.leases = LeaseRepository(self.db)
        #: This process's lease in the database (its jobs, slots and objects being written).
        self.process = ProcessLease(
            self.leases,
            lease_seconds=settings.job_lease_seconds,
            name=describe_process(settings.shard_ids),
        )
        user_repo = UserRepository(self.db)
        self.image_repo = ImageRepository(self.db, max_balance=settings.max_balance)
        self.store: ObjectStore = store or build_object_store(settings)
        self.nanobanana = NanobananaClient.from_settings(settings)
        #: Typed events between services and cogs (see bot.services.events).
        self.events = EventBus()
        #: Which image models exist now, kept true while Google changes its lineup.
        self.models = build_models(
            settings, self.db, client=self.nanobanana, events=self.events, process=self.process
        )
        self.permissions = PermissionService(
            scope=settings.economy_scope,
            admin_user_ids=frozenset(settings.admin_user_ids),
            allowed_guild_ids=frozenset(settings.allowed_guild_ids),
        )
        self.accounts = AccountService(user_repo, self.permissions)
        #: Per-member rate limits of every command and button (shared with the web API).
        self.limits = MemberLimits()
        #: CPU-heavy image work, in its own bounded pool of processes.
        self.imagework = ImageWork(settings.image_workers, settings.image_queue)
        self.guild_settings = GuildSettingsService(
            GuildSettingsRepository(self.db),
            self.permissions,
            self.accounts,
            defaults=GuildSettingsService.defaults_from(settings),
            scope=settings.economy_scope,
            max_coins=settings.max_grant,
        )
        self.wallets = WalletService(
            wallets=WalletRepository(self.db, max_balance=settings.max_balance),
            images=self.image_repo,
            accounts=self.accounts,
            settings=self.guild_settings,
            permissions=self.permissions,
            scope=settings.economy_scope,
            max_grant=settings.max_grant,
        )
        usage = UsageRepository(self.db)
        self.budgets = BudgetService(
            usage,
            build_prices(settings, self.models),
            monthly_budget_micros=(
                None if settings.monthly_budget_usd is None else micros(settings.monthly_budget_usd)
            ),
            events=self.events,
        )
        #: The one path of every paid job once it is ordered: queue, API slots, leases, money.
        self.engine = JobEngine(
            db=self.db,
            store=self.store,
            max_concurrent=settings.max_concurrent_generations,
            # The host's ceiling; each server's `jobs_per_member` (at most this) applies.
            max_jobs_per_user=settings.max_jobs_per_user,
            queue_size=settings.generation_queue_size,
            retry_seconds=settings.job_retry_seconds,
            enabled=settings.gemini_api_key is not None,
            process=self.process,
            max_balance=settings.max_balance,
            events=self.events,
        )
        self.generation = GenerationService(
            images=self.image_repo,
            store=self.store,
            generator=self.nanobanana,
            cost=settings.generation_cost,
            max_concurrent=settings.max_concurrent_generations,
            max_jobs_per_user=settings.max_jobs_per_user,
            max_prompt_chars=settings.max_prompt_chars,
            models=self.models,
            imagework=self.imagework,
            budgets=self.budgets,
            engine=self.engine,
            grounding_cost=settings.grounding_cost,
        )
        #: Cancelling waiting jobs (issue 23): the member, a moderator, a bot admin.
        self.cancels = CancelService(self.engine, self.permissions)
        self.gallery = GalleryService(
            images=self.image_repo, users=user_repo, store=self.store,
            permissions=self.permissions, imagework=self.imagework, unstored=self.generation,
        )  # fmt: skip
        self.moderation = ModerationService(
            ModerationRepository(self.db),
            permissions=self.permissions,
            accounts=self.accounts,
            settings=self.guild_settings,
            gallery=self.gallery,
            images=self.image_repo,
            usage=usage,
            events=self.events,
        )
        self.members = MemberService(
            accounts=self.accounts,
            settings=self.guild_settings,
            wallets=self.wallets,
            permissions=self.permissions,
            moderation=self.moderation,
            limits=self.limits,
        )
        #: The one pipeline for the images members send with a paid job.
        self.inputs = InputImages(
            self.imagework, max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_input_pixels, max_side=MAX_INPUT_SIDE,
        )  # fmt: skip
        #: Captions (/describe): a second kind of paid job on the same engine.
        self.captions = CaptionService(
            self.engine,
            CaptionJobs(
                describer=self.nanobanana, model=lambda: self.models.caption_model,
                cost=settings.describe_cost, model_gone=self.models.text_model_gone,
            ),
        )  # fmt: skip
        #: Members' own choices (private mode, the leaderboard) and the leaderboard itself.
        self.community = CommunityService(
            MemberPreferenceRepository(self.db), accounts=self.accounts, wallets=self.wallets,
            permissions=self.permissions,
        )  # fmt: skip
        #: Members paying each other (/pay).
        self.payments = PaymentService(
            wallets=self.wallets, accounts=self.accounts, settings=self.guild_settings,
            moderation=self.moderation,
        )  # fmt: skip
        #: Each server's style presets (/settings style, /generate style:).
        self.styles = StyleService(
            StylePresetRepository(self.db), store=self.store, inputs=self.inputs,
            permissions=self.permissions,
        )  # fmt: skip
        #: The one entry of every paid job, from Discord or the API (prepare, then place).
        self.orders = OrderService(
            generation=self.generation, members=self.members, moderation=self.moderation,
            settings=self.guild_settings, inputs=self.inputs, captions=self.captions,
            community=self.community, styles=self.styles,
        )  # fmt: skip
        #: Conversations (issue 22): turns of image jobs, ordered through `orders`.
        self.conversations = ConversationService(
            ConversationRepository(self.db), orders=self.orders, generation=self.generation,
            images=self.image_repo, store=self.store, permissions=self.permissions,
            accounts=self.accounts,
        )  # fmt: skip
        self.events.subscribe(JobsRecovered, self._tell_recovered)
        self.events.subscribe(ImageCreated, self._log_image)
        self.events.subscribe(CatalogChanged, self._prices_follow)
        self.uploads = UploadService(
            images=self.image_repo,
            store=self.store,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_upload_pixels,
            imagework=self.imagework,
            process=self.process,
            events=self.events,
        )
        self.tokens = TokenService(ApiTokenRepository(self.db))
        self.characters = CharacterService(
            CharacterRepository(self.db), self.store, self.permissions
        )
        self.directory = DiscordDirectory(self)
        self.web_sessions = WebSessionService(WebSessionRepository(self.db), self.directory)
        self.callers = CallerService(
            tokens=self.tokens,
            members=self.members,
            accounts=self.accounts,
            permissions=self.permissions,
            directory=self.directory,
        )
        #: Members' data rights (/privacy export|erase) and the image retention sweep.
        self.privacy = PrivacyService(
            self.db, self.store, self.accounts, self.image_repo, secret=self.web_secret,
            link_minutes=settings.privacy_link_minutes,
            retention_days=settings.image_retention_days,
            guild_retention=self.guild_settings.retention_days,
            forget_member=self.members.forget,
        )  # fmt: skip
        self.retention: RetentionSweep | None = None
        self._web_port = settings.web_port if web_listen is None else web_listen
        self._web_on = settings.web_enabled if web_listen is None else True
        self.web: WebServer | None = None
        self.metrics_server: MetricsServer | None = None
        self.observability.watch(self)
        self.backups: BackupSchedule | None = None

    async def login(self, token: str) -> None:
        """Log in over a bounded pool of keep-alive connections to Discord's API: a burst of
        answers reuses them instead of opening a connection each (discord.py's default
        pool has no bound and keeps none)."""
        if self.http.connector is discord.utils.MISSING and self.settings.discord_connections:
            self.http.connector = aiohttp.TCPConnector(
                limit=self.settings.discord_connections, keepalive_timeout=60
            )
        await super().login(token)

    async def on_message(self, message: discord.Message) -> None:
        """No text commands: members use slash commands, and the messages the bot reads
        (a reply that mentions it: cogs.conversations) are its cogs' own listeners."""

    async def _log_image(self, event: ImageCreated) -> None:
        await self.moderation.image_created(event.image)

    async def _tell_recovered(self, event: JobsRecovered) -> None:
        await self.tell_interrupted(list(event.refunds))

    async def _prices_follow(self, event: CatalogChanged) -> None:
        """Prices set for a model that something replaced apply to its replacement."""
        self.budgets.prices = replace(self.budgets.prices, aliases=event.catalog.aliases)

    async def setup_hook(self) -> None:
        await self.db.connect()
        await self.db.migrate()
        opener = getattr(self.store, "open", None)
        if opener is not None:
            await opener()
        await self.process.start()
        # Which models exist (listing them if no process has lately): before any job.
        await self.models.start()
        # Only the jobs of processes whose lease expired: never another live process's.
        interrupted = await self.engine.recover()
        if interrupted:
            self._tell_task = asyncio.create_task(self.tell_interrupted(interrupted))
        if self.settings.runs_shard_zero:
            async with self.process.holding(STORAGE_SWEEP_LOCK) as mine:
                if mine:
                    await reconcile_storage(self.image_repo, self.store, self.leases)
                else:
                    log.info("another process is sweeping storage; skipped here")
        await self.imagework.start()
        await self.engine.start()
        if self._web_on:
            await self.start_web()
        if self.settings.metrics_port is not None:
            self.metrics_server = MetricsServer(self.observed())
            await self.metrics_server.start()
        if self.settings.backup_every_hours and self.settings.backup_dir is not None:
            self.backups = self.backup_schedule(self.settings.backup_dir)
            self.backups.start()
        if self.settings.runs_shard_zero:
            self.retention = RetentionSweep(self.privacy, self.process.holding)
            self.retention.start()
        for extension in COGS:
            await self.load_extension(extension)
        # Configured models Google has shut down: said now that the cogs listen.
        await self.models.announce()
        if self.settings.runs_shard_zero:
            async with self.process.holding(COMMAND_SYNC_LOCK) as mine:
                if mine:
                    await self.sync_commands()
                else:
                    log.info("another process is syncing commands; skipped here")

    async def start_web(self) -> None:
        """The web gallery and API, sharing this bot's services. A port in use is logged
        (with what to do) and the bot runs on without them."""
        context = WebContext(
            settings=self.settings,
            callers=self.callers,
            tokens=self.tokens,
            members=self.members,
            wallets=self.wallets,
            gallery=self.gallery,
            uploads=self.uploads,
            generation=self.generation,
            orders=self.orders,
            cancels=self.cancels,
            directory=self.directory,
            web_sessions=self.web_sessions,
            secret=await self.web_secret(),
            privacy=self.privacy,
            observed=self.observed(),
            characters=self.characters,
            conversations=self.conversations,
        )
        server = WebServer(context, host=self.settings.web_host, port=self._web_port)
        if await server.start():
            self.web = server

    def observed(self) -> Observed:
        """What /metrics and /readyz serve."""
        o = self.observability
        return Observed(self.settings, o.metrics, o.readiness)

    def backup_schedule(self, folder: Path) -> BackupSchedule:
        """BACKUP_EVERY_HOURS: backups into `folder` by one process at a time (BACKUP_KEEP)."""
        settings = self.settings
        url = settings.postgres_url
        source = DatabaseSource(self.db, None if url else settings.database_path, url)
        return BackupSchedule(
            functools.partial(
                take_backup, source, self.store, storage=settings.storage_backend.value
            ),
            database=self.db,
            holding=self.process.holding,
            folder=folder,
            every_hours=settings.backup_every_hours,
            keep=settings.backup_keep,
        )

    async def web_secret(self) -> bytes:
        """WEB_SESSION_SECRET, else a random key made at first start and kept in the
        database (bot_state), so sessions survive restarts and every process shares it."""
        if self.settings.web_session_secret is not None:
            return self.settings.web_session_secret.get_secret_value().encode()
        stored = await self.db.get_state(WEB_SECRET_KEY)
        if stored is None:
            stored = secrets.token_urlsafe(48)
            await self.db.set_state(WEB_SECRET_KEY, stored)
            log.info("generated the web session key (kept in the database's bot_state table)")
        return stored.encode()

    def web_link(self, path: str) -> str | None:
        """A link into the web gallery for Discord messages: only while the web server runs
        and WEB_BASE_URL says where members reach it."""
        base = self.settings.web_base_url
        if self.web is None or not self.web.running or base is None:
            return None
        return f"{base}{path}"

    async def tell_interrupted(self, refunds: list[Refund]) -> None:
        """Tell members whose images a crash interrupted that they were refunded, in the
        channel where they asked (their interaction died with the old process).

        One message per channel (split at Discord's 2000 characters), not one per job:
        channels allow about five messages per five seconds, and a restart after a busy
        minute would otherwise still be queueing notices when the bot stops again."""
        by_channel: dict[int, list[str]] = {}
        for refund in refunds:
            job = refund.job
            context = job.request.get("context")
            channel_id = context.get("channel_id") if isinstance(context, dict) else None
            owner = await self.accounts.get(job.user_id)
            if not channel_id or owner is None or owner.discord_id is None:
                continue
            prompt = job.request.get("prompt")
            told = "describe" if job.kind == CAPTION_KIND else "gen"
            text = t(
                owner.language,
                f"{told}.interrupted_owed" if refund.owed else f"{told}.interrupted",
                prompt=quote_prompt(prompt if isinstance(prompt, str) else "", 100),
                coins=refund.owed or refund.refunded,
            )
            by_channel.setdefault(int(channel_id), []).append(f"<@{owner.discord_id}> {text}")
        for channel_id, lines in by_channel.items():
            for content in _join_within(lines, MESSAGE_CHARS):
                # Only the members this message is for may be pinged: each line starts with
                # its requester's mention; prompts are quoted with their mentions escaped.
                requesters = [
                    discord.Object(int(user_id))
                    for user_id in dict.fromkeys(_LINE_MENTION.findall(content))
                ]
                try:
                    await self.get_partial_messageable(channel_id).send(
                        content,
                        allowed_mentions=discord.AllowedMentions(
                            everyone=False, roles=False, users=requesters
                        ),
                    )
                except discord.HTTPException as error:
                    log.info("could not tell users about interrupted jobs: %s", error.status)

    async def on_ready(self) -> None:
        if self.ready_after is None:
            self.ready_after = time.monotonic() - self.started_at
            log.info("ready as %s in %.2fs", self.user, self.ready_after)

    async def commands_hash(self) -> str:
        """A hash of the command set as Discord would receive it, localisations included."""
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands()
        ]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def sync_commands(self) -> str:
        """Sync to DISCORD_GUILD_IDS (instant, for development), else globally, and only
        when the command set changed since the last global sync. Returns what it did."""
        if self.settings.discord_guild_ids:
            for guild_id in self.settings.discord_guild_ids:
                if not self.permissions.guild_allowed(guild_id):
                    log.warning("not syncing commands to %s: not in ALLOWED_GUILD_IDS", guild_id)
                    continue
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            return "guilds"
        current = await self.commands_hash()
        if await self.db.get_state(COMMANDS_HASH_KEY) == current:
            log.info("commands unchanged; global sync skipped")
            return "skipped"
        await self.tree.sync()
        await self.db.set_state(COMMANDS_HASH_KEY, current)
        return "global"

    async def close(self) -> None:
        """Stop taking jobs, let running ones finish (bounded), refund the rest, close all."""
        try:
            await self.engine.close(deadline=self.shutdown_deadline)
        except Exception:
            log.exception("error while stopping generation")
        if self._tell_task is not None and not self._tell_task.done():
            # Restart notices still going out: give them a moment, they are owed to members.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tell_task, timeout=5)
        await self.models.close()
        if self.backups is not None:
            await self.backups.close()
        if self.retention is not None:
            await self.retention.close()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await self.process.close()
        await self.nanobanana.close()
        self.imagework.close()
        await self.store.close()
        await super().close()
        if self.db.is_open:
            await self.db.close()


def _join_within(lines: list[str], limit: int) -> list[str]:
    """Lines joined into as few messages as fit in `limit` characters each (a longer line
    is cut, never dropped)."""
    messages: list[str] = []
    current = ""
    for line in lines:
        line = line[:limit]
        if current and len(current) + 1 + len(line) > limit:
            messages.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        messages.append(current)
    return messages


async def serve(bot: NanoBananaBot, token: str) -> None:
    """Run the bot until it is closed. SIGTERM (docker stop, systemd, Kubernetes) closes it
    the way Ctrl+C does: no new jobs, running ones finish within the shutdown deadline (the
    rest are refunded and their members told), then the process exits 0."""
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def stop() -> None:
        if not closing:
            log.info("SIGTERM: stopping (running jobs get %.0fs to finish)", bot.shutdown_deadline)
            closing.append(loop.create_task(bot.close()))

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        await bot.start(token)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        if closing:
            await closing[0]


def run_bot(settings: Settings) -> int:
    """Run until interrupted (Ctrl+C or SIGTERM); the process exit code. Logging is set up
    by the caller."""

    async def main() -> None:
        async with NanoBananaBot(settings) as bot:
            await serve(bot, settings.discord_token.get_secret_value())

    try:
        runtime.run(main, settings.event_loop)
    except KeyboardInterrupt:
        return 0
    except SettingsError as error:
        log.error("configuration error: %s", error)
        return 2
    except discord.LoginFailure:
        log.error("Discord refused the token: check DISCORD_TOKEN")
        return 1
    except (aiohttp.ClientError, OSError) as error:
        log.error("cannot reach Discord (%s): check the network", type(error).__name__)
        return 1
    return 0


def quote_prompt(prompt: str, limit: int) -> str:
    """A prompt to quote in a message: one line, cut to `limit`, with mentions and markdown
    escaped so it can neither ping anyone nor change the message's formatting."""
    line = " ".join(prompt.split())
    line = line if len(line) <= limit else line[: limit - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(line))


Interaction: TypeAlias = discord.Interaction[NanoBananaBot]
