"""The data types adapters (cogs) read, re-exported so that they depend on services only,
never on storage/."""

from __future__ import annotations

from storage.characters import Character
from storage.jobs import JobRow, JobStatus
from storage.models import (
    CoinTransaction,
    Image,
    ImageStatus,
    ImageType,
    SettingChange,
    TransactionKind,
    User,
    UserStats,
    Wallet,
)
from storage.usage import CapKind, Totals
from storage.web_sessions import WebSessionRow

__all__ = [
    "CapKind",
    "Character",
    "CoinTransaction",
    "Image",
    "ImageStatus",
    "ImageType",
    "JobRow",
    "JobStatus",
    "SettingChange",
    "Totals",
    "TransactionKind",
    "User",
    "UserStats",
    "Wallet",
    "WebSessionRow",
]
