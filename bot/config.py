"""All configuration in one place: environment variables and `.env`, typed and validated.

Every name here is a contract (DESIGN section 8). A missing or invalid value stops start-up with
one line naming the variable: see `load_settings`.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.rates import DEFAULT_RATES, parse_rates

# SQLite integers are signed 64-bit; a balance must always fit.
INT64_MAX = 2**63 - 1
# The default cap on a balance: far below int64, so no credit or refund can ever overflow.
DEFAULT_MAX_BALANCE = 10**12


class StorageBackend(StrEnum):
    """Where image bytes live."""

    LOCAL = "local"
    S3 = "s3"


class EconomyScope(StrEnum):
    """Whose coins are whose: one wallet per member per server, or one per member."""

    GUILD = "guild"
    GLOBAL = "global"


def _split_names(value: Any) -> Any:
    """Accept `a,b c` or a list for name lists (models)."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


def parse_costs(value: Any) -> dict[str, int]:
    """`GENERATION_COSTS`: `model=cost` or `model:size=cost` pairs, comma-separated, e.g.
    `gemini-3-pro-image-preview=150,gemini-3-pro-image-preview:4K=300`. Keys come back as
    `model` or `model:size`."""
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str):
        items = []
        for chunk in value.replace(";", ",").split(","):
            if not chunk.strip():
                continue
            key, sep, amount = chunk.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{chunk.strip()!r} is not model=cost or model:size=cost")
            items.append((key, amount.strip()))
    else:
        raise ValueError("must be model=cost pairs, comma-separated")
    costs: dict[str, int] = {}
    for raw_key, raw_amount in items:
        model, _, size = raw_key.strip().removeprefix("models/").partition(":")
        key = f"{model.strip()}:{size.strip()}" if size.strip() else model.strip()
        try:
            coins = int(str(raw_amount))
        except ValueError:
            raise ValueError(f"the cost of {key} must be a whole number of coins") from None
        if coins < 0:
            raise ValueError(f"the cost of {key} must not be negative")
        costs[key] = coins
    return costs


# A monthly budget above this is a typo, not a plan; per-image prices likewise.
MAX_BUDGET_USD = Decimal("10000000")
MAX_IMAGE_PRICE_USD = Decimal("100")
MAX_TOKEN_PRICE_USD = Decimal("10000")


def parse_usd(text: str, what: str, high: Decimal) -> Decimal:
    """A dollar amount like `25`, `12.50` or `$0.039`: finite, not negative, at most `high`."""
    cleaned = text.strip().removeprefix("$").replace(",", "").replace("_", "").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(
            f"{what} must be a dollar amount like 12.50, not {text.strip()!r}"
        ) from None
    if not amount.is_finite():
        raise ValueError(f"{what} must be a dollar amount like 12.50, not {text.strip()!r}")
    if amount < 0:
        raise ValueError(f"{what} must not be negative")
    if amount > high:
        raise ValueError(f"{what} must be at most ${high:,}")
    return amount


def parse_prices(value: Any, *, per: str, high: Decimal) -> dict[str, Decimal]:
    """`IMAGE_PRICES_USD` / `TOKEN_PRICES_USD`: `key=usd` pairs, comma-separated, keys as
    `model`, `model:size`, `model:input` or `model:output`."""
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        items = []
        for chunk in value.replace(";", ",").split(","):
            if not chunk.strip():
                continue
            key, sep, amount = chunk.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{chunk.strip()!r} is not key=dollars")
            items.append((key, amount))
    else:
        raise ValueError("must be key=dollars pairs, comma-separated")
    prices: dict[str, Decimal] = {}
    for raw_key, raw_amount in items:
        model, _, rest = raw_key.strip().removeprefix("models/").partition(":")
        key = f"{model.strip()}:{rest.strip()}" if rest.strip() else model.strip()
        prices[key] = parse_usd(raw_amount, f"the price {per} of {key}", high)
    return prices


_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
THINKING_LEVELS = ("minimal", "low", "medium", "high")


