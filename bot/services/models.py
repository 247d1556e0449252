"""Which image models this deployment can use, kept true while Google changes its lineup.

`ModelService` holds the current `ModelCatalog` (what `/generate` offers and checks) and keeps
it true:
- at start-up and every few hours (`list_seconds`), one process asks the API which models the
  key can use (`GET /v1beta/models`, every page) and stores the answer in the database, where
  every process reads it (`refresh_seconds`);
- a 404 NOT_FOUND for a model retires it for the whole deployment at once: the first process
  to record it tells the owner (a typed `ModelNotice` the Discord adapter turns into a log
  line, a DM to the bot admins and a post in each moderation log), and every reservation checks
  the same record in its own transaction, so nobody is charged for it again;
- a size, ratio or thinking level the API refuses for a model is remembered and no longer
  offered; a deprecation the API announces in an answer (`modelStatus`) is told once.

The catalog is rebuilt from those facts by `bot.services.catalog.resolve`, which also holds
the rules for `NANOBANANA_MODEL=auto` and pinned ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Protocol

from bot.config import Settings, SettingsError
from bot.nanobanana.catalogue import ListedModel, image_models
from bot.nanobanana.errors import InvalidRequest, NanobananaError
from bot.nanobanana.profiles import LINEUP, Lineup, ModelProfile, ProfileError
from bot.nanobanana.text_models import TEXT_MODEL_ID, TEXT_MODELS, TextModels
from bot.nanobanana.wire import ModelStatus
from bot.services.catalog import (
    MISSING,
    SHUT_DOWN,
    Availability,
    ModelCatalog,
    ModelSettings,
    Replacement,
    resolve,
)
from bot.services.events import CatalogChanged, EventBus, ModelNotice
from bot.services.processes import ProcessLease
from storage.model_states import ListedRow, ModelStateRepository, Snapshot

log = logging.getLogger(__name__)

#: The named lock one process holds while it lists the models for everyone.
LISTING_LOCK = "model-listing"
_jitter = random.Random()


class ModelLister(Protocol):
    """What the service needs from the client to ask which models exist."""

    async def list_models(self) -> list[ListedModel]: ...


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class ModelService:
    """The live catalog. `start()` loads it (listing the models if nobody has lately) and
    keeps it fresh; `close()` stops that."""

    def __init__(
        self,
        *,
        settings: ModelSettings,
        lineup: Lineup,
        states: ModelStateRepository,
        lister: ModelLister | None,
        events: EventBus | None = None,
        process: ProcessLease | None = None,
        clock: Clock = _now,
        refresh_seconds: float = 30.0,
        list_seconds: float = 6 * 3600.0,
        describe_model: str = "auto",
        text_models: TextModels = TEXT_MODELS,
    ) -> None:
        self.settings = settings
        #: DESCRIBE_MODEL: `auto`, or the text model the owner pinned for /describe.
        self.describe_model = describe_model
        self.text_models = text_models
        #: The text models the last listing held (None: never listed, or no listing).
        self.text_listed: tuple[str, ...] | None = None
        self.lineup = lineup
        self.states = states
        #: None when no API key is configured: nothing to ask, the lineup's dates decide.
        self.lister = lister
        self.events = events or EventBus()
        self.process = process
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.list_seconds = list_seconds
        self.snapshot = Snapshot(states={}, listed_at=None)
        #: Whether the API has a models list (False behind a proxy that lacks one).
        self.listing_supported = True
        #: The last listing's failure, for `python -m bot check` and logs.
        self.listing_error: str | None = None
        self.catalog: ModelCatalog = resolve(settings, lineup, self._availability())
        self._task: asyncio.Task[None] | None = None
        self._told_replacements: set[tuple[str, str | None]] = set()
        self._last_listing_attempt: datetime | None = None

    # Lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load what the deployment knows, ask the API which models exist (at every start:
        the owner may have just changed the settings for a model Google released; processes
        starting together list once, under a lock), and keep both fresh in the background.
        `announce()` then tells the owner about configured models that are gone."""
        await self.reload()
        if self.lister is not None and self.listing_supported:
            await self.list_now()
        if self._task is None:
            self._task = asyncio.create_task(self._keep_fresh(), name="model-catalog")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds * (0.75 + _jitter.random() / 2))
            try:
                await self.reload()
                if self._listing_due():
                    await self.list_now()
            except Exception as error:  # the database out of reach: try again next time
                log.warning("could not refresh the model catalog (%s)", error)

    def _listing_due(self) -> bool:
        if self.lister is None or not self.listing_supported:
            return False
        now = self.clock()
        last = self.snapshot.listed_at
        if last is not None and (now - last).total_seconds() < self.list_seconds:
            return False
        # A failed listing is tried again after a refresh period, not on every refresh.
        attempt = self._last_listing_attempt
        return attempt is None or (now - attempt).total_seconds() >= min(
            self.list_seconds, max(self.refresh_seconds * 10, 60.0)
        )

    # Learning ----------------------------------------------------------------------------

    async def reload(self) -> ModelCatalog:
        """Read what the deployment knows from the database and rebuild the catalog."""
        self.snapshot = await self.states.snapshot()
        listed = await self.states.text_models()
        self.text_listed = tuple(listed) if listed is not None else None
        before = self.catalog
        catalog = self._rebuild()
        if _changed(before, catalog):
            await self.events.publish(CatalogChanged(catalog))
        return catalog

    async def list_now(self) -> list[ListedModel] | None:
        """Ask the API which models the key can use and store the image models for every
        process; None when it couldn't (logged; the last listing stands). Only one process
        lists at a time (the others skip)."""
        if self.lister is None:
            return None
        self._last_listing_attempt = self.clock()
        lock = (
            self.process.holding(LISTING_LOCK)
            if self.process is not None and self.process.registered
            else contextlib.nullcontext(True)
        )
        async with lock as mine:
            if not mine:
                log.info("another process is listing the models; skipped here")
                return None
            try:
                listed = await self.lister.list_models()
            except InvalidRequest as error:
                if error.status == 404:
                    # No models list at this base URL (a proxy): the lineup's dates and the
                    # API's 404s decide alone.
                    self.listing_supported = False
                    log.warning(
                        "the API at NANOBANANA_BASE_URL has no models list: the bot can't "
                        "ask which models exist, and relies on its lineup and on 404s"
                    )
                self.listing_error = str(error)
                return None
            except NanobananaError as error:
                self.listing_error = str(error)
                log.warning("could not list the models (%s); the last listing stands", error)
                return None
            images = image_models(listed, self.lineup)
            self.listing_error = None
            await self.states.record_text_models(
                [m.model for m in listed if m.generates and TEXT_MODEL_ID.match(m.model)]
            )
            relisted = await self.states.record_listing(
                [
                    ListedRow(m.model, m.display_name, m.methods, m.input_token_limit)
                    for m in images
                ],
                at=self.clock(),
            )
        for model in relisted:
            log.warning("model %s is listed again a day after a 404: offered again", model)
        before = self.catalog
        await self.reload()
        log.info(
            "models list: the key can use %d image model(s): %s",
            len(images),
            ", ".join(m.model for m in images) or "none",
        )
        if before.usable and not self.catalog.usable:
            await self._tell_none_usable()
        return images

    @property
    def caption_model(self) -> str | None:
        """The text model /describe uses now: the owner's DESCRIBE_MODEL (followed to what
        Google replaced it with), or with `auto` the cheapest current one the key lists (see
        bot/nanobanana/text_models.toml); None when the key lists none."""
        if self.describe_model != "auto":
            return self.text_models.follow(self.describe_model)
        listed = self.text_listed if self.listing_supported else None
        return self.text_models.choose(listed)

    async def text_model_gone(self, model: str) -> None:
        """The caption model answered 404: another is chosen until the next listing."""
        log.warning("text model %s answered 404 NOT_FOUND: /describe moves on", model)
        await self.states.drop_text_model(model)
        await self.reload()

    async def model_gone(self, model: str, reason: str) -> ModelCatalog:
        """`model` answered 404 NOT_FOUND: retire it for the deployment (the first process
        to record it tells the owner) and rebuild. Returns the new catalog."""
        first = await self.states.retire(model, reason, at=self.clock())
        before = self.catalog
        catalog = await self.reload()
        profile = self.lineup.profile(model)
        if first:
            replacement = catalog.default_model if before.default_model == model else None
            if before.default_model != model and model in before.profiles:
                replacement = None  # a member's choice: refused from now on
            log.error(
                "model %s (%s) answered 404 NOT_FOUND: Google retired it (or the id is wrong). %s",
                model,
                profile.name,
                f"The bot now uses {replacement}."
                if replacement
                else "Requests for it are refused, free, until NANOBANANA_MODEL(S) change "
                "(run `python -m bot check`).",
            )
            await self.events.publish(
                ModelNotice(
                    kind="retired",
                    model=model,
                    name=profile.name,
                    replacement=replacement,
                    replacement_name=self.lineup.profile(replacement).name if replacement else None,
                    detail=self.lineup.successor_of(model),
                )
            )
            if not catalog.usable:
                await self._tell_none_usable()
        return catalog

    async def option_refused(self, profile: ModelProfile, kind: str, value: str) -> None:
        """The API refused `value` ("sizes", "ratios" or "thinking") for `profile`'s model:
        remember it for every process and stop offering it."""
        if not await self.states.refuse(profile.model, kind, value):
            return
        if profile.known:
            log.warning(
                "the API refused %s %r for %s although our %s profile lists it: no longer "
                "offered (check lineup.toml or NANOBANANA_MODEL_PROFILES)",
                kind.rstrip("s"), value, profile.model,
                "owner's" if profile.origin == "owner" else "lineup's",
            )  # fmt: skip
        else:
            log.info("the API refused %s %r for %s: no longer offered", kind.rstrip("s"),
                     value, profile.model)  # fmt: skip
        await self.reload()

    async def status_noted(self, model: str, status: ModelStatus) -> None:
        """An answer said `model` is on its way out: tell the owner once."""
        if not status.ending:
            return
        notice = {
            "stage": status.stage,
            "retirement_time": status.retirement_time,
            "message": status.message,
        }
        if not await self.states.note_status(model, notice):
            return
        profile = self.lineup.profile(model)
        detail = ", ".join(
            part
            for part in (status.stage, f"retires {status.retirement_time}"
                         if status.retirement_time else None, status.message)
            if part
        )  # fmt: skip
        log.warning("the API says model %s (%s) is ending: %s", model, profile.name, detail)
        successor = self.lineup.successor_of(model)
        await self.events.publish(
            ModelNotice(
                kind="ending",
                model=model,
                name=profile.name,
                replacement=successor,
                replacement_name=self.lineup.profile(successor).name if successor else None,
                detail=detail,
            )
        )

    # Building ----------------------------------------------------------------------------

    def _availability(self) -> Availability:
        states = self.snapshot.states
        listed_at = self.snapshot.listed_at
        return Availability(
            today=self.clock().astimezone(UTC).date(),
            listed=frozenset(m for m, s in states.items() if s.listed)
            if listed_at is not None
            else None,
            names={m: s.display_name for m, s in states.items() if s.display_name},
            retired={m: s.retired_reason or "404" for m, s in states.items() if s.retired},
            refused={m: s.refused for m, s in states.items() if s.refused},
        )

    def _rebuild(self) -> ModelCatalog:
        before = self.catalog
        catalog = resolve(self.settings, self.lineup, self._availability())
        self.catalog = catalog
        if before.default_model != catalog.default_model:
            log.warning(
                "default image model: %s -> %s",
                before.default_model or "none",
                catalog.default_model or "none (image requests are refused, free)",
            )
        return catalog

    async def announce(self) -> None:
        """Configured models that are gone: a loud log line in every process at start-up,
        and the owner told once for the deployment (call it once the adapters subscribe)."""
        for replacement in self.catalog.replacements:
            key = (replacement.configured, replacement.used)
            if key in self._told_replacements:
                continue
            self._told_replacements.add(key)
            log.warning("%s", describe_replacement(replacement, self.lineup))
            if replacement.why != SHUT_DOWN or replacement.used is None:
                continue  # a 404 or a missing model: told when it was found
            notice_key = f"replaced:{replacement.configured}:{replacement.used}"
            try:
                first = await self.states.first_notice(notice_key)
            except Exception as error:
                log.warning("could not record a model notice (%s)", error)
                continue
            if first:
                profile = self.lineup.profile(replacement.configured)
                await self.events.publish(
                    ModelNotice(
                        kind="replaced",
                        model=replacement.configured,
                        name=profile.name,
                        replacement=replacement.used,
                        replacement_name=self.lineup.profile(replacement.used).name,
                        shutdown=replacement.shutdown,
                    )
                )

    async def _tell_none_usable(self) -> None:
        """Nothing can be used: logged in each process that sees it, the owner told at most
        once a day."""
        model = self.settings.model
        profile = self.catalog.default
        log.error(
            "no configured image model can be used with this key (NANOBANANA_MODEL=%s): "
            "every image request is refused, free. Run `python -m bot check`.",
            model,
        )
        if await self.states.first_notice(f"none_usable:{self.today()}"):
            await self.events.publish(
                ModelNotice(kind="none_usable", model=profile.model, name=profile.name)
            )

    # For `python -m bot check` -------------------------------------------------------------

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()


