"""`/token create|list|revoke`: personal API tokens for the web API, in this server only.

A new token is shown once, ephemerally; only its hash is kept (bot.services.tokens).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
from cogs.common import TenantCog, command_text, identity_of, in_guild, option_texts, reply
from cogs.images import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


class TokensCog(TenantCog):
    """API tokens."""

    token = app_commands.Group(**command_text("token"), guild_only=True)

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @token.command(**command_text("token create"))
    @app_commands.describe(**option_texts("token create", "name"))
    @in_guild()
    async def create(
        self, itx: Interaction, name: app_commands.Range[str, 1, 100] | None = None
    ) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        made = await bot.tokens.create(member, name)
        language = member.language
        text = t(language, "token.created", name=made.token.name, id=made.token.short_id,
                 token=made.secret)  # fmt: skip
        # Only at the address members reach (WEB_BASE_URL): the one the server listens on is
        # the host's own (often loopback), no use to a member.
        api = bot.web_link("/api/v1/me")
        if api is not None:
            text += "\n" + t(language, "token.created_usage", token=made.secret, url=api)
        elif bot.web is None or not bot.web.running:
            text += "\n" + t(language, "token.web_off")
        else:
            text += "\n" + t(language, "token.no_public_address")
        await reply(itx, text)

    @token.command(**command_text("token list"))
    @in_guild()
    async def list(self, itx: Interaction) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        language = member.language
        tokens = await bot.tokens.list(member)
        lines = []
        for token in tokens:
            if token.active:
                used = (
                    discord.utils.format_dt(token.last_used_at, "R")
                    if token.last_used_at
                    else t(language, "token.never")
                )
                lines.append(t(language, "token.line", id=token.short_id, name=token.name,
                               created=discord.utils.format_dt(token.created_at, "d"),
                               used=used))  # fmt: skip
            elif token.revoked_at is not None:
                lines.append(t(language, "token.revoked_line", id=token.short_id,
                               name=token.name,
                               revoked=discord.utils.format_dt(token.revoked_at, "d")))  # fmt: skip
        embed = discord.Embed(
            title=t(language, "token.list_title"),
            description="\n".join(lines[-20:]) or t(language, "token.none"),
            colour=BANANA,
        )
        await reply(itx, embed=embed)

    @token.command(**command_text("token revoke"))
    @app_commands.describe(**option_texts("token revoke", "id"))
    @in_guild()
    async def revoke(self, itx: Interaction, id: app_commands.Range[str, 1, 100]) -> None:
        bot = self.bot
        member = await bot.members.enter(identity_of(itx))
        revoked = await bot.tokens.revoke(member, id)
        await reply(itx, t(member.language, "token.revoked", name=revoked.name,
                           id=revoked.short_id))  # fmt: skip


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(TokensCog(bot))