def parse_thinking(value: Any) -> dict[str, str]:
    """`NANOBANANA_THINKING`: `level` (every model that has levels) or `model=level` pairs,
    comma-separated, e.g. `high` or `gemini-nano-banana-2.1=high,gemini-3.1-flash-image=minimal`.
    Keys come back as model ids, or `*` for every model."""
    if isinstance(value, dict):
        items = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        items = []
        for chunk in value.replace(";", ",").split(","):
            if not chunk.strip():
                continue
            key, sep, level = chunk.partition("=")
            items.append((key, level) if sep else ("*", key))
    elif value is None:
        return {}
    else:
        raise ValueError("must be a level, or model=level pairs, comma-separated")
    levels: dict[str, str] = {}
    for raw_key, raw_level in items:
        key = raw_key.strip().removeprefix("models/") or "*"
        level = raw_level.strip().lower()
        if level not in THINKING_LEVELS:
            raise ValueError(
                f"{level or 'an empty level'!r} is not a thinking level "
                f"({', '.join(THINKING_LEVELS)})"
            )
        if key != "*" and not _MODEL_ID.match(key):
            raise ValueError(f"{key[:60]!r} is not a model id")
        levels[key] = level
    return levels


def _split_ids(value: Any) -> Any:
    """Accept `1,2,3`, `1 2 3`, a JSON-ish list, or a single integer for id lists."""
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        cleaned = value.strip().strip("[]")
        return [part for part in cleaned.replace(",", " ").split() if part]
    return value


