"""The data types adapters (cogs) read, re-exported so that they depend on services only,
never on storage/."""

from __future__ import annotations

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

__all__ = [
    "CoinTransaction",
    "Image",
    "ImageStatus",
    "ImageType",
    "JobRow",
    "JobStatus",
    "SettingChange",
    "TransactionKind",
    "User",
    "UserStats",
    "Wallet",
]
