"""GuildSettingsRepository: each server's overrides of the environment's defaults, and the
audit of who changed what."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Database, Transaction
from storage.models import GuildOverrides, SettingChange
from storage.timeutil import from_iso, utcnow_iso

# Setting name -> column. The names are the only identifiers that reach SQL text.
SETTINGS: tuple[str, ...] = (
    "generation_cost",
    "upload_cost",
    "starter_coins",
    "daily_coins",
    "jobs_per_member",
    "channel_ids",
    "generate_role_id",
    "public_results",
    "daily_image_cap",
    "monthly_budget_usd",
    "mod_log_channel_id",
    "nsfw_only",
    "rate_limits",
    "image_retention_days",
    # Issue 23 (b): /pay's daily limit, and whether members may keep results private.
    "pay_daily_limit",
    "private_mode",
    # issue 23: the most images one /generate may ask for (migration 0012).
    "max_batch",
)
# Where a setting's name is not its column: the budget is stored in micro-dollars.
_COLUMN = {setting: setting for setting in SETTINGS} | {
    "monthly_budget_usd": "monthly_budget_micros"
}
_COLUMNS = ", ".join(_COLUMN[s] for s in SETTINGS)
_SNOWFLAKES = ("generate_role_id", "mod_log_channel_id")
_BOOLEANS = ("public_results", "nsfw_only", "private_mode")


class GuildSettingsRepository:
    """Per-server settings rows (NULL column = the default) and their change log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, guild_id: int) -> GuildOverrides:
        """The server's overrides (all None if it never changed anything)."""
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM guild_settings WHERE guild_id = ?", (str(guild_id),)
        )
        return GuildOverrides.from_row(row) if row is not None else GuildOverrides()

    async def retention_days(self) -> dict[int, int]:
        """Server -> its image retention in days, for every server that set one (0: keep)."""
        rows = await self.db.fetchall(
            "SELECT guild_id, image_retention_days FROM guild_settings "
            "WHERE image_retention_days IS NOT NULL"
        )
        return {int(row[0]): int(row[1]) for row in rows}

    async def log_channels(self) -> list[tuple[int, int]]:
        """(server, channel) for every server with a moderation log channel set."""
        rows = await self.db.fetchall(
            "SELECT guild_id, mod_log_channel_id FROM guild_settings "
            "WHERE mod_log_channel_id IS NOT NULL ORDER BY guild_id"
        )
        return [(int(row[0]), int(row[1])) for row in rows]

    async def change(
        self, guild_id: int, setting: str, value: Any, *, actor_id: str | None
    ) -> SettingChange:
        """Set one setting (None: back to the default) and record who changed it from what,
        in one transaction. `value` is an int, a bool, a snowflake or a list of snowflakes."""
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}")
        stored = _to_column(setting, value)
        guild = str(guild_id)
        column = _COLUMN[setting]

        async def write(tx: Transaction) -> SettingChange:
            now = utcnow_iso()
            # The row is created first (if missing) so that it can be locked: two moderators
            # changing the same setting in two processes each audit the other's value.
            await tx.execute(
                "INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, ?) "
                "ON CONFLICT (guild_id) DO NOTHING",
                (guild, now),
            )
            before = await tx.fetchone(
                f"SELECT {column} FROM guild_settings WHERE guild_id = ?{tx.dialect.for_update}",
                (guild,),
            )
            old = _from_column(setting, before[0] if before is not None else None)
            await tx.execute(
                f"UPDATE guild_settings SET {column} = ?, updated_at = ? WHERE guild_id = ?",
                (stored, now, guild),
            )
            new = _from_column(setting, stored)
            await tx.execute(
                "INSERT INTO guild_settings_changes (guild_id, setting, old_value, new_value, "
                "actor_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (guild, setting, _audit(old), _audit(new), actor_id, now),
            )
            return SettingChange(
                guild_id=guild_id, setting=setting, old_value=old, new_value=new,
                actor_id=actor_id, created_at=now,
            )  # fmt: skip

        return await self.db.write(write)

    async def history(self, guild_id: int, *, limit: int = 10) -> list[SettingChange]:
        """The server's latest setting changes, newest first."""
        rows = await self.db.fetchall(
            "SELECT guild_id, setting, old_value, new_value, actor_id, created_at "
            "FROM guild_settings_changes WHERE guild_id = ? ORDER BY seq DESC LIMIT ?",
            (str(guild_id), limit),
        )
        return [
            SettingChange(
                guild_id=guild_id,
                setting=r["setting"],
                old_value=_from_audit(r["setting"], r["old_value"]),
                new_value=_from_audit(r["setting"], r["new_value"]),
                actor_id=r["actor_id"],
                created_at=from_iso(r["created_at"]),
            )
            for r in rows
        ]


def _to_column(setting: str, value: Any) -> Any:
    if value is None:
        return None
    if setting == "rate_limits":
        return json.dumps({str(k): int(v) for k, v in value.items()}, sort_keys=True)
    if setting == "channel_ids":
        return json.dumps([str(int(c)) for c in value])
    if setting in _SNOWFLAKES:
        return str(int(value))
    if setting in _BOOLEANS:
        return int(bool(value))
    return int(value)


def _from_column(setting: str, stored: Any) -> Any:
    """A column's value in the shape `change` takes (None for the default)."""
    if stored is None:
        return None
    if setting == "rate_limits":
        return {str(k): int(v) for k, v in json.loads(stored).items()}
    if setting == "channel_ids":
        return [int(c) for c in json.loads(stored)]
    if setting in _SNOWFLAKES:
        return int(stored)
    if setting in _BOOLEANS:
        return bool(stored)
    return int(stored)


def _from_audit(setting: str, text: str | None) -> Any:
    if text is None:
        return None
    value = json.loads(text)
    if setting == "channel_ids":
        return [int(c) for c in value]
    if setting in _SNOWFLAKES:
        return int(value)
    return value


def _audit(value: Any) -> str | None:
    # Snowflakes as text inside JSON: they exceed JavaScript's safe integers.
    if value is None:
        return None
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    if isinstance(value, int) and not isinstance(value, bool) and value > 2**53:
        return json.dumps(str(value))
    return json.dumps(value)