class Settings(BaseSettings):
    """The bot's settings, read from the environment and `.env` (environment wins)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # Discord
    discord_token: SecretStr = Field(description="Bot token from the Discord developer portal.")
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Guilds to sync commands to instantly while developing (comma-separated).",
    )
    admin_user_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Bot admins: Discord user ids who may /grant and /settings in any server.",
    )
    allowed_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Servers the bot may be in (empty: any); it leaves the others.",
    )

    # Database: a SQLite file (the default), or PostgreSQL when DATABASE_URL is set.
    database_path: Path = Field(default=Path("data/bot.db"))
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:5432/dbname; SQLite when unset.",
    )
    database_pool_size: int = Field(default=10, ge=2, le=200)

    # Discord shards this process runs (several processes each run some of them).
    shard_count: int | None = Field(default=None, ge=1, le=10_000)
    shard_ids: Annotated[list[int] | None, NoDecode] = None

    # Object storage
    storage_backend: StorageBackend = StorageBackend.LOCAL
    local_storage_dir: Path = Field(default=Path("data/objects"))
    r2_account_id: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_bucket: str | None = None
    s3_public_base_url: str | None = None

    # Nano Banana (Gemini image generation)
    gemini_api_key: SecretStr | None = None
    # `auto`: the first model of the lineup's preference order the key can use (asked of the
    # API at start-up and every few hours); an id pins that model.
    nanobanana_model: str = "auto"
    # An owner's TOML or JSON file of model profiles (same shape as bot/nanobanana/lineup.toml).
    nanobanana_model_profiles: Path | None = None
    # Thinking level per model (`model=level`, or one `level` for every model that has it).
    nanobanana_thinking: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # How often one process asks the API which models exist.
    nanobanana_models_refresh_hours: float = Field(default=6.0, ge=0.05, le=168)
    nanobanana_base_url: str = "https://generativelanguage.googleapis.com"
    # /describe: the text model that writes captions (`auto`: the cheapest current one the
    # key lists, see bot/nanobanana/text_models.toml) and what a caption costs.
    describe_model: str = Field(default="auto", pattern=r"^(auto|[a-z0-9][a-z0-9.\-]{1,80})$")
    describe_cost: int = Field(default=10, ge=0, le=INT64_MAX)
    # Coins a /generate grounded in Google Search costs on top of its image (issue 22).
    grounding_cost: int = Field(default=20, ge=0, le=INT64_MAX)
    nanobanana_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models members may pick on /generate (NANOBANANA_MODEL is always one).",
    )
    nanobanana_timeout: float = Field(default=120.0, gt=0)
    nanobanana_max_attempts: int = Field(default=4, ge=1, le=10)

    # Economy and limits
    generation_cost: int = Field(default=100, ge=0, le=INT64_MAX)
    generation_costs: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="Cost per model and size, e.g. gemini-3-pro-image-preview:4K=300.",
    )
    max_balance: int = Field(default=DEFAULT_MAX_BALANCE, ge=1, le=INT64_MAX // 2)
    upload_cost: int = Field(default=0, ge=0, le=INT64_MAX)
    starter_coins: int = Field(default=300, ge=0, le=INT64_MAX)
    max_grant: int = Field(default=1_000_000, ge=1, le=INT64_MAX)
    max_concurrent_generations: int = Field(default=4, ge=1, le=64)
    max_jobs_per_user: int = Field(default=2, ge=1, le=100)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Largest upload in pixels, and the lower limit for images attached to /generate (they
    # are shrunk at once to what the model uses, a few megapixels; a bigger one is refused
    # from its declared size, before it is downloaded).
    max_upload_pixels: int = Field(default=40_000_000, ge=10_000, le=200_000_000)
    max_input_pixels: int = Field(default=25_000_000, ge=10_000, le=200_000_000)
    # Jobs that may wait for a worker (beyond those running); more are refused, for free.
    generation_queue_size: int = Field(default=200, ge=1, le=100_000)
    # Processes for image work (thumbnails, contact sheets, shrinking inputs), off the event
    # loop; 0 runs it in threads of the bot's process. Past IMAGE_QUEUE waiting requests,
    # members get "busy, try again" (jobs' own thumbnails always wait their turn).
    image_workers: int = Field(default=1, ge=0, le=32)
    image_queue: int = Field(default=8, ge=0, le=10_000)
    # Per-member limits, a minute, by action (see README "Limits"), e.g. generate=5,gallery=20.
    rate_limits: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, validate_default=True
    )
    # Keep-alive connections to Discord's API (requests beyond wait for one); 0: discord.py's
    # own pool (no bound).
    discord_connections: int = Field(default=32, ge=0, le=1000)
    # The event loop: uvloop when installed (auto), or asyncio's own.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    max_prompt_chars: int = Field(default=1000, ge=1, le=10_000)
    economy_scope: EconomyScope = EconomyScope.GUILD
    daily_coins: int = Field(default=50, ge=0, le=INT64_MAX)
    # Coins a member may pay others with /pay in 24 hours (a server may change it; 0: off).
    pay_daily_limit: int = Field(default=1000, ge=0, le=INT64_MAX)

    # What the host pays Google: a deployment-wide cap (None: no cap) and price overrides.
    monthly_budget_usd: Decimal | None = None
    image_prices_usd: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=dict,
        description="USD per image by model or model:size, overriding Google's list prices.",
    )
    token_prices_usd: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=dict,
        description="USD per million tokens by model:input or model:output.",
    )

    # Where /help links to (the README of the copy you run); no links when unset.
    docs_url: str | None = None

    # Resilience: how long a job's database or storage step is retried before the job is
    # failed and refunded, and how long one SQLite write waits for a lock.
    job_retry_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How long a process's jobs and slots stay its own without a heartbeat: after a crash,
    # its jobs are failed and refunded by the first process that notices, this long after.
    job_lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    # Below Discord's 3 s to answer an interaction, so a locked database gets a "busy, try
    # again" reply in time instead of "the application did not respond".
    database_busy_timeout_ms: int = Field(default=2000, ge=0, le=600_000)

    # The web gallery and REST API (web/): served in the bot's process.
    web_host: str = "127.0.0.1"
    # 0 turns the web server off.
    web_port: int = Field(default=8080, ge=0, le=65535)
    # The public address members use (behind your reverse proxy), e.g. https://gallery.example.org;
    # unset: http://WEB_HOST:WEB_PORT, and Discord messages get no links to it.
    web_base_url: str | None = None
    # Discord OAuth2 (Developer Portal -> OAuth2) for "Sign in with Discord"; off when unset.
    discord_client_id: str | None = None
    discord_client_secret: SecretStr | None = None
    # Signs session cookies; generated at first start and kept in the database when unset.
    web_session_secret: SecretStr | None = None
    # Requests per minute one API token may make (429 with Retry-After beyond).
    api_rate_limit: int = Field(default=120, ge=1, le=100_000)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks): the
    # client's address is then read from it, for the failed-token throttle. Empty: the
    # connection's own address (the header is ignored).
    web_trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # Where sign-in talks to Discord (tests and proxies point it elsewhere).
    discord_oauth_base_url: str = "https://discord.com"

    log_level: str = "INFO"
    # `json`: one JSON object a line, with the interaction and job ids (for log collectors).
    log_format: Literal["text", "json"] = "text"

    # Operating it (docs/operations.md): /metrics for Prometheus, and scheduled backups.
    # /metrics wants `Authorization: Bearer METRICS_TOKEN` when set, and a client address in
    # METRICS_ALLOW (networks, e.g. 10.0.0.0/8) when set; with neither, local clients only.
    metrics_token: SecretStr | None = None
    metrics_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A port of its own for /metrics, /healthz and /readyz (on METRICS_HOST), instead of the
    # web server's; 0 picks a free port (logged).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Where scheduled backups go, how often (0: never) and how many are kept.
    backup_dir: Path | None = None
    backup_every_hours: float = Field(default=0.0, ge=0, le=24 * 366)
    backup_keep: int = Field(default=7, ge=1, le=10_000)
    # Members' data (issue 25): images older than this many days are deleted with their
    # objects by a periodic sweep (0: kept until deleted); a server may set its own with
    # /settings. `/privacy export` links are valid this many minutes.
    image_retention_days: int = Field(default=0, ge=0, le=36_500)
    privacy_link_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)

    @field_validator("metrics_token", "metrics_port", "backup_dir", mode="before")
    @classmethod
    def _blank_operations(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        items = _split_names(value) if value is not None else []
        for item in items:
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ValueError(f"{str(item)[:60]!r} is not an address or network") from None
        return items

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_lowercase(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or "text"
        return value

    @model_validator(mode="after")
    def _backups(self) -> Settings:
        if self.backup_every_hours and self.backup_dir is None:
            raise ValueError("BACKUP_EVERY_HOURS needs BACKUP_DIR (where backups go)")
        return self

    @field_validator("discord_guild_ids", "admin_user_ids", "allowed_guild_ids", mode="before")
    @classmethod
    def _parse_id_list(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("web_trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        networks = []
        for item in value or ():
            try:
                networks.append(ip_network(str(item).strip(), strict=False))
            except ValueError:
                raise ValueError(f"{str(item)[:60]!r} is not an IP address or network") from None
        return networks

    @field_validator("shard_count", mode="before")
    @classmethod
    def _blank_count(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _parse_shard_ids(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _split_ids(value)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or (isinstance(text, str) and not text.strip()):
            return None
        if not str(text).startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (leave it empty to use DATABASE_PATH)")
        return value

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT (the total over every process)")
            if not self.shard_ids:
                raise ValueError("SHARD_IDS must name at least one shard")
            wrong = [s for s in self.shard_ids if not 0 <= s < self.shard_count]
            if wrong:
                raise ValueError(
                    f"SHARD_IDS {wrong} out of range: shards are 0 to {self.shard_count - 1}"
                )
            if len(set(self.shard_ids)) != len(self.shard_ids):
                raise ValueError("SHARD_IDS names a shard twice")
        return self

    @property
    def runs_shard_zero(self) -> bool:
        """Whether this process runs shard 0 (all shards when SHARD_IDS is unset): the one
        that syncs commands and reconciles storage at start-up."""
        return self.shard_ids is None or 0 in self.shard_ids

    @property
    def postgres_url(self) -> str | None:
        return self.database_url.get_secret_value() if self.database_url else None

    @field_validator("nanobanana_models", mode="before")
    @classmethod
    def _parse_models(cls, value: Any) -> Any:
        return _split_names(value)

    @field_validator("generation_costs", mode="before")
    @classmethod
    def _parse_costs(cls, value: Any) -> Any:
        return parse_costs(value)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _parse_rates(cls, value: Any) -> Any:
        return {**DEFAULT_RATES, **parse_rates(value or {})}

    @field_validator("monthly_budget_usd", mode="before")
    @classmethod
    def _parse_budget(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None  # empty: no cap
        return parse_usd(str(value), "the budget", MAX_BUDGET_USD)

    @field_validator("image_prices_usd", mode="before")
    @classmethod
    def _parse_image_prices(cls, value: Any) -> Any:
        return parse_prices(value, per="per image", high=MAX_IMAGE_PRICE_USD)

    @field_validator("token_prices_usd", mode="before")
    @classmethod
    def _parse_token_prices(cls, value: Any) -> Any:
        prices = parse_prices(value, per="per million tokens", high=MAX_TOKEN_PRICE_USD)
        for key in prices:
            if not key.endswith((":input", ":output")):
                raise ValueError(f"{key}: name model:input or model:output")
        return prices

    @field_validator("nanobanana_model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return "auto"  # an empty line in .env: the default
        if not isinstance(value, str):
            return value
        value = value.strip().removeprefix("models/")
        if value.lower() == "auto":
            return "auto"
        if not _MODEL_ID.match(value):
            raise ValueError(f"{value[:60]!r} is not a model id (e.g. gemini-3-pro-image, or auto)")
        return value

    @field_validator("nanobanana_thinking", mode="before")
    @classmethod
    def _parse_thinking(cls, value: Any) -> Any:
        return parse_thinking(value)

    @field_validator("nanobanana_model_profiles", mode="before")
    @classmethod
    def _blank_path(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _models_and_costs(self) -> Settings:
        # Which models exist, and what each accepts, is checked where the lineup is loaded
        # (bot.services.models.load_models): this module imports nothing above it.
        models = [m.strip().removeprefix("models/") for m in self.nanobanana_models]
        pinned = [] if self.nanobanana_model == "auto" else [self.nanobanana_model]
        # The default model is always offered, first; duplicates are dropped.
        self.nanobanana_models = list(dict.fromkeys([*pinned, *models]))
        if "auto" in models:
            raise ValueError("NANOBANANA_MODELS lists model ids; `auto` is for NANOBANANA_MODEL")
        for key, amount in self.generation_costs.items():
            if amount > self.max_balance:
                raise ValueError(f"GENERATION_COSTS: {key} costs more than MAX_BALANCE")
        for name in ("generation_cost", "upload_cost", "starter_coins", "daily_coins", "max_grant"):
            if getattr(self, name) > self.max_balance:
                raise ValueError(f"{name.upper()} must not be more than MAX_BALANCE")
        return self

    @field_validator("discord_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("nanobanana_base_url", mode="before")
    @classmethod
    def _default_base_url(cls, value: Any) -> Any:
        # An empty line in .env means "use the default", not "no URL".
        return value or "https://generativelanguage.googleapis.com"

    @field_validator("discord_oauth_base_url", mode="before")
    @classmethod
    def _default_oauth_url(cls, value: Any) -> Any:
        return value or "https://discord.com"

    @field_validator(
        "r2_account_id",
        "s3_bucket",
        "s3_endpoint_url",
        "s3_public_base_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        "gemini_api_key",
        "docs_url",
        "web_base_url",
        "discord_client_id",
        "discord_client_secret",
        "web_session_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `.env.example` lists every variable with an empty value; empty means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("economy_scope", mode="before")
    @classmethod
    def _scope_lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator(
        "nanobanana_base_url",
        "s3_endpoint_url",
        "s3_public_base_url",
        "docs_url",
        "web_base_url",
        "discord_oauth_base_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _s3_complete(self) -> Settings:
        if self.storage_backend is StorageBackend.S3:
            missing = [
                name
                for name, value in (
                    ("S3_BUCKET", self.s3_bucket),
                    ("S3_ACCESS_KEY_ID", self.s3_access_key_id),
                    ("S3_SECRET_ACCESS_KEY", self.s3_secret_access_key),
                )
                if not value
            ]
            if not (self.r2_account_id or self.s3_endpoint_url):
                missing.append("R2_ACCOUNT_ID or S3_ENDPOINT_URL")
            if missing:
                raise ValueError(
                    f"STORAGE_BACKEND=s3 needs {', '.join(missing)}: set them or use "
                    "STORAGE_BACKEND=local"
                )
        return self

    @model_validator(mode="after")
    def _oauth_complete(self) -> Settings:
        if bool(self.discord_client_id) != bool(self.discord_client_secret):
            raise ValueError(
                "DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET go together: set both for "
                "'Sign in with Discord', or neither"
            )
        if self.discord_client_id and not self.discord_client_id.strip().isdigit():
            raise ValueError("DISCORD_CLIENT_ID is your application's id: digits only")
        if self.web_session_secret and len(self.web_session_secret.get_secret_value()) < 32:
            raise ValueError("WEB_SESSION_SECRET must be at least 32 characters")
        return self

    @property
    def web_enabled(self) -> bool:
        """Whether the web server runs (WEB_PORT=0 turns it off)."""
        return self.web_port != 0

    @property
    def sign_in_enabled(self) -> bool:
        """Whether "Sign in with Discord" is configured."""
        return self.discord_client_id is not None and self.discord_client_secret is not None

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint: explicit `S3_ENDPOINT_URL`, else Cloudflare R2 from the account id."""
        if self.s3_endpoint_url:
            return self.s3_endpoint_url
        if self.r2_account_id:
            return f"https://{self.r2_account_id}.r2.cloudflarestorage.com"
        return None


class SettingsError(Exception):
    """Configuration is missing or invalid; `str()` is one line naming the variable."""


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's report into one line naming the environment variable(s) at fault."""
    parts: list[str] = []
    for item in error.errors():
        loc = [str(p) for p in item.get("loc", ()) if p != "__root__"]
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        if loc:
            name = loc[0].upper()
            if item.get("type") == "missing":
                parts.append(f"{name} is not set")
            else:
                parts.append(f"{name} is invalid: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, raising SettingsError with a one-line, secret-free message on failure."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
