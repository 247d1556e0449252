"""Helpers every cog shares: who is acting and where, in which language, and how to answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import language_from_locale, t
from bot.services.errors import InvalidInput, TooSoon, UserFacingError
from bot.services.media import Declared
from bot.services.permissions import Identity

if TYPE_CHECKING:
    from bot.app import Interaction

T = TypeVar("T")


def identity_of(itx: Interaction) -> Identity:
    """The Discord-free identity of the member acting in an interaction, and where: their
    locale, Manage Server in this server (Discord resolves it for us), channel and roles."""
    user = itx.user
    channel = itx.channel
    roles = user.roles if isinstance(user, discord.Member) else []
    return Identity(
        discord_id=user.id,
        display_name=user.display_name,
        locale=str(itx.locale),
        is_bot=user.bot,
        can_manage_guild=itx.guild_id is not None and itx.permissions.manage_guild,
        guild_id=itx.guild_id,
        channel_id=itx.channel_id,
        parent_channel_id=getattr(channel, "parent_id", None),
        role_ids=frozenset(role.id for role in roles),
        channel_nsfw=_age_restricted(channel),
    )


def _age_restricted(channel: Any) -> bool:
    """An age-restricted channel, or a thread in one (as Discord sends it: a partial
    channel's `nsfw`, a thread's parent's)."""
    if channel is None:
        return False
    if getattr(channel, "nsfw", False) is True:
        return True
    parent = getattr(channel, "parent", None)
    return bool(getattr(parent, "nsfw", False))


def target_identity(user: discord.User | discord.Member) -> Identity:
    """Someone named in a command option (not the one acting)."""
    return Identity(discord_id=user.id, display_name=user.display_name, is_bot=user.bot)


async def language_of(itx: Interaction) -> str:
    """The reply language: this interaction's locale (es-ES, es-419 -> Spanish, else English).
    (A coroutine for the error handler's sake; it reads nothing.)"""
    return language_from_locale(str(itx.locale))


async def reply(itx: Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer ephemerally whether or not the interaction was already acknowledged."""
    kwargs.setdefault("ephemeral", True)
    if itx.response.is_done():
        await itx.followup.send(content or discord.utils.MISSING, **kwargs)
    else:
        await itx.response.send_message(content, **kwargs)


async def reply_key(itx: Interaction, key: str, **params: Any) -> None:
    """`reply` with a message from the catalogue, in the member's language."""
    await reply(itx, t(await language_of(itx), key, **params))


class OutsideAllowList(app_commands.CheckFailure, UserFacingError):
    """A command from a server that is not in ALLOWED_GUILD_IDS."""

    def __init__(self) -> None:
        UserFacingError.__init__(self, "error.guild_not_allowed")


def check_allowed_guild(interaction: Interaction) -> bool:
    """Refuse a server outside ALLOWED_GUILD_IDS before anything runs (no user, wallet, row or
    object is made for it)."""
    if not interaction.client.permissions.guild_allowed(interaction.guild_id):
        raise OutsideAllowList()
    return True


def allowed_guild() -> Callable[[T], T]:
    """`check_allowed_guild` as a command check (for commands built outside a TenantCog)."""
    return app_commands.check(check_allowed_guild)


class TenantCog(commands.Cog):
    """A cog whose commands all refuse servers outside ALLOWED_GUILD_IDS first."""

    async def interaction_check(self, interaction: Interaction, /) -> bool:  # type: ignore[override]
        return check_allowed_guild(interaction)


class RateLimited(app_commands.CheckFailure, UserFacingError):
    """Over the member's rate limit for this command or button: "try again in N s"."""

    def __init__(self, retry_after: float) -> None:
        UserFacingError.__init__(self, "error.cooldown", seconds=f"{max(1, round(retry_after))}")
        self.retry_after = retry_after


def take_turn(itx: discord.Interaction[Any], action: str) -> None:
    """Count one use of `action` (see bot.services.ratelimits.ACTIONS) by the member, at the
    rate of the server they act in (its settings as last read; the host's before that).
    Synchronous: it runs first, so a refused attempt costs only its short reply."""
    try:
        itx.client.members.take_turn(itx.user.id, itx.guild_id, action)
    except TooSoon as error:
        raise RateLimited(error.retry_after) from None


def declared(attachment: discord.Attachment) -> Declared:
    """What Discord declares about an attachment (size, type, dimensions), for refusing it
    before anything is downloaded (bot.services.media.InputImages checks the bytes again)."""
    return Declared(
        name=attachment.filename,
        size=attachment.size,
        content_type=attachment.content_type,
        width=attachment.width or 0,
        height=attachment.height or 0,
    )


def in_guild() -> Callable[[T], T]:
    """A check that refuses the command in DMs with a friendly message (Discord hides
    guild-only commands there, but clients and old caches don't always)."""

    def predicate(itx: discord.Interaction[Any]) -> bool:
        if itx.guild_id is None:
            raise app_commands.NoPrivateMessage()
        return True

    return app_commands.check(predicate)


def refuse_oversized(attachment: discord.Attachment, limit: int) -> None:
    """Refuse an attachment over `limit` bytes from its declared size, before downloading."""
    if attachment.size > limit:
        raise InvalidInput(
            "image.too_large",
            name=attachment.filename,
            size_mb=f"{attachment.size / 1048576:.1f}",
            limit_mb=f"{limit / 1048576:.1f}",
        )


async def download(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes (copied: Discord's URLs expire), or a friendly error."""
    try:
        return await attachment.read()
    except discord.HTTPException:
        raise InvalidInput("image.download_failed", name=attachment.filename) from None


def shorten(text: str, limit: int) -> str:
    """Cut text to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def command_key(command: str) -> str:
    """The catalogue prefix of a command by its path: "settings set" -> "cmd.settings.set"."""
    return "cmd." + command.replace(" ", ".")


class CommandText(TypedDict):
    name: str
    description: str


def command_text(command: str) -> CommandText:
    """The English name and description of a command (path like "settings set") from the
    catalogue; cogs.translator localises them from the same catalogue."""
    return {
        "name": command.split()[-1],
        "description": t("en", f"{command_key(command)}.description"),
    }


def option_texts(command: str, *options: str) -> dict[str, str]:
    """English option descriptions from the catalogue, for `app_commands.describe`."""
    return {
        option: t("en", f"{command_key(command)}.opt.{option}.description") for option in options
    }


_notices = logging.getLogger("cogs.notices")


async def tell_member(
    itx: Interaction, user: discord.User | discord.Member, *, dm: str, channel: str, what: str
) -> None:
    """Tell a member something they should know (coins granted or paid to them): `dm` by
    direct message; if their DMs are closed, `channel` in the interaction's channel with a
    mention (so it says nothing private). Neither needs a privileged intent."""
    try:
        await user.send(dm, allowed_mentions=discord.AllowedMentions.none())
        return
    except discord.HTTPException as error:
        _notices.info("%s notice: DM to %s refused (%s); telling the channel", what, user.id,
                      error)  # fmt: skip
    if itx.channel_id is None:
        return
    try:
        await itx.client.get_partial_messageable(itx.channel_id).send(
            f"{user.mention} {channel}", allowed_mentions=discord.AllowedMentions(users=[user])
        )
    except discord.HTTPException as error:
        _notices.warning("%s notice to %s not delivered: HTTP %s", what, user.id, error.status)
