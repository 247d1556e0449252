"""Helpers every cog shares: who is acting, in which language, and how to answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import language_from_locale, t
from bot.services.accounts import Identity
from bot.services.errors import InvalidInput

if TYPE_CHECKING:
    from bot.app import Interaction


def identity_of(user: discord.User | discord.Member, itx: Interaction | None = None) -> Identity:
    """The Discord-free identity of a user; Manage Server is taken from the interaction when
    the user is the one acting (Discord resolves it for us there)."""
    can_manage = False
    if itx is not None and user.id == itx.user.id and itx.guild is not None:
        can_manage = itx.permissions.manage_guild
    elif isinstance(user, discord.Member):
        can_manage = user.guild_permissions.manage_guild
    return Identity(
        discord_id=user.id,
        display_name=user.display_name,
        locale=str(itx.locale) if itx is not None and user.id == itx.user.id else None,
        is_bot=user.bot,
        can_manage_guild=can_manage,
    )


async def language_of(itx: Interaction) -> str:
    """The acting user's language: stored preference, else their Discord client's locale."""
    user = await itx.client.user_repo.get_by_discord_id(itx.user.id)
    if user is not None:
        return str(user.language)
    return language_from_locale(str(itx.locale))


async def reply(itx: Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer ephemerally whether or not the interaction was already acknowledged."""
    kwargs.setdefault("ephemeral", True)
    if itx.response.is_done():
        await itx.followup.send(content or discord.utils.MISSING, **kwargs)
    else:
        await itx.response.send_message(content, **kwargs)


async def reply_key(itx: Interaction, key: str, **params: Any) -> None:
    """`reply` with a message from the catalogue, in the user's language."""
    await reply(itx, t(await language_of(itx), key, **params))


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