def _changed(before: ModelCatalog, after: ModelCatalog) -> bool:
    return (
        before.default_model != after.default_model
        or list(before.profiles.items()) != list(after.profiles.items())
        or before.aliases != after.aliases
        or before.unavailable != after.unavailable
    )


def describe_replacement(replacement: Replacement, lineup: Lineup) -> str:
    """One line for the owner about a configured model that can't be used."""
    profile = lineup.profile(replacement.configured)
    if replacement.why == SHUT_DOWN:
        when = f" on {replacement.shutdown}" if replacement.shutdown else ""
        gone = f"Google shut down {replacement.configured} ({profile.name}){when}"
    elif replacement.why == MISSING:
        gone = (
            f"{replacement.configured} ({profile.name}) is not in the API's models list for "
            "this key"
        )
    else:
        gone = f"{replacement.configured} ({profile.name}) answered 404 NOT_FOUND (retired)"
    if replacement.used is not None:
        return (
            f"{gone}: the bot uses its successor {replacement.used} "
            f"({lineup.profile(replacement.used).name}) instead; set it in your .env "
            f"(or NANOBANANA_MODEL=auto) to silence this"
        )
    successor = replacement.successor
    hint = (
        f"Google's recommended successor is {successor}: set it, or NANOBANANA_MODEL=auto"
        if successor
        else "set NANOBANANA_MODEL=auto, or a model `python -m bot check` lists"
    )
    return f"{gone}: requests for it are refused, free -> {hint}"


