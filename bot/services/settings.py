"""Per-server settings: the environment is every server's default; `/settings` overrides it for
one server. Values are parsed and validated here, and every change is recorded with who made it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.config import EconomyScope, Settings
from bot.services.accounts import AccountService
from bot.services.errors import InvalidInput, NotAllowed
from bot.services.permissions import Actor, ChannelAccess, PermissionService
from bot.services.pricing import micros
from bot.services.ratelimits import DEFAULT_RATES, parse_rates
from storage.guild_settings import SETTINGS, GuildSettingsRepository
from storage.models import SettingChange

__all__ = ["MAX_BATCH", "SETTINGS", "EffectiveSettings", "GuildSettingsService", "Source"]

# Costs above this are a typo, not a price.
MAX_COST = 1_000_000
MAX_CHANNELS = 25
_TRUE = frozenset({"yes", "true", "on", "1", "public", "sí", "si"})
_FALSE = frozenset({"no", "false", "off", "0", "private"})
# Words that mean "no restriction" for channels and the role.
_NONE = frozenset({"", "all", "any", "none", "everyone", "todos", "todas", "ninguno", "ninguna"})
# Words that turn a cap or the log off.
_OFF = frozenset({"", "none", "off", "no", "unlimited", "ninguno", "ninguna", "sin límite"})
MAX_DAILY_IMAGES = 100_000
# A daily payment limit above this is a typo (balances stay within MAX_BALANCE anyway).
MAX_PAY_DAILY_LIMIT = 10**12
#: The most images one `/generate` may ask for (`count`), whatever a server sets: a batch is
#: shown in one message with a row of buttons per image, and a message holds at most 5 rows
#: of 5 buttons and 10 attachments (discord/discord-api-spec openapi.json, commit 74fda0f of
#: 2026-07-18, checked 2026-12-07: ActionRow components maxItems 5, attachments maxItems 10;
#: 5 action rows a message: the spec's validator in tests/fakes and the Discord libraries'
#: documented limits).
MAX_BATCH = 4
# A server budget above this is a typo.
MAX_MONTHLY_USD = Decimal("100000")
_SNOWFLAKE = re.compile(r"^<(?:#|@&)(\d{15,21})>$|^(\d{15,21})$")
# How long a server's settings are used from memory before they are read again (another
# process may have changed them; this process's own changes apply at once).
CACHE_SECONDS = 30.0
# The longest image retention a server may set (a century: "keep" in all but name).
MAX_RETENTION_DAYS = 36_500


class Source(StrEnum):
    SERVER = "server"
    DEFAULT = "default"


@dataclass(frozen=True)
class EffectiveSettings:
    """The values that apply in one server, and where each comes from."""

    generation_cost: int
    upload_cost: int
    starter_coins: int
    daily_coins: int
    jobs_per_member: int
    channel_ids: tuple[int, ...] = ()
    generate_role_id: int | None = None
    public_results: bool = True
    # Owner controls (None: no cap / no log channel).
    daily_image_cap: int | None = None
    monthly_budget_usd: int | None = None  # micro-dollars
    mod_log_channel_id: int | None = None
    nsfw_only: bool = False
    # Per-member uses a minute, by action (every action has a value).
    rate_limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RATES))
    # Days images are kept (0: until deleted); IMAGE_RETENTION_DAYS by default.
    image_retention_days: int = 0
    # Coins a member may pay others in 24 hours (0: /pay off); members may keep their
    # results private (/settings me private) where this is on.
    pay_daily_limit: int = 1000
    private_mode: bool = True
    # The most images one /generate may ask for here (issue 23).
    max_batch: int = MAX_BATCH
    sources: Mapping[str, Source] = field(default_factory=dict)

    def value(self, setting: str) -> Any:
        return getattr(self, setting)

    def source(self, setting: str) -> Source:
        return self.sources.get(setting, Source.DEFAULT)


class GuildSettingsService:
    """Effective settings per server, and validated changes with an audit trail."""

    def __init__(
        self,
        repo: GuildSettingsRepository,
        permissions: PermissionService,
        accounts: AccountService,
        *,
        defaults: EffectiveSettings,
        scope: EconomyScope,
        max_coins: int,
    ) -> None:
        self.repo = repo
        self.permissions = permissions
        self.accounts = accounts
        self.defaults = defaults
        self.scope = scope
        # Largest starter or daily amount a server may set (MAX_GRANT).
        self.max_coins = max_coins
        self.cache_seconds = CACHE_SECONDS
        self._cache: dict[int, tuple[float, EffectiveSettings]] = {}
        self._refreshing: set[int] = set()

    @classmethod
    def defaults_from(cls, settings: Settings) -> EffectiveSettings:
        """The environment's values: every server's defaults."""
        return EffectiveSettings(
            generation_cost=settings.generation_cost,
            upload_cost=settings.upload_cost,
            starter_coins=settings.starter_coins,
            daily_coins=settings.daily_coins,
            jobs_per_member=settings.max_jobs_per_user,
            rate_limits=dict(settings.rate_limits),
            image_retention_days=settings.image_retention_days,
            pay_daily_limit=settings.pay_daily_limit,
        )

    # Reading -----------------------------------------------------------------------------

    def cached(self, guild_id: int | None) -> EffectiveSettings | None:
        """The values in force in a server as last read (None: never read, call `effective`).
        Synchronous, for what must run before any await. Values older than `cache_seconds`
        are still returned while a fresh read is started in the background (another process
        may have changed them; this process's own changes apply at once)."""
        if guild_id is None:
            return self.defaults
        entry = self._cache.get(guild_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.cache_seconds and guild_id not in self._refreshing:
            self._refreshing.add(guild_id)
            task = asyncio.get_running_loop().create_task(self.effective(guild_id))
            task.add_done_callback(lambda _: self._refreshing.discard(guild_id))
        return entry[1]

    async def effective(self, guild_id: int | None) -> EffectiveSettings:
        """The values in force in a server (the defaults in a DM)."""
        if guild_id is None:
            return self.defaults
        overrides = await self.repo.get(guild_id)
        values: dict[str, Any] = {}
        sources: dict[str, Source] = {}
        for setting in SETTINGS:
            value = getattr(overrides, setting)
            if value is None or not self.overridable(setting):
                continue
            if setting == "rate_limits":
                # Only the actions the server set, never above the host's (which may have
                # been lowered since); the host's rates for the others.
                host = self.defaults.rate_limits
                value = {**host, **{a: min(n, host[a]) for a, n in value.items() if a in host}}
            values[setting] = value
            sources[setting] = Source.SERVER
        effective = replace(self.defaults, **values, sources=sources)
        self._cache[guild_id] = (time.monotonic(), effective)
        return effective

    def overridable(self, setting: str) -> bool:
        """In the global economy a wallet spans every server, so no server may change how many
        coins members receive (only costs and rules)."""
        return not (
            self.scope is EconomyScope.GLOBAL and setting in ("starter_coins", "daily_coins")
        )

    # Changing ----------------------------------------------------------------------------

    async def change(
        self,
        actor: Actor,
        guild_id: int,
        setting: str,
        raw: str,
        *,
        channel_ids: Collection[int] = (),
        role_ids: Collection[int] = (),
        channel_access: Mapping[int, ChannelAccess] | None = None,
    ) -> SettingChange:
        """Parse `raw` for `setting` (the server's known channels and roles validate ids; what
        the bot may do in each channel validates the log channel) and store it; raises
        InvalidInput or NotAllowed and changes nothing on refusal."""
        self._check(actor, guild_id, setting)
        value = self.parse(setting, raw, channel_ids=channel_ids, role_ids=role_ids,
                           guild_id=guild_id)  # fmt: skip
        if setting == "mod_log_channel_id" and value is not None:
            access = (channel_access or {}).get(value)
            self.permissions.check_log_channel(access, f"<#{value}>")
        return await self._store(actor, guild_id, setting, value)

    async def reset(self, actor: Actor, guild_id: int, setting: str) -> SettingChange:
        """Back to the environment's default."""
        self._check(actor, guild_id, setting)
        return await self._store(actor, guild_id, setting, None)

    async def _store(self, actor: Actor, guild_id: int, setting: str, value: Any) -> SettingChange:
        # Allowed and valid: now the actor gets an account, so the audit can name them.
        user = actor.user or await self.accounts.ensure_user(actor.identity)
        change = await self.repo.change(guild_id, setting, value, actor_id=user.id)
        self._cache.pop(guild_id, None)
        return change

    async def retention_days(self) -> dict[int, int]:
        """Server -> image retention in days, for servers that set their own (0: keep)."""
        return await self.repo.retention_days()

    async def log_channels(self) -> list[tuple[int, int]]:
        """(server, channel) of every moderation log channel set (for notices every
        server's moderators should see, such as a retired image model)."""
        return await self.repo.log_channels()

    async def show(self, actor: Actor, guild_id: int) -> EffectiveSettings:
        """The effective settings with their sources (moderators of that server, bot admins)."""
        self.permissions.check_change_settings(actor, guild_id)
        return await self.effective(guild_id)

    async def history(
        self, actor: Actor, guild_id: int, *, limit: int = 10
    ) -> list[tuple[SettingChange, int | None]]:
        """The server's latest changes, each with the Discord id of who made it (moderators of
        that server and bot admins)."""
        self.permissions.check_change_settings(actor, guild_id)
        changes = await self.repo.history(guild_id, limit=limit)
        users = await self.accounts.by_ids(c.actor_id for c in changes if c.actor_id)
        return [(c, users[c.actor_id].discord_id if c.actor_id in users else None) for c in changes]

    def _check(self, actor: Actor, guild_id: int, setting: str) -> None:
        if setting not in SETTINGS:
            raise InvalidInput("settings.unknown", setting=setting)
        self.permissions.check_change_settings(actor, guild_id)
        if not self.overridable(setting):
            raise NotAllowed("settings.global_economy", setting=setting)

    # Parsing -----------------------------------------------------------------------------

    def parse(
        self,
        setting: str,
        raw: str,
        *,
        channel_ids: Collection[int] = (),
        role_ids: Collection[int] = (),
        guild_id: int | None = None,
    ) -> Any:
        """`raw` as the value of `setting`, or InvalidInput saying what is wrong."""
        text = (raw or "").strip()
        parsers: dict[str, Callable[[], Any]] = {
            "generation_cost": lambda: _integer(setting, text, 0, MAX_COST),
            "upload_cost": lambda: _integer(setting, text, 0, MAX_COST),
            "starter_coins": lambda: _integer(setting, text, 0, self.max_coins),
            "daily_coins": lambda: _integer(setting, text, 0, self.max_coins),
            "jobs_per_member": lambda: _integer(setting, text, 1, self.defaults.jobs_per_member),
            "channel_ids": lambda: _channels(text, channel_ids),
            "generate_role_id": lambda: _role(text, role_ids, guild_id),
            "public_results": lambda: _boolean(setting, text),
            "daily_image_cap": lambda: _optional_integer(setting, text, 0, MAX_DAILY_IMAGES),
            "monthly_budget_usd": lambda: _dollars(text),
            "mod_log_channel_id": lambda: _channel(text, channel_ids),
            "nsfw_only": lambda: _boolean(setting, text),
            "rate_limits": lambda: _rates(text, self.defaults.rate_limits),
            "image_retention_days": lambda: _retention(setting, text),
            "pay_daily_limit": lambda: _integer(setting, text, 0, MAX_PAY_DAILY_LIMIT),
            "private_mode": lambda: _boolean(setting, text),
            "max_batch": lambda: _integer(setting, text, 1, MAX_BATCH),
        }
        return parsers[setting]()


def _integer(setting: str, text: str, low: int, high: int) -> int:
    cleaned = text.replace("_", "").replace(",", "").replace(" ", "")
    if not re.fullmatch(r"[+-]?\d+", cleaned):
        raise InvalidInput("settings.not_a_number", setting=setting, value=text[:50])
    # Digits only, so int() cannot fail; compare before anything is stored.
    value = int(cleaned) if len(cleaned) < 30 else high + 1
    if not low <= value <= high:
        raise InvalidInput("settings.out_of_range", setting=setting, low=low, high=high)
    return value


def _retention(setting: str, text: str) -> int:
    """Days to keep images: a whole number from 1; 0 or none/off keeps them until deleted."""
    if text.lower() in _OFF:
        return 0
    return _integer(setting, text, 0, MAX_RETENTION_DAYS)


def _optional_integer(setting: str, text: str, low: int, high: int) -> int | None:
    """A cap: a whole number, or none/off for no cap."""
    if text.lower() in _OFF:
        return None
    return _integer(setting, text, low, high)


def _dollars(text: str) -> int | None:
    """A monthly budget in US dollars (12.50, $20), as micro-dollars; none/off: no cap."""
    if text.lower() in _OFF:
        return None
    cleaned = text.removeprefix("$").replace(",", "").replace("_", "").strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", cleaned) or len(cleaned) > 30:
        raise InvalidInput("settings.not_dollars", value=text[:50])
    amount = Decimal(cleaned)
    if not Decimal(0) <= amount <= MAX_MONTHLY_USD:
        raise InvalidInput("settings.dollars_out_of_range", high=f"{MAX_MONTHLY_USD:,}")
    return micros(amount)


def _channel(text: str, known: Collection[int]) -> int | None:
    """One channel of this server (for the moderation log); none/off: no log."""
    if text.lower() in _OFF:
        return None
    tokens = _snowflakes(text)
    if len(tokens) != 1:
        raise InvalidInput("settings.one_channel")
    token, snowflake = tokens[0]
    if snowflake is None or snowflake not in known:
        raise InvalidInput("settings.unknown_channel", value=token[:50])
    return snowflake


def _rates(text: str, ceiling: Mapping[str, int]) -> dict[str, int]:
    """`action=N` pairs, each from 1 to the host's own rate (a server may be stricter only)."""
    try:
        rates = parse_rates(text, ceiling=ceiling)
    except ValueError as error:
        raise InvalidInput("settings.bad_rates", detail=str(error)[:200]) from None
    if not rates:
        raise InvalidInput("settings.bad_rates", detail="no action=number pair")
    return rates


def _boolean(setting: str, text: str) -> bool:
    word = text.lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise InvalidInput("settings.not_boolean", setting=setting, value=text[:50])


def _snowflakes(text: str) -> list[tuple[str, int | None]]:
    """Tokens of a list of mentions or ids, each with its id (None if it is not one)."""
    tokens = [t for t in re.split(r"[\s,]+", text) if t]
    found: list[tuple[str, int | None]] = []
    for token in tokens:
        match = _SNOWFLAKE.match(token)
        found.append((token, int(match.group(1) or match.group(2)) if match else None))
    return found


def _channels(text: str, known: Collection[int]) -> list[int] | None:
    if text.lower() in _NONE:
        return None  # every channel: the default
    channels: list[int] = []
    for token, snowflake in _snowflakes(text):
        if snowflake is None or snowflake not in known:
            raise InvalidInput("settings.unknown_channel", value=token[:50])
        if snowflake not in channels:
            channels.append(snowflake)
    if len(channels) > MAX_CHANNELS:
        raise InvalidInput("settings.too_many_channels", limit=MAX_CHANNELS)
    return channels


def _role(text: str, known: Collection[int], guild_id: int | None) -> int | None:
    if text.lower() in _NONE:
        return None
    tokens = _snowflakes(text)
    if len(tokens) != 1:
        raise InvalidInput("settings.one_role")
    token, snowflake = tokens[0]
    if snowflake is None or snowflake not in known:
        raise InvalidInput("settings.unknown_role", value=token[:50])
    # @everyone's id is the server's: requiring it requires nothing.
    return None if snowflake == guild_id else snowflake
