"""`/pay`: members give each other coins; `/leaderboard`: the server's top creators and coin
holders. The rules are bot.services.payments' and bot.services.community's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.payments import Payment
from cogs.common import (
    TenantCog,
    command_text,
    identity_of,
    in_guild,
    language_of,
    option_texts,
    reply,
    shorten,
    target_identity,
    tell_member,
)
from cogs.images import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


MEDALS = ("🥇", "🥈", "🥉")


def standing_lines(language: str, standings: list[tuple[int, int]], unit: str) -> str:
    """Ranked lines: a medal or the rank, the member's mention and their figure."""
    lines = []
    for rank, (discord_id, value) in enumerate(standings, start=1):
        mark = MEDALS[rank - 1] if rank <= len(MEDALS) else f"`{rank}.`"
        lines.append(f"{mark} <@{discord_id}> · {t(language, unit, count=value)}")
    return "\n".join(lines) or t(language, "leaderboard.empty")


class CommunityCog(TenantCog):
    """Members paying each other, and the leaderboard."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("pay"))
    @app_commands.describe(**option_texts("pay", "member", "amount", "reason"))
    @app_commands.guild_only()
    @in_guild()
    async def pay(
        self,
        itx: Interaction,
        member: discord.User,
        # Any integer Discord carries reaches the service, which refuses what is not 1 or
        # more with its own message (as /grant).
        amount: int,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        bot = self.bot
        actor = await bot.accounts.actor(identity_of(itx), create=True)
        payment = await bot.payments.pay(actor, target_identity(member), amount, reason)
        language = await language_of(itx)
        await reply(
            itx,
            t(language, "pay.done", amount=payment.amount, user=member.mention,
              balance=payment.payer_balance, left=payment.left_today),
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip
        await self.tell_recipient(itx, member, payment)

    async def tell_recipient(
        self, itx: Interaction, user: discord.User | discord.Member, payment: Payment
    ) -> None:
        """A DM with the amount, who paid, the reason and the balance there; if their DMs
        are closed, a mention in the channel (without the balance, which is private). Both
        work without privileged intents."""
        language = payment.recipient.language
        reason = payment.reason or t(language, "grant.no_reason")
        server = itx.guild.name if itx.guild is not None else "?"
        await tell_member(
            itx, user, what="pay",
            dm=t(language, "pay.notice_dm", amount=payment.amount, server=server,
                 payer=itx.user.display_name, reason=reason, balance=payment.recipient_balance),
            channel=t(language, "pay.notice_channel", amount=payment.amount,
                      payer=itx.user.mention, reason=reason),
        )  # fmt: skip

    @app_commands.command(**command_text("leaderboard"))
    @app_commands.guild_only()
    @in_guild()
    async def leaderboard(self, itx: Interaction) -> None:
        language = await language_of(itx)
        board = await self.bot.community.leaderboard(identity_of(itx))
        server = itx.guild.name if itx.guild is not None else ""
        embed = discord.Embed(
            title=t(language, "leaderboard.title", server=shorten(server, 100)),
            description=t(language, "leaderboard.opt_out"),
            colour=BANANA,
        )
        creators = [(s.discord_id, s.value) for s in board.creators]
        holders = [(s.discord_id, s.value) for s in board.holders]
        embed.add_field(
            name=t(language, "leaderboard.creators"),
            value=standing_lines(language, creators, "unit.images"),
            inline=False,
        )
        embed.add_field(
            name=t(language, "leaderboard.holders"),
            value=standing_lines(language, holders, "unit.coins"),
            inline=False,
        )
        # Mentions in an embed never ping; the board is the member's to read.
        await reply(itx, embed=embed, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(CommunityCog(bot))
