"""`/grant`: moderators of a server (or bot admins) give coins, with a GRANT ledger row naming
who and why, and the member is told (by DM, or in the channel if their DMs are closed).

The command has no `default_member_permissions`: Discord then shows it to everyone, including
ADMIN_USER_IDS who lack Manage Server in a server; the bot's own check decides (see README).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.wallets import GrantResult
from cogs.common import (
    TenantCog,
    command_text,
    identity_of,
    in_guild,
    language_of,
    option_texts,
    reply,
    target_identity,
    tell_member,
)

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


class AdminCog(TenantCog):
    """Moderator tools."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("grant"))
    @app_commands.describe(**option_texts("grant", "user", "amount", "reason"))
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
        bot = self.bot
        actor = await bot.accounts.actor(identity_of(itx))
        result = await bot.wallets.grant(actor, target_identity(user), amount, reason)
        await reply(
            itx,
            t(await language_of(itx), "grant.done", amount=result.amount, user=user.mention,
              balance=result.balance),
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip
        await self.tell_recipient(itx, user, result)

    async def tell_recipient(
        self, itx: Interaction, user: discord.User | discord.Member, result: GrantResult
    ) -> None:
        """A DM with the amount, reason, server and who granted it; if DMs are closed, a
        mention in the channel (without the balance, which is private)."""
        language = result.target.language
        reason = result.reason or t(language, "grant.no_reason")
        server = itx.guild.name if itx.guild is not None else "?"
        await tell_member(
            itx, user, what="grant",
            dm=t(language, "grant.notice_dm", amount=result.amount, server=server,
                 actor=itx.user.display_name, reason=reason, balance=result.balance),
            channel=t(language, "grant.notice_channel", amount=result.amount,
                      actor=itx.user.mention, reason=reason),
        )  # fmt: skip


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(AdminCog(bot))
