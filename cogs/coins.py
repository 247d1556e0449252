"""`/coins`: your balance here, images, coins spent and recent ledger rows (others' for those
the permission rules allow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.types import CoinTransaction, Wallet
from cogs.common import (
    TenantCog,
    command_text,
    identity_of,
    language_of,
    option_texts,
    shorten,
    target_identity,
)
from cogs.images import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

KIND_ICONS = {
    "STARTER": "🎁",
    "GRANT": "➕",
    "GENERATION": "🎨",
    "REFUND": "↩️",
    "UPLOAD": "📤",
    "ADJUSTMENT": "⚖️",
    "DAILY": "📅",
    "TRANSFER": "💸",
}


# Five history lines share one embed field (1024 characters): a line is at most about
# 2 + 21 + 3 + 19 + 17 + 3 + REASON_CHARS = 165 characters, so five always fit.
REASON_CHARS = 100


def ledger_line(row: CoinTransaction) -> str:
    sign = "+" if row.delta > 0 else ""
    stamp = discord.utils.format_dt(row.created_at, "R")
    reason = ""
    if row.reason and row.kind in ("GRANT", "ADJUSTMENT", "TRANSFER"):
        reason = f" · {shorten(row.reason, REASON_CHARS)}"
    return (
        f"{KIND_ICONS.get(row.kind, '•')} `{sign}{row.delta}` → {row.balance_after} {stamp}{reason}"
    )


def wallet_line(bot: NanoBananaBot, language: str, wallet: Wallet) -> str:
    """One wallet in a DM listing: the server's name (or "carried over"), its balance."""
    if wallet.guild_id is None:
        where = t(language, "coins.carried_over")
    else:
        guild = bot.get_guild(wallet.guild_id)
        where = shorten(guild.name, 60) if guild is not None else str(wallet.guild_id)
    return f"**{where}**: 🪙 {wallet.coins}"


class CoinsCog(TenantCog):
    """Balances."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("coins"))
    @app_commands.describe(**option_texts("coins", "user"))
    async def coins(self, itx: Interaction, user: discord.User | None = None) -> None:
        bot = self.bot
        language = await language_of(itx)
        actor = await bot.accounts.actor(identity_of(itx))
        target = target_identity(user) if user is not None else None
        overview = await bot.wallets.overview(actor, target)
        name = (user or itx.user).display_name
        embed = discord.Embed(title=t(language, "coins.title", user=name), colour=BANANA)
        if overview.wallet is not None:
            embed.add_field(name=t(language, "coins.balance"), value=f"🪙 {overview.wallet.coins}")
        else:
            lines = "\n".join(wallet_line(bot, language, w) for w in overview.wallets)
            embed.add_field(
                name=t(language, "coins.wallets"),
                # An embed field holds 1024 characters; a member in very many servers sees
                # the first of them (and each server's balance in /coins there).
                value=shorten(lines, 1024) or t(language, "coins.no_wallets"),
                inline=False,
            )
        embed.add_field(name=t(language, "coins.generated"), value=str(overview.stats.generated))
        embed.add_field(name=t(language, "coins.uploaded"), value=str(overview.stats.uploaded))
        embed.add_field(name=t(language, "coins.spent"), value=str(overview.stats.coins_spent))
        if overview.wallet is not None:
            history = "\n".join(ledger_line(row) for row in overview.recent)
            embed.add_field(
                name=t(language, "coins.history"),
                value=history or t(language, "coins.no_history"),
                inline=False,
            )
        await itx.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(CoinsCog(bot))
