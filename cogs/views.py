"""The buttons under every image (Reroll, Edit, Delete and its confirmation), the Edit form,
and `result_view`, which puts them under a result; shared by every cog that shows an image.

Each button is a `DynamicItem`: it survives restarts, and its state (the image and its owner)
is loaded once, in `from_custom_id`, as in discord.py's dynamic_counter example. Reroll and an
Edit's submission are paid orders: `orders.prepare` before the answer, then `start_job`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from bot.services.errors import ImageNotFound, TooSoon
from bot.services.gallery import ImageContext
from bot.services.generation import GenerationRequest
from bot.services.members import Member, Payer
from bot.services.orders import Turn
from bot.services.permissions import Actor
from cogs.common import RateLimited, identity_of, language_of, take_turn
from cogs.errors import report_error
from cogs.images import web_button
from cogs.listener import start_job

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class ImageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"nb:base:(?P<id>x)"):
    """A button bound to one image; checks who presses it and reports errors itself.

    Its state (the image and its owner) is loaded once, in `from_custom_id`, as in
    discord.py's dynamic_counter example; `interaction_check` and `run` use it as loaded.
    """

    action = "base"
    style = discord.ButtonStyle.secondary
    emoji = "🍌"

    def __init__(
        self, image_id: str, label: str | None = None, *, context: ImageContext | None = None
    ) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or self.action.title(),
                style=self.style,
                emoji=self.emoji,
                custom_id=f"nb:{self.action}:{image_id}",
            )
        )
        self.image_id = image_id
        self.context = context
        self.actor: Actor | None = None
        self.refusal: RateLimited | None = None
        # The member's "generate" turn, when the press took it (Reroll).
        self.turn: Turn | None = None

    #: The member's rate limit this button counts against (see bot.services.ratelimits).
    limit_action = "other"

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Any:
        label = getattr(item, "label", None)
        try:
            # Counted first, before any database read: a refused press costs nothing.
            turn = cls.take_turn(interaction)
        except RateLimited as refusal:
            button = cls(match["id"], label)
            button.refusal = refusal
            return button
        context = await interaction.client.gallery.context(match["id"])
        button = cls(match["id"], label, context=context)
        button.turn = turn
        return button

    @classmethod
    def take_turn(cls, interaction: Interaction) -> Turn | None:
        """Count the press against the member's rate limit (`limit_action`)."""
        take_turn(interaction, cls.limit_action)
        return None

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        bot = interaction.client
        try:
            if self.refusal is not None:
                raise self.refusal
            bot.permissions.check_guild_allowed(interaction.guild_id)
            if self.context is None:
                raise ImageNotFound()
            self.actor = await bot.accounts.actor(identity_of(interaction))
            self.check(interaction.client, self.actor, self.context)
            return True
        except Exception as error:
            await report_error(interaction, error)
            return False

    def check(self, bot: NanoBananaBot, actor: Actor, context: ImageContext) -> None:
        """Raise if `actor` may not press this button (the default: remixing, owners only)."""
        bot.permissions.check_remix_image(actor, context.image, context.owner_mention)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        try:
            assert self.context is not None and self.actor is not None
            await self.run(interaction, self.context, self.actor)
        except Exception as error:
            await report_error(interaction, error)

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        raise NotImplementedError


class RerollButton(ImageButton, template=rf"nb:reroll:(?P<id>{UUID})"):
    """A new paid job with the same prompt, model, ratio, size and inputs."""

    action = "reroll"
    limit_action = "generate"
    style = discord.ButtonStyle.primary
    emoji = "🎲"

    @classmethod
    def take_turn(cls, interaction: Interaction) -> Turn | None:
        """A new paid job: the order's own "generate" turn, taken at the press."""
        try:
            return interaction.client.orders.take_turn(identity_of(interaction))
        except TooSoon as error:
            raise RateLimited(error.retry_after) from None

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        image = context.image
        if not image.prompt:
            raise ImageNotFound()
        # The stored prompt is checked again: the server's blocklist may have grown since.
        ticket = await bot.orders.prepare(
            identity_of(interaction), turn=self.turn, prompt=image.prompt
        )

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            # Reads the job's stored inputs (waiting for a result still being stored): after
            # the answer.
            return await bot.generation.reroll_request(image, request_context(interaction))

        await start_job(interaction, ticket, build, result_view=result_view)