def settings_of(
    model: str,
    extras: Sequence[str],
    default_cost: int,
    costs: dict[str, int],
    thinking: dict[str, str],
) -> ModelSettings:
    """`ModelSettings` from the raw values (Settings' fields)."""
    return ModelSettings(
        model=model,
        extras=tuple(m for m in extras if m and m != model),
        default_cost=default_cost,
        costs=costs,
        thinking=thinking,
    )


def load_models(settings: Settings) -> tuple[Lineup, ModelSettings]:
    """The lineup (Google's, with the owner's NANOBANANA_MODEL_PROFILES) and the owner's
    model settings, checked against it. Raises SettingsError with one line naming the
    setting when something names a model or a size that can't be."""
    lineup = LINEUP
    path = settings.nanobanana_model_profiles
    if path is not None:
        try:
            lineup = LINEUP.with_owner_profiles(path)
        except ProfileError as error:
            raise SettingsError(f"NANOBANANA_MODEL_PROFILES is invalid: {error}") from None
    configured = {m for m in [settings.nanobanana_model, *settings.nanobanana_models] if m}
    configured.discard("auto")

    def known(model: str) -> bool:
        return model in lineup or model in configured

    def check_key(setting: str, key: str) -> None:
        model, _, size = key.partition(":")
        if not known(model):
            raise SettingsError(
                f"{setting} names {model}, which is neither a model of the lineup nor in "
                "NANOBANANA_MODEL/NANOBANANA_MODELS (run `python -m bot check` for the models "
                "your key can use)"
            )
        sizes = lineup.profile(model).image_sizes
        if size and size not in ("input", "output") and size not in sizes:
            raise SettingsError(
                f"{setting} gives {model} a size {size}, but its sizes are: "
                f"{', '.join(sizes) or 'none'}"
            )

    for key in settings.generation_costs:
        check_key("GENERATION_COSTS", key)
    for key in settings.image_prices_usd:
        check_key("IMAGE_PRICES_USD", key)
    for key in settings.token_prices_usd:
        check_key("TOKEN_PRICES_USD", key)
    for model, level in settings.nanobanana_thinking.items():
        if model == "*":
            continue
        if not known(model):
            raise SettingsError(
                f"NANOBANANA_THINKING names {model}, which is neither a model of the lineup "
                "nor in NANOBANANA_MODEL/NANOBANANA_MODELS"
            )
        levels = lineup.profile(model).thinking_levels
        if level not in levels:
            raise SettingsError(
                f"NANOBANANA_THINKING: {model} takes "
                f"{'levels ' + ', '.join(levels) if levels else 'no thinking level'}, not {level}"
            )
    return lineup, settings_of(
        settings.nanobanana_model,
        settings.nanobanana_models,
        settings.generation_cost,
        settings.generation_costs,
        settings.nanobanana_thinking,
    )
