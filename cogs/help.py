"""`/help`: everything a member needs, in Discord and in their language: the commands with what
each costs in this server, the buttons under an image, how to get coins, their balance here and
the queue. Self-contained (members can't read the README); links to the owner's documentation
only when DOCS_URL says where it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.settings import EffectiveSettings
from cogs.common import TenantCog, command_key, command_text, identity_of
from cogs.images import BANANA, coins

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

MEMBER_COMMANDS = (
    "generate", "describe", "upload", "gallery", "coins", "daily", "pay", "leaderboard", "token",
    "privacy", "help",
)  # fmt: skip
MODERATOR_COMMANDS = ("grant", "settings", "usage")
# README headings an owner needs (GitHub anchors of README.md), linked when DOCS_URL is set.
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
        prices = self.prices(language, settings)

        def lines(names: tuple[str, ...]) -> str:
            shown = []
            for name in names:
                line = f"`/{t(language, f'{command_key(name)}.name')}` " + t(
                    language, f"{command_key(name)}.description"
                )
                if name in prices:
                    line += f" · {prices[name]}"
                shown.append(line)
            return "\n".join(shown)

        embed.add_field(
            name=t(language, "help.commands"), value=lines(MEMBER_COMMANDS), inline=False
        )
        embed.add_field(
            name=t(language, "help.buttons"),
            value=t(language, "help.buttons_value", reroll=t(language, "gen.reroll"),
                    edit=t(language, "gen.edit"), delete=t(language, "gen.delete"))
            + " " + t(language, "help.variations", variations=t(language, "gen.variations")),
            inline=False,
        )  # fmt: skip
        # Batches: how many images one /generate may ask for here, at this server's prices.
        most = bot.orders.batch_size(settings)
        if most > 1:
            embed.add_field(
                name=f"`/{t(language, 'cmd.generate.name')}` "
                f"{t(language, 'cmd.generate.opt.count.name')}",
                value=t(language, "help.batches", high=most, cost=prices["generate"]),
                inline=False,
            )
        embed.add_field(
            name=t(language, "help.moderators"), value=lines(MODERATOR_COMMANDS), inline=False
        )
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
        embed.add_field(
            name=t(language, "help.more_coins"), value=self.more_coins(language, settings),
            inline=False,
        )  # fmt: skip
        docs = self.docs(language)
        if docs is not None:
            embed.add_field(name=t(language, "help.docs"), value=docs, inline=False)
        await itx.response.send_message(embed=embed, ephemeral=True)

    def prices(self, language: str, settings: EffectiveSettings) -> dict[str, str]:
        """What the paid commands cost in this server: each model's price (from the cheapest
        size), an upload's, and the daily coins."""
        generation = self.bot.generation
        models = []
        for profile in generation.catalog.offered:
            costs = sorted(
                {generation.cost_of(profile.model, size, default=settings.generation_cost)
                 for size in (profile.image_sizes or (None,))}
            )  # fmt: skip
            price = coins(language, costs[0])
            if len(costs) > 1:
                price = t(language, "help.from", price=price)
            models.append((profile.name, price))
        if len(models) == 1:
            generate = f"**{models[0][1]}**"
        else:
            generate = "; ".join(f"{name} **{price}**" for name, price in models)
        upload = settings.upload_cost
        describe = self.bot.captions.cost
        return {
            "generate": generate,
            "describe": f"**{coins(language, describe)}**"
            if describe
            else t(language, "help.free"),
            "upload": f"**{coins(language, upload)}**" if upload else t(language, "help.free"),
            "daily": (
                f"**+{coins(language, settings.daily_coins)}**"
                if settings.daily_coins
                else t(language, "help.daily_off")
            ),
        }

    def more_coins(self, language: str, settings: EffectiveSettings) -> str:
        """How a member gets coins here."""
        ways = []
        if settings.daily_coins:
            ways.append(t(language, "help.daily", coins=settings.daily_coins))
        ways.append(t(language, "help.ask_grant"))
        return " ".join(ways)

    def docs(self, language: str) -> str | None:
        """Links to the owner's documentation, when DOCS_URL says where it is (members can't
        open a README otherwise, so nothing is said)."""
        base = self.bot.settings.docs_url
        if base is None:
            return None
        return " · ".join(
            f"[{t(language, key)}]({base}#{anchor})" for key, anchor in README_SECTIONS
        )


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(HelpCog(bot))
