"""`/daily`: claim this server's daily coins, once every 24 hours per wallet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord import app_commands

from bot.i18n import t
from cogs.common import TenantCog, command_text, identity_of, in_guild, reply

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


class DailyCog(TenantCog):
    """Earning coins."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("daily"))
    @app_commands.guild_only()
    @in_guild()
    async def daily(self, itx: Interaction) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        result = await bot.wallets.claim_daily(member.user, member.guild_id)
        opens = int(result.next_claim_at.timestamp())
        await reply(
            itx,
            t(member.language, "daily.done", amount=result.amount, balance=result.balance,
              at=opens),
        )  # fmt: skip


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(DailyCog(bot))
