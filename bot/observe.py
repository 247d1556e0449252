"""Watching the bot from outside: its metrics fed from the Discord side, and whether it is ready
to take interactions (/readyz).

Interactions are watched without touching any cog: every interaction is seen as it arrives
(`on_interaction`), and its first answer as it goes out, through an `aiohttp.TraceConfig` on
discord.py's own HTTP session (its `http_trace` option): the callback
`POST /interactions/{id}/{token}/callback` is the first answer, whatever cog sent it. The
outcome a cog decided (a refusal, an error) is what it left in `interaction.extras["outcome"]`
(cogs/errors.py); otherwise "ok".
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.logcontext import bind_log
from bot.services.events import JobFinished
from bot.services.metrics import Metrics, Readiness, Sources
from bot.services.pricing import micros

if TYPE_CHECKING:
    from bot.app import NanoBananaBot

_CALLBACK = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
_WORD = re.compile(r"^[a-z_]{1,24}$")
# Interactions remembered until their first answer (those never answered fall out).
_REMEMBERED = 4096
# How long /readyz waits for the database.
READY_DATABASE_SECONDS = 2.0


def interaction_label(interaction: discord.Interaction[Any]) -> str:
    """A bounded label for an interaction: the command's full name ("settings set"), the
    fixed words of a component's custom id ("nb:reroll", "nb:delete:yes"), else its kind."""
    data: dict[str, Any] = dict(interaction.data or {})
    kind = interaction.type
    if kind in (discord.InteractionType.application_command, discord.InteractionType.autocomplete):
        command = interaction.command
        name = command.qualified_name if command is not None else str(data.get("name", "?"))
        prefix = "autocomplete:" if kind is discord.InteractionType.autocomplete else ""
        return f"{prefix}{name}"[:60]
    words: list[str] = []
    for part in str(data.get("custom_id", "")).split(":")[:3]:
        if not _WORD.match(part):
            break
        words.append(part)
    if len(words) >= 2:
        return ":".join(words)
    return "modal" if kind is discord.InteractionType.modal_submit else "component"


class InteractionObserver:
    """Counts interactions and times their first answers into `metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._waiting: OrderedDict[int, discord.Interaction[Any]] = OrderedDict()

    def trace_config(self) -> aiohttp.TraceConfig:
        """For discord.py's `http_trace`: sees each interaction's first answer."""
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._request_end)
        trace.on_request_exception.append(self._request_exception)
        return trace

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """discord.py's `on_interaction` event: every interaction, as it arrives."""
        label = interaction_label(interaction)
        interaction.extras.setdefault("label", label)
        self.metrics.interaction_received(label)
        self._waiting[interaction.id] = interaction
        while len(self._waiting) > _REMEMBERED:
            self._waiting.popitem(last=False)

    async def _request_end(
        self, session: aiohttp.ClientSession, context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:  # fmt: skip
        if params.method == "POST":
            self._answered(params.url.path, params.response.status)

    async def _request_exception(
        self, session: aiohttp.ClientSession, context: SimpleNamespace,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:  # fmt: skip
        if params.method == "POST":
            self._answered(params.url.path, None)

    def _answered(self, path: str, status: int | None) -> None:
        match = _CALLBACK.search(path)
        if match is None:
            return
        interaction_id = int(match.group(1))
        interaction = self._waiting.pop(interaction_id, None)
        if interaction is None:
            return  # not seen arriving, or a second callback: only first answers count
        if status is not None and 200 <= status < 300:
            outcome = str(interaction.extras.get("outcome", "ok"))
        elif status == 404:
            outcome = "expired"  # 10062 Unknown interaction: past Discord's 3 s
        else:
            outcome = "failed"
        created = discord.utils.snowflake_time(interaction_id).timestamp()
        self.metrics.interaction_answered(
            str(interaction.extras.get("label", "?")), outcome, time.time() - created
        )


def bind_interaction(interaction: discord.Interaction[Any]) -> None:
    """Put the interaction's id and label on the log lines of the task handling it."""
    bind_log(interaction_id=interaction.id, command=interaction_label(interaction))


class Observability:
    """The metrics of one bot process and what feeds them (built before the bot's client, so
    discord.py's session gets the trace)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.interactions = InteractionObserver(metrics)
        self.trace = self.interactions.trace_config()
        self._bot: NanoBananaBot | None = None

    def watch(self, bot: NanoBananaBot) -> None:
        """Connect to the bot's services: jobs (events), the API client, the counters read
        at each scrape, and the interactions as they arrive."""
        self._bot = bot
        self.metrics.identify(bot.process.id, bot.settings.shard_ids)
        bot.events.subscribe(JobFinished, self.metrics.job_finished)
        bot.nanobanana.on_attempt = self.metrics.api_attempt
        cap = bot.settings.monthly_budget_usd
        self.metrics.watch(
            Sources(
                database=bot.db,
                generation=bot.generation,
                image_pool=bot.imagework,
                budgets=bot.budgets,
                global_cap_micros=None if cap is None else micros(cap),
            )
        )
        bot.add_listener(self.interactions.on_interaction, "on_interaction")

    async def readiness(self) -> Readiness:
        """Ready to take interactions: the database answers, every shard is connected, and
        jobs are taken."""
        bot = self._bot
        if bot is None:
            return Readiness(False, False, False)
        try:
            await asyncio.wait_for(bot.db.fetchval("SELECT 1"), READY_DATABASE_SECONDS)
            database = True
        except Exception:
            database = False
        shards = list(bot.shards.values())
        connected = (
            bot.is_ready()
            and not bot.is_closed()
            and bool(shards)
            and all(not shard.is_closed() for shard in shards)
        )
        return Readiness(database, connected, bot.generation.accepting)
