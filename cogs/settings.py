"""`/settings`: a server's own settings, for its moderators (Manage Server) and bot admins.

`show` lists the effective values and where each comes from, `set` changes one (validated:
bad values get a clear message and change nothing), `reset` returns it to the environment's
default, `history` shows who changed what. Like /grant it has no `default_member_permissions`,
so bot admins see it everywhere; the bot's own check decides.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.i18n import t
from bot.services.permissions import ChannelAccess
from bot.services.pricing import format_usd
from bot.services.settings import SETTINGS, EffectiveSettings
from bot.services.styles import StyleImage
from cogs.common import (
    TenantCog,
    command_text,
    declared,
    download,
    identity_of,
    in_guild,
    language_of,
    option_texts,
    reply,
    shorten,
    target_identity,
)
from cogs.images import BANANA

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
    if setting in ("public_results", "nsfw_only", "private_mode"):
        return t(language, "settings.yes" if value else "settings.no")
    if setting == "daily_image_cap":
        return t(language, "settings.no_cap") if value is None else str(value)
    if setting == "monthly_budget_usd":
        return t(language, "settings.no_cap") if value is None else format_usd(int(value))
    if setting == "mod_log_channel_id":
        return f"<#{value}>" if value else t(language, "settings.no_log")
    if setting == "image_retention_days":
        return (
            t(language, "settings.retention", days=value) if value else t(language, "settings.keep")
        )
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

    def _access(self, itx: Interaction) -> dict[int, ChannelAccess]:
        """What the bot itself may do in each of the server's channels (from Discord's
        roles and channel overwrites, as cached)."""
        guild = itx.guild
        if guild is None:
            return {}
        access = {}
        for channel in guild.channels:
            if isinstance(channel, discord.CategoryChannel):
                continue
            perms = channel.permissions_for(guild.me)
            access[channel.id] = ChannelAccess(
                view=perms.view_channel, send=perms.send_messages, embed=perms.embed_links,
                attach=perms.attach_files,
            )  # fmt: skip
        return access

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
        access = self._access(itx) if setting == "mod_log_channel_id" else None
        change = await self.bot.guild_settings.change(
            actor, itx.guild_id, setting, value, channel_ids=channels, role_ids=roles,
            channel_access=access,
        )  # fmt: skip
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

    # The member's own ---------------------------------------------------------------

    @group.command(**command_text("settings me"))
    @app_commands.describe(**option_texts("settings me", "private", "leaderboard"))
    @in_guild()
    async def me(
        self, itx: Interaction, private: bool | None = None, leaderboard: bool | None = None
    ) -> None:
        """Anyone's own preferences (no moderator check): private mode, the leaderboard."""
        assert itx.guild_id is not None
        language = await language_of(itx)
        identity = identity_of(itx)
        community = self.bot.community
        if private is None and leaderboard is None:
            chosen = await community.preferences(identity)
        else:
            hidden = None if leaderboard is None else not leaderboard
            chosen = await community.choose(
                identity, private_results=private, leaderboard_hidden=hidden
            )
        allowed = (await self.bot.guild_settings.effective(itx.guild_id)).private_mode
        yes, no = t(language, "settings.yes"), t(language, "settings.no")
        lines = [
            t(language, "me.private", value=yes if chosen.private_results else no),
            t(language, "me.leaderboard", value=no if chosen.leaderboard_hidden else yes),
        ]
        if chosen.private_results and not allowed:
            lines.append(t(language, "me.private_not_here"))
        await reply(itx, "\n".join(lines))

    # Style presets ---------------------------------------------------------------------

    style = app_commands.Group(**command_text("settings style"), parent=group)

    @style.command(**command_text("settings style add"))
    @app_commands.describe(
        **option_texts("settings style add", "name", "suffix", "image", "image2")
    )
    @in_guild()
    async def style_add(
        self,
        itx: Interaction,
        name: app_commands.Range[str, 1, 32],
        suffix: app_commands.Range[str, 1, 300],
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        images = [
            StyleImage(declared(a), functools.partial(download, a))
            for a in (image, image2)
            if a is not None
        ]
        self.bot.styles.check_can_manage(actor, itx.guild_id)  # before any answer
        if images:
            # Reference images are downloaded and stored: longer than Discord's 3 s.
            await itx.response.defer(ephemeral=True, thinking=True)
        preset = await self.bot.styles.add(actor, itx.guild_id, name, suffix, images)
        language = await language_of(itx)
        await reply(
            itx, t(language, "style.added", name=_code(preset.name),
                   images=len(preset.reference_keys)),
        )  # fmt: skip

    @style.command(**command_text("settings style list"))
    @in_guild()
    async def style_list(self, itx: Interaction) -> None:
        """Anyone may read the server's styles (members pick them on /generate)."""
        language = await language_of(itx)
        presets = await self.bot.styles.styles(itx.guild_id)
        lines = [
            f"**{_code(p.name)}** · {_code(p.suffix)}"
            + (f" · 🖼️ {len(p.reference_keys)}" if p.reference_keys else "")
            for p in presets
        ]
        embed = discord.Embed(
            title=t(language, "style.title"),
            description=_fit(lines) or t(language, "style.none"),
            colour=BANANA,
        )
        await reply(itx, embed=embed)

    @style.command(**command_text("settings style delete"))
    @app_commands.describe(**option_texts("settings style delete", "name"))
    @in_guild()
    async def style_delete(self, itx: Interaction, name: app_commands.Range[str, 1, 32]) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        removed = await self.bot.styles.delete(actor, itx.guild_id, name)
        await reply(itx, t(await language_of(itx), "style.deleted", name=_code(removed.name)))

    @style_delete.autocomplete("name")
    async def _style_names(self, itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().casefold()
        return [
            app_commands.Choice(name=p.name, value=p.name)
            for p in await self.bot.styles.styles(itx.guild_id)
            if not typed or typed in p.name.casefold()
        ][:25]

    # Moderation -----------------------------------------------------------------------

    blocklist = app_commands.Group(**command_text("settings blocklist"), parent=group)

    @blocklist.command(**command_text("settings blocklist add"))
    @app_commands.describe(**option_texts("settings blocklist add", "entry", "pattern"))
    @in_guild()
    async def blocklist_add(
        self, itx: Interaction, entry: app_commands.Range[str, 1, 200], pattern: bool = False
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        stored = await self.bot.moderation.add_entry(actor, itx.guild_id, entry, pattern=pattern)
        language = await language_of(itx)
        kind = t(language, "blocklist.pattern" if pattern else "blocklist.word")
        await reply(itx, t(language, "blocklist.added", entry=_code(stored), kind=kind))

    @blocklist.command(**command_text("settings blocklist remove"))
    @app_commands.describe(**option_texts("settings blocklist remove", "entry"))
    @in_guild()
    async def blocklist_remove(
        self, itx: Interaction, entry: app_commands.Range[str, 1, 200]
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        removed = await self.bot.moderation.remove_entry(actor, itx.guild_id, entry)
        await reply(itx, t(await language_of(itx), "blocklist.removed", entry=_code(removed)))

    @blocklist.command(**command_text("settings blocklist list"))
    @in_guild()
    async def blocklist_list(self, itx: Interaction) -> None:
        assert itx.guild_id is not None
        language = await language_of(itx)
        actor = await self.bot.accounts.actor(identity_of(itx))
        entries = await self.bot.moderation.entries(actor, itx.guild_id)
        lines = [
            f"`{_code(e.entry)}` · {t(language, f'blocklist.{e.kind.lower()}')}" for e in entries
        ]
        embed = discord.Embed(
            title=t(language, "blocklist.title"),
            description=_fit(lines) or t(language, "blocklist.empty"),
            colour=BANANA,
        )
        await reply(itx, embed=embed)

    @group.command(**command_text("settings block"))
    @app_commands.describe(**option_texts("settings block", "member", "reason", "duration"))
    @in_guild()
    async def block(
        self,
        itx: Interaction,
        member: discord.Member,
        reason: app_commands.Range[str, 1, 300],
        duration: app_commands.Range[str, 0, 20] | None = None,
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        until = await self.bot.moderation.block_member(
            actor, itx.guild_id, target_identity(member), reason, duration
        )
        language = await language_of(itx)
        when = (
            t(language, "moderation.until", at=int(until.timestamp()))
            if until
            else t(language, "moderation.forever")
        )
        text = t(language, "moderation.blocked", member=member.mention, until=when,
                 reason=" ".join(reason.split()))  # fmt: skip
        await reply(itx, text, allowed_mentions=discord.AllowedMentions.none())

    @group.command(**command_text("settings unblock"))
    @app_commands.describe(**option_texts("settings unblock", "member", "reason"))
    @in_guild()
    async def unblock(
        self,
        itx: Interaction,
        member: discord.Member,
        reason: app_commands.Range[str, 0, 300] | None = None,
    ) -> None:
        assert itx.guild_id is not None
        actor = await self.bot.accounts.actor(identity_of(itx))
        await self.bot.moderation.unblock_member(
            actor, itx.guild_id, target_identity(member), reason or ""
        )
        text = t(await language_of(itx), "moderation.unblocked", member=member.mention)
        await reply(itx, text, allowed_mentions=discord.AllowedMentions.none())

    @group.command(**command_text("settings blocked"))
    @in_guild()
    async def blocked(self, itx: Interaction) -> None:
        assert itx.guild_id is not None
        language = await language_of(itx)
        actor = await self.bot.accounts.actor(identity_of(itx))
        lines = []
        for block, discord_id in await self.bot.moderation.blocked(actor, itx.guild_id):
            when = (
                t(language, "moderation.until", at=int(block.until.timestamp()))
                if block.until
                else t(language, "moderation.forever")
            )
            lines.append(f"<@{discord_id}> {when}: {shorten(block.reason, 200)}")
        embed = discord.Embed(
            title=t(language, "moderation.blocked_title"),
            description=_fit(lines) or t(language, "moderation.none_blocked"),
            colour=BANANA,
        )
        await reply(itx, embed=embed, allowed_mentions=discord.AllowedMentions.none())

    @group.command(**command_text("settings audit"))
    @in_guild()
    async def audit(self, itx: Interaction) -> None:
        assert itx.guild_id is not None
        language = await language_of(itx)
        actor = await self.bot.accounts.actor(identity_of(itx))
        lines = []
        for line in await self.bot.moderation.audit(actor, itx.guild_id):
            action = line.action
            who = f"<@{line.actor_discord_id}>" if line.actor_discord_id else "?"
            target = f"<@{line.target_discord_id}>" if line.target_discord_id else "?"
            what = t(
                language, f"audit.{action.action}", target=target,
                entry=_code(str(action.detail.get("entry", ""))),
                image=(action.image_id or "")[:8],
            )  # fmt: skip
            stamp = discord.utils.format_dt(action.created_at, "R")
            # An erased member is no one any more: the line says what happened, not who.
            text = (
                f"{stamp} {what}" if action.action == "privacy_erase" else f"{stamp} {who} {what}"
            )
            if action.reason:
                text += f" · {t(language, 'audit.reason', reason=shorten(action.reason, 120))}"
            lines.append(text)
        embed = discord.Embed(
            title=t(language, "audit.title"),
            description=_fit(lines) or t(language, "audit.empty"),
            colour=BANANA,
        )
        await reply(itx, embed=embed, allowed_mentions=discord.AllowedMentions.none())


def _code(text: str) -> str:
    """Text to show inside backticks (no backtick can end the code span)."""
    return shorten(text.replace("`", "ˋ"), 200)


def _fit(lines: list[str], limit: int = 4000) -> str:
    """Lines joined within an embed description's limit (the newest first are kept)."""
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def _or_default(language: str, setting: str, value: Any) -> str:
    if value is None:
        return t(language, "settings.source.default")
    return display(language, setting, value)


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(SettingsCog(bot))
