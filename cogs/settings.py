"""`/settings`: a server's own settings, for its moderators (Manage Server) and bot admins.

`show` lists the effective values and where each comes from, `set` changes one (validated:
bad values get a clear message and change nothing), `reset` returns it to the environment's
default, `history` shows who changed what. Like /grant it has no `default_member_permissions`,
so bot admins see it everywhere; the bot's own check decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.settings import SETTINGS, EffectiveSettings
from cogs.common import TenantCog, command_text, identity_of, language_of, option_texts, reply
from cogs.generate import BANANA, in_guild

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

SETTING_CHOICES = [app_commands.Choice(name=t("en", f"choice.{s}"), value=s) for s in SETTINGS]


def display(language: str, setting: str, value: Any) -> str:
    """A setting's value as members read it."""
    if setting == "channel_ids":
        return (
            ", ".join(f"<#{c}>" for c in value) if value else t(language, "settings.all_channels")
        )
    if setting == "generate_role_id":
        return f"<@&{value}>" if value else t(language, "settings.everyone")
    if setting == "public_results":
        return t(language, "settings.yes" if value else "settings.no")
    if setting == "rate_limits":
        return ", ".join(f"{action} {count}" for action, count in dict(value).items())
    return str(value)


def settings_embed(language: str, effective: EffectiveSettings) -> discord.Embed:
    embed = discord.Embed(title=t(language, "settings.title"), colour=BANANA)
    lines = []
    for setting in SETTINGS:
        source = t(language, f"settings.source.{effective.source(setting)}")
        value = display(language, setting, effective.value(setting))
        lines.append(f"**{t(language, f'choice.{setting}')}**: {value} · *{source}*")
    embed.description = "\n".join(lines)
    return embed


class SettingsCog(TenantCog):
    """Owner controls for one server."""

    group = app_commands.Group(**command_text("settings"), guild_only=True)

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    def _known(self, itx: Interaction) -> tuple[set[int], set[int]]:
        """The server's channels where commands can be used, and its roles."""
        guild = itx.guild
        if guild is None:
            return set(), set()
        channels = {c.id for c in guild.channels if not isinstance(c, discord.CategoryChannel)}
        return channels, {r.id for r in guild.roles}

    @group.command(**command_text("settings show"))
    @in_guild()
    async def show(self, itx: Interaction) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        effective = await self.bot.guild_settings.show(actor, itx.guild_id)
        embed = settings_embed(await language_of(itx), effective)
        await reply(itx, embed=embed, allowed_mentions=discord.AllowedMentions.none())

    @group.command(**command_text("settings set"))
    @app_commands.describe(**option_texts("settings set", "setting", "value"))
    @app_commands.choices(setting=SETTING_CHOICES)
    @in_guild()
    async def set_(
        self, itx: Interaction, setting: str, value: app_commands.Range[str, 0, 1000]
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        channels, roles = self._known(itx)
        change = await self.bot.guild_settings.change(
            actor, itx.guild_id, setting, value, channel_ids=channels, role_ids=roles
        )
        await self._changed(itx, change.setting)

    @group.command(**command_text("settings reset"))
    @app_commands.describe(**option_texts("settings reset", "setting"))
    @app_commands.choices(setting=SETTING_CHOICES)
    @in_guild()
    async def reset(self, itx: Interaction, setting: str) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        change = await self.bot.guild_settings.reset(actor, itx.guild_id, setting)
        await self._changed(itx, change.setting)

    async def _changed(self, itx: Interaction, setting: str) -> None:
        assert itx.guild_id is not None
        language = await language_of(itx)
        effective = await self.bot.guild_settings.effective(itx.guild_id)
        value = display(language, setting, effective.value(setting))
        source = t(language, f"settings.source.{effective.source(setting)}")
        await reply(
            itx,
            t(language, "settings.changed", setting=t(language, f"choice.{setting}"),
              value=value, source=source),
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip

    @group.command(**command_text("settings history"))
    @in_guild()
    async def history(self, itx: Interaction) -> None:
        assert itx.guild_id is not None
        language = await language_of(itx)
        actor = await self.bot.accounts.actor(identity_of(itx))
        changes = await self.bot.guild_settings.history(actor, itx.guild_id)
        lines = []
        for change, who in changes:
            old = _or_default(language, change.setting, change.old_value)
            new = _or_default(language, change.setting, change.new_value)
            stamp = discord.utils.format_dt(change.created_at, "R")
            by = f"<@{who}>" if who else "?"
            name = t(language, f"choice.{change.setting}")
            lines.append(f"{stamp} {by}: **{name}** {old} → {new}")
        embed = discord.Embed(
            title=t(language, "settings.history_title"),
            description="\n".join(lines) or t(language, "settings.no_history"),
            colour=BANANA,
        )
        await reply(itx, embed=embed, allowed_mentions=discord.AllowedMentions.none())


def _or_default(language: str, setting: str, value: Any) -> str:
    if value is None:
        return t(language, "settings.source.default")
    return display(language, setting, value)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(SettingsCog(bot))
