"""The data model: users, images and the coin ledger, as pydantic models with the seed's helpers.

Row conversion lives here too (`from_row` / `to_row`), so repositories stay about SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from storage.timeutil import from_iso, to_iso


class Row(Protocol):
    """A result row, by column name or position: sqlite3.Row and asyncpg.Record both are
    (tests may pass plain dicts)."""

    def __getitem__(self, key: Any, /) -> Any: ...

    def keys(self) -> Any: ...


class UserRole(StrEnum):
    USER = "USER"
    ADMIN = "ADMIN"


class ImageType(StrEnum):
    GENERATED = "GENERATED"
    UPLOADED = "UPLOADED"


class ImageStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class TransactionKind(StrEnum):
    STARTER = "STARTER"
    GRANT = "GRANT"
    GENERATION = "GENERATION"
    REFUND = "REFUND"
    UPLOAD = "UPLOAD"
    ADJUSTMENT = "ADJUSTMENT"
    DAILY = "DAILY"
    # A member paid another (/pay): one row on each wallet, in one transaction.
    TRANSFER = "TRANSFER"


# The only status changes a job may make; everything else is a bug and is refused.
ALLOWED_TRANSITIONS: dict[ImageStatus, frozenset[ImageStatus]] = {
    ImageStatus.PENDING: frozenset({ImageStatus.PROCESSING, ImageStatus.FAILED}),
    ImageStatus.PROCESSING: frozenset({ImageStatus.COMPLETED, ImageStatus.FAILED}),
    ImageStatus.COMPLETED: frozenset(),
    ImageStatus.FAILED: frozenset(),
}


# Image ids are UUIDs; members see and type their first characters.
SHORT_ID_LENGTH = 8


def _snowflake(value: Any) -> int | None:
    """A Discord id stored as text (or NULL) as an int."""
    return int(value) if value is not None else None


def _loads(value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    return json.loads(value) if isinstance(value, str) else value


class User(BaseModel):
    """A person: a Discord identity (and, as in the seed, optionally an e-mail/Google login)."""

    model_config = ConfigDict(frozen=True)

    id: str
    email: str | None = None
    google_id: str | None = None
    discord_id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    roles: tuple[UserRole, ...] = (UserRole.USER,)
    language: str = "en"
    created_at: datetime
    updated_at: datetime

    @property
    def full_name(self) -> str:
        """First and last name, else the display name, else a Discord mention-free fallback."""
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.display_name or f"user {self.id[:8]}"

    def has_role(self, role: UserRole) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return self.has_role(UserRole.ADMIN)

    @classmethod
    def from_row(cls, row: Row) -> User:
        discord_id = row["discord_id"]
        return cls(
            id=row["id"],
            email=row["email"],
            google_id=row["google_id"],
            discord_id=int(discord_id) if discord_id is not None else None,
            first_name=row["first_name"],
            last_name=row["last_name"],
            display_name=row["display_name"],
            roles=tuple(UserRole(r) for r in _loads(row["roles"], ["USER"])),
            language=row["language"],
            created_at=from_iso(row["created_at"]),
            updated_at=from_iso(row["updated_at"]),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "google_id": self.google_id,
            "discord_id": str(self.discord_id) if self.discord_id is not None else None,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": self.display_name,
            "roles": json.dumps([r.value for r in self.roles]),
            "language": self.language,
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
        }


class Image(BaseModel):
    """A generated or uploaded image and its job state."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    type: ImageType
    status: ImageStatus
    # The server it was made or uploaded in (None: a DM, or unknown from before 0002).
    guild_id: int | None = None
    # The wallet that paid for it: a refund goes back there.
    wallet_id: str | None = None
    title: str | None = None
    description: str | None = None
    prompt: str | None = None
    storage_key: str | None = None
    storage_url: str | None = None
    thumbnail_key: str | None = None
    thumbnail_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    coins_used: int = 0
    created_at: datetime
    updated_at: datetime

    @property
    def is_ready(self) -> bool:
        return self.status is ImageStatus.COMPLETED

    @property
    def short_id(self) -> str:
        """The first 8 characters of the id: what members see and type (see `SHORT_ID_LENGTH`)."""
        return self.id[:SHORT_ID_LENGTH]

    @property
    def is_generated(self) -> bool:
        return self.type is ImageType.GENERATED

    @property
    def is_uploaded(self) -> bool:
        return self.type is ImageType.UPLOADED

    @property
    def display_url(self) -> str | None:
        """The thumbnail when there is one, else the full image (as in the seed)."""
        return self.thumbnail_url or self.storage_url

    @property
    def dimensions(self) -> tuple[int, int] | None:
        width, height = self.metadata.get("width"), self.metadata.get("height")
        if isinstance(width, int) and isinstance(height, int):
            return width, height
        return None

    @property
    def size_mb(self) -> float | None:
        size = self.metadata.get("size")
        return round(size / (1024 * 1024), 2) if isinstance(size, int) else None

    @classmethod
    def from_row(cls, row: Row) -> Image:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            type=ImageType(row["type"]),
            status=ImageStatus(row["status"]),
            guild_id=_snowflake(row["guild_id"]),
            wallet_id=row["wallet_id"],
            title=row["title"],
            description=row["description"],
            prompt=row["prompt"],
            storage_key=row["storage_key"],
            storage_url=row["storage_url"],
            thumbnail_key=row["thumbnail_key"],
            thumbnail_url=row["thumbnail_url"],
            metadata=_loads(row["metadata"], {}),
            coins_used=row["coins_used"],
            created_at=from_iso(row["created_at"]),
            updated_at=from_iso(row["updated_at"]),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "type": self.type.value,
            "status": self.status.value,
            "guild_id": str(self.guild_id) if self.guild_id is not None else None,
            "wallet_id": self.wallet_id,
            "title": self.title,
            "description": self.description,
            "prompt": self.prompt,
            "storage_key": self.storage_key,
            "storage_url": self.storage_url,
            "thumbnail_key": self.thumbnail_key,
            "thumbnail_url": self.thumbnail_url,
            "metadata": json.dumps(self.metadata, separators=(",", ":")),
            "coins_used": self.coins_used,
            "created_at": to_iso(self.created_at),
            "updated_at": to_iso(self.updated_at),
        }


