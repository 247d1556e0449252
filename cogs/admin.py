"""`/grant`: moderators give coins, with a GRANT ledger row naming who and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t
from bot.services.errors import InvalidInput
from cogs.common import identity_of, reply
from cogs.generate import in_guild

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


class AdminCog(commands.Cog):
    """Moderator tools."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(name="grant", description="Give coins to a member (moderators)")
    @app_commands.describe(
        user="Who receives the coins",
        amount="How many coins (1 or more)",
        reason="Why (shown in their history)",
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @in_guild()
    async def grant(
        self,
        itx: Interaction,
        user: discord.User,
        # No Range: Discord itself carries INTEGER options between -2^53 and 2^53 (a wider
        # min/max makes the whole command sync fail with 400 Invalid Form Body), and every
        # value it carries reaches the service, which refuses what is outside 1..MAX_GRANT
        # with a message naming the limit.
        amount: int,
        reason: str | None = None,
    ) -> None:
        accounts = self.bot.accounts
        if reason is not None and len(reason) > 200:
            raise InvalidInput("grant.reason_too_long", limit=200)
        result = await accounts.grant(identity_of(itx.user, itx), identity_of(user), amount, reason)
        language = (await accounts.ensure_user(identity_of(itx.user, itx))).language
        await reply(
            itx,
            t(language, "grant.done", amount=result.amount, user=user.mention,
              balance=result.balance),
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(AdminCog(bot))
