"""The moderation log and budget notices, on Discord.

- Every image generated or uploaded in a server with a log channel (`/settings set
  mod_log_channel_id`) is posted there: the member, the prompt (or title), the model and size,
  what it cost (coins, and the host's estimated USD), and a Delete button for moderators.
  Deleting there deletes the image everywhere (row, objects, further images of the same
  answer, its public result message) and is recorded in `/settings audit`.
- Budget notices (80% and 100%, once per period) go to the server's log channel, or to its
  owner's DMs when it has none; the deployment's budget notices go to the bot admins' DMs.
- Model notices (Google retired a model, a configured model was replaced by its successor, a
  model is ending, none can be used) go to the bot admins' DMs and to every server's log
  channel, once per deployment.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.i18n import t
from bot.services.budgets import BudgetNotice
from bot.services.events import ModelNotice
from bot.services.gallery import ImageContext
from bot.services.moderation import LogEntry
from bot.services.permissions import Actor
from bot.services.pricing import format_usd
from bot.services.types import CapKind
from cogs.common import language_of, shorten
from cogs.images import BANANA
from cogs.views import UUID, ImageButton, clear_image

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

log = logging.getLogger(__name__)

# What one log post may attach (Discord's smallest upload limit).
LOG_FILE_LIMIT = 8 * 1024 * 1024


class ModDeleteButton(ImageButton, template=rf"nb:moddel:(?P<id>{UUID})"):
    """The log's Delete: moderators of the image's server and bot admins only."""

    action = "moddel"
    style = discord.ButtonStyle.danger
    emoji = "🗑️"

    def check(self, bot: NanoBananaBot, actor: Actor, context: ImageContext) -> None:
        bot.permissions.check_moderator_delete(actor, context.image)

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        deleted = await bot.moderation.delete_image(actor, context, from_log=True)
        language = await language_of(interaction)
        embed = (
            interaction.message.embeds[0]
            if interaction.message and interaction.message.embeds
            else None
        )
        if embed is not None:
            embed.set_image(url=None)
        await interaction.response.edit_message(
            content=t(language, "modlog.deleted", moderator=interaction.user.mention),
            embed=embed, attachments=[], view=None,
            allowed_mentions=discord.AllowedMentions.none(),
        )  # fmt: skip
        # The public result messages that showed it go too.
        clicked = interaction.message.id if interaction.message else None
        for post in deleted.posts:
            if post.kind != "RESULT" or post.message_id == clicked:
                continue
            with contextlib.suppress(discord.HTTPException):
                # A batch's message keeps its other images; one showing only this one goes.
                await clear_image(bot, post.channel_id, post.message_id, context.image.id, None)


class ModLogCog(commands.Cog):
    """Posts to the moderation log and delivers budget notices."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        events = self.bot.events
        events.subscribe(LogEntry, self.publish)
        events.subscribe(BudgetNotice, self.notify)
        events.subscribe(ModelNotice, self.tell_models)

    async def cog_unload(self) -> None:
        events = self.bot.events
        events.unsubscribe(LogEntry, self.publish)
        events.unsubscribe(BudgetNotice, self.notify)
        events.unsubscribe(ModelNotice, self.tell_models)

    async def _language(self, guild_id: int | None) -> str:
        guild = self.bot.get_guild(guild_id) if guild_id else None
        locale = str(guild.preferred_locale) if guild else None
        return "es" if locale and locale.startswith("es") else "en"

    async def publish(self, entry: LogEntry) -> None:
        """Post one image in its server's log channel (with the bot's own permissions)."""
        image = entry.image
        language = await self._language(image.guild_id)
        member = f"<@{entry.owner_discord_id}>" if entry.owner_discord_id else "?"
        key = "modlog.generated" if image.is_generated else "modlog.uploaded"
        embed = discord.Embed(description=t(language, key, member=member), colour=BANANA,
                              timestamp=image.created_at)  # fmt: skip
        if image.prompt:
            embed.add_field(name=t(language, "modlog.prompt"), value=shorten(image.prompt, 1000),
                            inline=False)  # fmt: skip
        elif image.title:
            embed.add_field(name=t(language, "modlog.title"), value=shorten(image.title, 250))
        if image.is_generated:
            model = str(image.metadata.get("model", "?"))
            size = image.metadata.get("image_size")
            embed.add_field(name=t(language, "gen.model"), value=f"{model} {size or ''}".strip())
        cost = f"{image.coins_used} coins"
        if entry.cost_micros is not None:
            cost += f" · {format_usd(entry.cost_micros)}"
        embed.add_field(name=t(language, "modlog.cost"), value=cost)
        embed.set_footer(text=f"{t(language, 'gen.image_id')}: {image.short_id}")
        files: list[discord.File] = []
        if image.storage_key:
            data = await self.bot.gallery.read(image)
            fitted, mime = await self.bot.gallery.fit(data, LOG_FILE_LIMIT, wait=True)
            name = f"log-{image.short_id}.{'jpg' if mime == 'image/jpeg' else mime.split('/')[-1]}"
            files.append(discord.File(io.BytesIO(fitted), filename=name))
            embed.set_image(url=f"attachment://{name}")
        view = discord.ui.View(timeout=None)
        view.add_item(ModDeleteButton(image.id, t(language, "modlog.delete")))
        channel = self.bot.get_partial_messageable(entry.channel_id)
        try:
            message = await channel.send(
                embed=embed, files=files, view=view, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as error:
            log.warning(
                "moderation log %s of server %s refused a post (%s %s)",
                entry.channel_id, image.guild_id, error.status, error.code,
            )  # fmt: skip
            return
        await self.bot.moderation.record_post(image.id, entry.channel_id, message.id, "LOG")

    async def notify(self, notice: BudgetNotice) -> None:
        """Tell the server's moderators (its log channel, else its owner) or the bot admins."""
        cap = notice.cap
        language = await self._language(cap.guild_id)
        money = cap.kind is CapKind.USD_PER_MONTH
        # The real share when the 80% notice goes out (e.g. 96%); the full one says 100%.
        share = notice.used * 100 // cap.limit if cap.limit else 100
        params: dict[str, Any] = {
            "percent": 100 if notice.threshold >= 100 else min(99, max(share, notice.threshold)),
            "used": format_usd(notice.used) if money else notice.used,
            "limit": format_usd(cap.limit) if money else cap.limit,
            "at": int(notice.resets_at.timestamp()),
        }
        if cap.guild_id is None:
            key = "budget.notice.global_month"
        else:
            key = "budget.notice.server_month" if money else "budget.notice.server_day"
        text = t(language, key, **params)
        if notice.threshold >= 100:
            text += " " + t(language, "budget.notice.full")
        if cap.guild_id is None:
            for admin_id in self.bot.settings.admin_user_ids:
                await self._dm(admin_id, text)
            return
        settings = await self.bot.guild_settings.effective(cap.guild_id)
        if settings.mod_log_channel_id is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.bot.get_partial_messageable(settings.mod_log_channel_id).send(text)
                return
        guild = self.bot.get_guild(cap.guild_id)
        if guild is not None and guild.owner_id is not None:
            await self._dm(guild.owner_id, text)

    async def tell_models(self, notice: ModelNotice) -> None:
        """Tell the bot admins (DMs) and every server's moderation log what happened to an
        image model (the service logged it already)."""
        texts: dict[str, str] = {}

        def text(language: str) -> str:
            if language not in texts:
                texts[language] = model_notice_text(language, notice)
            return texts[language]

        for admin_id in self.bot.settings.admin_user_ids:
            await self._dm(admin_id, text("en"))
        for guild_id, channel_id in await self.bot.guild_settings.log_channels():
            if not self.bot.permissions.guild_allowed(guild_id):
                continue
            with contextlib.suppress(discord.HTTPException):
                await self.bot.get_partial_messageable(channel_id).send(
                    text(await self._language(guild_id)),
                    allowed_mentions=discord.AllowedMentions.none(),
                )

    async def _dm(self, user_id: int, text: str) -> None:
        try:
            user = self.bot.get_user(user_id) or await self.bot.fetch_user(user_id)
            await user.send(text)
        except discord.HTTPException as error:
            log.info("could not DM a budget notice to %s (%s)", user_id, error.status)


def model_notice_text(language: str, notice: ModelNotice) -> str:
    """The owner's notice about a model, in `language`."""
    successor = notice.detail if notice.kind == "retired" else notice.replacement
    hint = (
        t(language, "models.notice.hint_successor", successor=successor)
        if successor
        else t(language, "models.notice.hint_auto")
    )
    replacement = (
        f"{notice.replacement_name} (`{notice.replacement}`)" if notice.replacement else ""
    )
    if notice.kind == "retired":
        key = "models.notice.retired" if notice.replacement else "models.notice.retired_refused"
    else:
        key = f"models.notice.{notice.kind}"
    return t(
        language, key, name=notice.name, model=notice.model, replacement=replacement,
        date=notice.shutdown.isoformat() if notice.shutdown else "?",
        detail=notice.detail or "", hint=hint,
    )  # fmt: skip


async def setup(bot: NanoBananaBot) -> None:
    bot.add_dynamic_items(ModDeleteButton)
    await bot.add_cog(ModLogCog(bot))