class CoinTransaction(BaseModel):
    """One ledger row: every coin movement has exactly one."""

    model_config = ConfigDict(frozen=True)

    id: str
    wallet_id: str
    user_id: str
    delta: int
    balance_after: int
    kind: TransactionKind
    image_id: str | None = None
    actor_id: str | None = None
    reason: str | None = None
    created_at: datetime
    #: The paid job a GENERATION or REFUND row belongs to (migration 0010).
    job_id: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> CoinTransaction:
        return cls(
            id=row["id"],
            wallet_id=row["wallet_id"],
            user_id=row["user_id"],
            delta=row["delta"],
            balance_after=row["balance_after"],
            kind=TransactionKind(row["kind"]),
            image_id=row["image_id"],
            actor_id=row["actor_id"],
            reason=row["reason"],
            created_at=from_iso(row["created_at"]),
            job_id=row["job_id"],
        )


class Wallet(BaseModel):
    """A member's coins in one server (ECONOMY_SCOPE=guild) or everywhere (`guild_id` None)."""

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    guild_id: int | None = None
    coins: int = Field(default=0, ge=0)
    carried_over: bool = False
    daily_claimed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Wallet:
        claimed = row["daily_claimed_at"]
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            guild_id=_snowflake(row["guild_id"]),
            coins=row["coins"],
            carried_over=bool(row["carried_over"]),
            daily_claimed_at=from_iso(claimed) if claimed else None,
            created_at=from_iso(row["created_at"]),
            updated_at=from_iso(row["updated_at"]),
        )


class GuildOverrides(BaseModel):
    """A server's own settings; None means "the environment's default"."""

    model_config = ConfigDict(frozen=True)

    generation_cost: int | None = None
    upload_cost: int | None = None
    starter_coins: int | None = None
    daily_coins: int | None = None
    jobs_per_member: int | None = None
    channel_ids: tuple[int, ...] | None = None
    generate_role_id: int | None = None
    public_results: bool | None = None
    daily_image_cap: int | None = None
    monthly_budget_usd: int | None = None  # micro-dollars
    mod_log_channel_id: int | None = None
    nsfw_only: bool | None = None
    # Per-member limits a minute by action (only those the server set).
    rate_limits: dict[str, int] | None = None
    # Days an image is kept before the retention sweep deletes it (0: until deleted).
    image_retention_days: int | None = None
    # Coins a member may pay others in 24 hours (0: /pay off); members' private mode allowed.
    pay_daily_limit: int | None = None
    private_mode: bool | None = None
    max_batch: int | None = None

    @classmethod
    def from_row(cls, row: Row) -> GuildOverrides:
        channels = _loads(row["channel_ids"], None)
        public = row["public_results"]
        nsfw = row["nsfw_only"]
        rates = _loads(row["rate_limits"], None)
        return cls(
            generation_cost=row["generation_cost"],
            upload_cost=row["upload_cost"],
            starter_coins=row["starter_coins"],
            daily_coins=row["daily_coins"],
            jobs_per_member=row["jobs_per_member"],
            channel_ids=tuple(int(c) for c in channels) if channels is not None else None,
            generate_role_id=_snowflake(row["generate_role_id"]),
            public_results=bool(public) if public is not None else None,
            daily_image_cap=row["daily_image_cap"],
            monthly_budget_usd=row["monthly_budget_micros"],
            mod_log_channel_id=_snowflake(row["mod_log_channel_id"]),
            nsfw_only=bool(nsfw) if nsfw is not None else None,
            rate_limits={str(k): int(v) for k, v in rates.items()} if rates else None,
            image_retention_days=row["image_retention_days"],
            pay_daily_limit=row["pay_daily_limit"],
            private_mode=bool(row["private_mode"]) if row["private_mode"] is not None else None,
            max_batch=row["max_batch"],
        )


class SettingChange(BaseModel):
    """One audit row: who changed which server setting, from what to what (None = default)."""

    model_config = ConfigDict(frozen=True)

    guild_id: int
    setting: str
    old_value: Any = None
    new_value: Any = None
    actor_id: str | None = None
    created_at: datetime


class UserStats(BaseModel):
    """What `/coins` shows: image counts, coins spent net of refunds, the newest image."""

    model_config = ConfigDict(frozen=True)

    total_images: int = 0
    generated: int = 0
    uploaded: int = 0
    by_status: dict[ImageStatus, int] = Field(default_factory=dict)
    coins_spent: int = 0
    newest_image: Image | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset listing; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None