class EditButton(ImageButton, template=rf"nb:edit:(?P<id>{UUID})"):
    """Asks for an instruction, then a new paid job that edits this image."""

    action = "edit"
    emoji = "✏️"

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        # A result is shown before it is stored: the form opens at once all the same, and the
        # edit waits for the image after its own answer (GenerationService.settled).
        if (
            not context.image.is_ready
            and interaction.client.generation.shown(self.image_id) is None
        ):
            raise ImageNotFound()
        language = await language_of(interaction)
        await interaction.response.send_modal(EditModal(self.image_id, language))


class VariationsButton(RerollButton, template=rf"nb:variations:(?P<id>{UUID})"):
    """A new paid job: a variation of this image (its prompt and references, the image itself
    as the last reference), priced like an Edit (the image's model and size)."""

    action = "variations"
    style = discord.ButtonStyle.secondary
    emoji = "🔀"

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        image = context.image
        prompt = image.prompt
        if not prompt and image.metadata.get("extra_of"):
            # A further image of an answer carries no prompt of its own: its job's.
            primary = await bot.gallery.context(str(image.metadata["extra_of"]))
            prompt = primary.image.prompt if primary is not None else None
        if not prompt:
            raise ImageNotFound()
        # The stored prompt is checked again: the server's blocklist may have grown since.
        ticket = await bot.orders.prepare(identity_of(interaction), turn=self.turn, prompt=prompt)

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            # Reads the image and its job's stored inputs: after the answer.
            return await bot.generation.variation_request(image, request_context(interaction))

        await start_job(interaction, ticket, build, result_view=result_view)


class DeleteButton(ImageButton, template=rf"nb:delete:(?P<id>{UUID})"):
    """Asks first (privately): deleting is for good and its coins are not refunded. Its owner, a
    moderator of its own server, or a bot admin."""

    action = "delete"
    limit_action = "delete"
    style = discord.ButtonStyle.danger
    emoji = "🗑️"

    def check(self, bot: NanoBananaBot, actor: Actor, context: ImageContext) -> None:
        bot.permissions.check_delete_image(actor, context.image, context.owner_mention)

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        language = await language_of(interaction)
        image = context.image
        # The message the button is on, to clear once deleted; an ephemeral one can only be
        # edited with its own interaction's token, which the confirmation won't have.
        shown = interaction.message
        message_id = shown.id if shown is not None and not shown.flags.ephemeral else None
        view = discord.ui.View(timeout=None)
        view.add_item(
            ConfirmDeleteButton(image.id, t(language, "gen.delete_yes"), message_id=message_id)
        )
        view.add_item(CancelDeleteButton(image.id, t(language, "gen.delete_no")))
        key = "gen.delete_confirm" if image.coins_used else "gen.delete_confirm_free"
        await interaction.response.send_message(
            t(language, key, coins=image.coins_used), view=view, ephemeral=True
        )


