"""`/coins`: your balance, images, coins spent and recent ledger rows (others': admins only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from cogs.common import identity_of, shorten
from cogs.generate import BANANA
from storage.models import CoinTransaction

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

KIND_ICONS = {
    "STARTER": "🎁",
    "GRANT": "➕",
    "GENERATION": "🎨",
    "REFUND": "↩️",
    "UPLOAD": "📤",
    "ADJUSTMENT": "⚖️",
}


# Five history lines share one embed field (1024 characters): a line is at most about
# 2 + 21 + 3 + 19 + 17 + 3 + REASON_CHARS = 165 characters, so five always fit.
REASON_CHARS = 100


def ledger_line(row: CoinTransaction) -> str:
    sign = "+" if row.delta > 0 else ""
    stamp = discord.utils.format_dt(row.created_at, "R")
    reason = ""
    if row.reason and row.kind in ("GRANT", "ADJUSTMENT"):
        reason = f" · {shorten(row.reason, REASON_CHARS)}"
    return (
        f"{KIND_ICONS.get(row.kind, '•')} `{sign}{row.delta}` → {row.balance_after} {stamp}{reason}"
    )


class CoinsCog(commands.Cog):
    """Balances."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(name="coins", description="Your coins, images and recent activity")
    @app_commands.describe(user="Another member (moderators only)")
    async def coins(self, itx: Interaction, user: discord.User | None = None) -> None:
        accounts = self.bot.accounts
        viewer = identity_of(itx.user, itx)
        viewer_user = await accounts.ensure_user(viewer)
        target = identity_of(user) if user is not None else None
        overview = await accounts.overview(viewer, target)
        language = viewer_user.language
        name = (user or itx.user).display_name
        embed = discord.Embed(title=t(language, "coins.title", user=name), colour=BANANA)
        embed.add_field(name=t(language, "coins.balance"), value=f"🪙 {overview.user.coins}")
        embed.add_field(name=t(language, "coins.generated"), value=str(overview.stats.generated))
        embed.add_field(name=t(language, "coins.uploaded"), value=str(overview.stats.uploaded))
        embed.add_field(name=t(language, "coins.spent"), value=str(overview.stats.coins_spent))
        history = "\n".join(ledger_line(row) for row in overview.recent)
        embed.add_field(
            name=t(language, "coins.history"),
            value=history or t(language, "coins.no_history"),
            inline=False,
        )
        await itx.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(CoinsCog(bot))
