"""`/help`: the commands, what they cost in this server, your balance here, the queue, and the
README sections a server owner needs; in the member's language."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from cogs.common import TenantCog, command_key, command_text, identity_of
from cogs.generate import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

MEMBER_COMMANDS = ("generate", "upload", "gallery", "coins", "daily", "token", "help")
MODERATOR_COMMANDS = ("grant", "settings", "usage")
# README headings an owner needs (GitHub anchors of README.md).
README_SECTIONS = (
    ("help.docs.setup", "set-up"),
    ("help.docs.servers", "servers-economy-and-permissions"),
    ("help.docs.settings", "settings"),
    ("help.docs.commands", "commands"),
    ("help.docs.owner", "owner-controls"),
)


class HelpCog(TenantCog):
    """What the bot does, here."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @app_commands.command(**command_text("help"))
    async def help(self, itx: Interaction) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        language, settings = member.language, member.settings
        embed = discord.Embed(
            title=t(language, "help.title"), description=t(language, "help.intro"), colour=BANANA
        )

        def lines(names: tuple[str, ...]) -> str:
            return "\n".join(
                f"`/{t(language, f'{command_key(n)}.name')}` "
                + t(language, f"{command_key(n)}.description")
                for n in names
            )

        embed.add_field(
            name=t(language, "help.commands"), value=lines(MEMBER_COMMANDS), inline=False
        )
        embed.add_field(
            name=t(language, "help.moderators"), value=lines(MODERATOR_COMMANDS), inline=False
        )
        daily = (
            t(language, "help.daily", coins=settings.daily_coins)
            if settings.daily_coins
            else t(language, "help.daily_off")
        )
        embed.add_field(
            name=t(language, "help.costs"),
            value=t(language, "help.costs_here", generation=settings.generation_cost,
                    upload=settings.upload_cost, daily=daily),
            inline=False,
        )  # fmt: skip
        wallet = await bot.wallets.peek(member.user, member.guild_id)
        if wallet is not None:
            balance = t(language, "help.balance_value", coins=wallet.coins)
        elif member.guild_id is None and bot.wallets.per_server:
            balance = t(language, "help.balance_dm")
        else:
            balance = t(language, "help.balance_new", coins=settings.starter_coins)
        embed.add_field(name=t(language, "help.balance"), value=balance)
        embed.add_field(
            name=t(language, "help.queue"),
            value=t(language, "help.queue_value", waiting=bot.generation.queue_length,
                    running=bot.generation.running),
        )  # fmt: skip
        embed.add_field(name=t(language, "help.docs"), value=self.docs(language), inline=False)
        await itx.response.send_message(embed=embed, ephemeral=True)

    def docs(self, language: str) -> str:
        """Links to the README sections (names only when DOCS_URL is not set)."""
        base = self.bot.settings.docs_url
        if base is None:
            names = ", ".join(t(language, key) for key, _ in README_SECTIONS)
            return t(language, "help.docs_plain", sections=names)
        return " · ".join(
            f"[{t(language, key)}]({base}#{anchor})" for key, anchor in README_SECTIONS
        )


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(HelpCog(bot))
