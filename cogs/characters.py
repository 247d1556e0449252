"""`/character save|list|show|delete`: the character and style library (bot.services.characters).

`save` copies the attachments through the input pipeline into the store (free; a member's
own, or with `shared` the server's style sheet, for its moderators); `/generate
character:<name>` then sends them as references. Every answer is private.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.i18n import t
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
    take_turn,
)
from cogs.images import BANANA

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot


async def character_names(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The characters the member may use here whose name contains what they typed."""
    bot = itx.client
    if itx.guild_id is None:
        return []
    actor = await bot.accounts.actor(identity_of(itx))
    found = await bot.characters.names(actor, itx.guild_id, current)
    language = await language_of(itx)
    return [
        app_commands.Choice(
            name=t(language, "character.choice_shared" if c.shared else "character.choice_own",
                   name=c.name, count=len(c.refs))[:100],
            value=c.name,
        )
        for c in found
    ]  # fmt: skip


class CharactersCog(TenantCog):
    """Saved characters and styles."""

    character = app_commands.Group(**command_text("character"), guild_only=True)

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    @character.command(**command_text("character save"))
    @app_commands.describe(
        **option_texts("character save", "name", "image", "image2", "image3", "image4", "shared")
    )
    @in_guild()
    async def save(
        self,
        itx: Interaction,
        name: app_commands.Range[str, 1, 32],
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        shared: bool = False,
    ) -> None:
        take_turn(itx, "other")
        bot = self.bot
        assert itx.guild_id is not None
        attachments = [a for a in (image, image2, image3, image4) if a is not None]
        bot.characters.check_name(name)
        for attachment in attachments:
            bot.inputs.check_declared(declared(attachment))
        await itx.response.defer(ephemeral=True, thinking=True)
        actor = await bot.accounts.actor(identity_of(itx), create=True)
        images = [await bot.inputs.prepare(await download(a), a.filename) for a in attachments]
        saved = await bot.characters.save(actor, itx.guild_id, name, images, shared=shared)
        key = "character.saved_shared" if saved.shared else "character.saved"
        await reply(itx, t(await language_of(itx), key, name=saved.name, count=len(saved.refs)))

    @character.command(**command_text("character list"))
    @in_guild()
    async def list(self, itx: Interaction) -> None:
        take_turn(itx, "other")
        bot = self.bot
        assert itx.guild_id is not None
        language = await language_of(itx)
        actor = await bot.accounts.actor(identity_of(itx))
        saved = await bot.characters.listing(actor, itx.guild_id)
        if not saved:
            await reply(itx, t(language, "character.none"))
            return
        lines = [
            t(language, "character.line_shared" if s.character.shared else "character.line_own",
              name=s.character.name, count=len(s.character.refs))
            for s in saved
        ]  # fmt: skip
        embed = discord.Embed(
            title=t(language, "character.list_title"), description="\n".join(lines)[:4000],
            colour=BANANA,
        )  # fmt: skip
        await reply(itx, embed=embed)

    @character.command(**command_text("character show"))
    @app_commands.describe(**option_texts("character show", "name"))
    @app_commands.autocomplete(name=character_names)
    @in_guild()
    async def show(self, itx: Interaction, name: app_commands.Range[str, 1, 32]) -> None:
        take_turn(itx, "other")
        bot = self.bot
        assert itx.guild_id is not None
        language = await language_of(itx)
        await itx.response.defer(ephemeral=True, thinking=True)
        actor = await bot.accounts.actor(identity_of(itx))
        character = await bot.characters.find(actor, itx.guild_id, name)
        images = await bot.characters.references(character)
        files = [
            discord.File(io.BytesIO(i.data), filename=f"{n + 1}.{r.key.rsplit('.', 1)[-1]}")
            for n, (i, r) in enumerate(zip(images, character.refs, strict=True))
        ]
        key = "character.line_shared" if character.shared else "character.line_own"
        embed = discord.Embed(
            title=character.name, colour=BANANA,
            description=t(language, key, name=character.name, count=len(character.refs)),
        )  # fmt: skip
        embed.set_image(url=f"attachment://{files[0].filename}")
        await reply(itx, embed=embed, files=files)

    @character.command(**command_text("character delete"))
    @app_commands.describe(**option_texts("character delete", "name", "member"))
    @app_commands.autocomplete(name=character_names)
    @in_guild()
    async def delete(
        self,
        itx: Interaction,
        name: app_commands.Range[str, 1, 32],
        member: discord.Member | None = None,
    ) -> None:
        take_turn(itx, "delete")
        bot = self.bot
        assert itx.guild_id is not None
        actor = await bot.accounts.actor(identity_of(itx))
        if member is not None:
            # A moderator removing a member's own character (the service checks who may).
            owner = await bot.accounts.find(member.id)
            character = await bot.characters.find_of(
                itx.guild_id, owner.id if owner is not None else None, name
            )
        else:
            character = await bot.characters.find(actor, itx.guild_id, name)
        deleted = await bot.characters.delete(actor, character)
        await reply(itx, t(await language_of(itx), "character.deleted", name=deleted.name))


async def setup(bot: NanoBananaBot) -> None:
    await bot.add_cog(CharactersCog(bot))