class ConfirmDeleteButton(
    DeleteButton, template=rf"nb:delete:yes:(?P<id>{UUID})(?::(?P<message>[0-9]{{1,20}}))?"
):
    """Deletes the image (object, thumbnail, row, further images of its answer) and clears the
    messages that showed it."""

    action = "delete:yes"

    def __init__(
        self,
        image_id: str,
        label: str | None = None,
        *,
        context: ImageContext | None = None,
        message_id: int | None = None,
    ) -> None:
        super().__init__(image_id, label, context=context)
        self.message_id = message_id
        if message_id is not None:
            self.item.custom_id = f"nb:{self.action}:{image_id}:{message_id}"

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Any:
        button = await super().from_custom_id(interaction, item, match)
        button.message_id = int(match["message"]) if match["message"] else None
        return button

    async def run(self, interaction: Interaction, context: ImageContext, actor: Actor) -> None:
        bot = interaction.client
        if not context.image.is_ready:
            # Shown and still being stored: answer now, delete once the row and its objects
            # exist (there is nothing to delete before).
            await interaction.response.defer()
            stored = await bot.gallery.context(self.image_id, settled=True)
            if stored is None:
                raise ImageNotFound()
            context = stored
        # Through moderation: a moderator's deletion of someone's image is audited.
        deleted = await bot.moderation.delete_image(actor, context)
        text = t(await language_of(interaction), "gen.deleted")
        if interaction.response.is_done():
            await interaction.edit_original_response(content=text, view=None)
        else:
            await interaction.response.edit_message(content=text, view=None)
        # The results that showed it say so instead (their buttons would find nothing).
        shown = {post.message_id: post.channel_id for post in deleted.posts
                 if post.kind == "RESULT"}  # fmt: skip
        if self.message_id is not None and interaction.channel_id is not None:
            shown.setdefault(self.message_id, interaction.channel_id)
        for message_id, channel_id in shown.items():
            with contextlib.suppress(discord.HTTPException):
                await clear_image(bot, channel_id, message_id, context.image.id, text)


class CancelDeleteButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"nb:delete:no:(?P<id>{UUID})"
):
    """Keeps the image: the question goes away."""

    def __init__(self, image_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "Cancel",
                style=discord.ButtonStyle.secondary,
                custom_id=f"nb:delete:no:{image_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelDeleteButton:
        return cls(match["id"], getattr(item, "label", None))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        language = await language_of(interaction)
        await interaction.response.edit_message(content=t(language, "gen.delete_kept"), view=None)


EDIT_MODAL_ID = re.compile(rf"nb:editmodal:(?P<id>{UUID})")
INSTRUCTION_FIELD = "instruction"


class EditModal(discord.ui.Modal):
    """The form asking for an Edit's instruction.

    Only a form: its submission is handled statelessly by `GenerateCog.on_interaction`, from
    the image id in its custom_id, so it still works after a restart and when the same image's
    Edit is opened twice at once (discord.py keys open modals by custom_id alone).
    """

    def __init__(self, image_id: str, language: str) -> None:
        super().__init__(title=t(language, "gen.edit_title"), custom_id=f"nb:editmodal:{image_id}")
        self.add_item(
            discord.ui.TextInput(
                label=t(language, "gen.edit_label"),
                placeholder=t(language, "gen.edit_placeholder"),
                style=discord.TextStyle.paragraph,
                max_length=4000,
                custom_id=INSTRUCTION_FIELD,
            )
        )


def submitted_value(data: Any, custom_id: str) -> str | None:
    """A text input's value from a modal submission payload (action rows or labels)."""
    if isinstance(data, dict):
        if data.get("custom_id") == custom_id and "value" in data:
            return str(data["value"])
        children: Any = [data.get("component"), *(data.get("components") or [])]
        data = children
    if isinstance(data, list):
        for child in data:
            found = submitted_value(child, custom_id)
            if found is not None:
                return found
    return None


async def submit_edit(interaction: Interaction, image_id: str, instruction: str) -> None:
    """An Edit's modal was submitted: a new paid job that edits this image. Memory-only
    checks (orders.prepare), the answer, then the image, its owner and the stored image to
    edit."""
    bot = interaction.client
    ticket = await bot.orders.prepare(identity_of(interaction), prompt=instruction)

    async def build(member: Member, payer: Payer) -> GenerationRequest:
        context = await bot.gallery.context(image_id)
        if context is None:
            raise ImageNotFound()
        bot.permissions.check_remix_image(member.actor, context.image, context.owner_mention)
        return await bot.generation.edit_request(
            context.image, ticket.prompt, request_context(interaction)
        )

    await start_job(interaction, ticket, build, result_view=result_view)


def request_context(itx: Interaction) -> dict[str, Any]:
    """Where a job was asked for (kept with it, for its moderation log and its answer)."""
    return {"guild_id": itx.guild_id, "channel_id": itx.channel_id}


def result_view(
    image_id: str,
    language: str,
    *,
    reroll: bool = True,
    edit: bool = True,
    delete: bool = True,
    variations: bool = True,
    thread: bool = True,
    web_url: str | None = None,
) -> discord.ui.View:
    """Persistent Reroll / Edit / Variations / Delete / Continue in a thread buttons (they
    survive restarts), and a link to the image in the web gallery when there is one."""
    view = discord.ui.View(timeout=None)
    if reroll:
        view.add_item(RerollButton(image_id, t(language, "gen.reroll")))
    if edit:
        view.add_item(EditButton(image_id, t(language, "gen.edit")))
    if variations:
        view.add_item(VariationsButton(image_id, t(language, "gen.variations")))
    if delete:
        view.add_item(DeleteButton(image_id, t(language, "gen.delete")))
    if thread:
        view.add_item(thread_button(image_id, t(language, "conv.open_thread")))
    if web_url is not None:
        view.add_item(web_button(language, web_url))
    return view


#: The buttons of one image of a batch, in the order of its row.
BATCH_BUTTONS: tuple[tuple[type[ImageButton], str], ...] = (
    (RerollButton, "gen.reroll"),
    (EditButton, "gen.edit"),
    (VariationsButton, "gen.variations"),
    (DeleteButton, "gen.delete"),
)


def batch_view(images: Sequence[tuple[int, str]], language: str) -> discord.ui.View:
    """The buttons under a batch's images: a row per image (`(number, image id)`, at most
    five rows), each with its own Reroll, Edit, Variations and Delete, labelled with the
    image's number (a message holds 5 rows of 5 buttons: see bot.services.settings.MAX_BATCH)."""
    view = discord.ui.View(timeout=None)
    for row, (number, image_id) in enumerate(images[:5]):
        for button, key in BATCH_BUTTONS:
            item = button(
                image_id, t(language, "batch.button", action=t(language, key), number=number)
            )
            item.item.row = row
            view.add_item(item)
    return view


_BUTTON_ID = re.compile(rf"nb:(?P<action>reroll|edit|variations|delete):(?P<id>{UUID})")
_BUTTON_CLASSES: dict[str, type[ImageButton]] = {cls.action: cls for cls, _ in BATCH_BUTTONS}


async def clear_image(
    bot: NanoBananaBot, channel_id: int, message_id: int, image_id: str, text: str | None
) -> None:
    """A deleted image leaves a message that showed it: a message of a batch keeps its other
    images and their buttons; a message showing only this image says `text` instead (or goes,
    with `text` None)."""
    channel = bot.get_partial_messageable(channel_id)
    message = await channel.fetch_message(message_id)
    short = image_id.split("-")[0]
    images = [a for a in message.attachments if a.filename.startswith("nanobanana-")]
    mine = [a for a in images if short in a.filename]
    if len(images) <= 1 or not mine or len(mine) == len(images):
        if text is None:
            await message.delete()
        else:
            await message.edit(content=text, embeds=[], attachments=[], view=None)
        return
    names = {a.filename for a in mine}
    embeds = [
        embed
        for embed in message.embeds
        if not (embed.image.url and any(name in embed.image.url for name in names))
    ]
    view = discord.ui.View(timeout=None)
    for row, component in enumerate(message.components):
        for child in getattr(component, "children", ()):
            custom_id = getattr(child, "custom_id", None) or ""
            match = _BUTTON_ID.fullmatch(custom_id)
            if match is None or match["id"] == image_id:
                continue
            item = _BUTTON_CLASSES[match["action"]](match["id"], getattr(child, "label", None))
            item.item.row = row
            view.add_item(item)
    kept = [a for a in message.attachments if a.filename not in names]
    await message.edit(embeds=embeds, attachments=kept, view=view)


def thread_button(image_id: str, label: str) -> discord.ui.Button[Any]:
    """ "Continue in a thread" (issue 22): handled by cogs.conversations.OpenThreadButton,
    which matches its custom_id (kept here so every result can show it)."""
    return discord.ui.Button(
        label=label, style=discord.ButtonStyle.secondary, emoji="🧵",
        custom_id=f"nb:thread:{image_id}",
    )  # fmt: skip
