"""`/generate`: a paid image job ordered from Discord (bot.services.orders), and the Edit
form's submissions.

Acknowledgement first: `orders.prepare` runs the checks that need nothing but memory (the
member's rate limit, prompt, model, ratio, size, the attachments' declared sizes and types,
the server's channels, role and blocklist, the member's job slots and room in the queue), so
those refusals are ephemeral and free. Then the first answer is the job's own message
("queued" or "generating", public or private as the server keeps results), never a defer
followed by an edit; only then the database work and the downloads (`start_job`, in
cogs.listener). The buttons under results live in cogs.views.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.catalog import (
    possible_models,
    possible_ratios,
    possible_references,
    possible_sizes,
)
from bot.services.generation import GenerationRequest
from bot.services.members import Member, Payer
from bot.services.settings import MAX_BATCH
from cogs.batch import start_batch
from cogs.cancel import CancelJobButton
from cogs.characters import character_names
from cogs.common import (
    allowed_guild,
    command_text,
    declared,
    download,
    identity_of,
    in_guild,
    option_texts,
)
from cogs.errors import report_error
from cogs.listener import start_job
from cogs.views import (
    EDIT_MODAL_ID,
    INSTRUCTION_FIELD,
    CancelDeleteButton,
    ConfirmDeleteButton,
    DeleteButton,
    EditButton,
    RerollButton,
    VariationsButton,
    request_context,
    result_view,
    submit_edit,
    submitted_value,
)

if TYPE_CHECKING:
    from bot.app import Interaction, NanoBananaBot

# Attachments of /generate being downloaded at once (each up to MAX_UPLOAD_BYTES in memory).
CONCURRENT_DOWNLOADS = 4
#: Discord's limit on a command's options (ApplicationCommandCreateRequest.options maxItems
#: 25 in discord/discord-api-spec openapi.json, commit 74fda0f of 2026-07-18; checked
#: 2026-12-07).
MAX_COMMAND_OPTIONS = 25


class GenerateCog(commands.Cog):
    """Image generation and editing."""

    def __init__(self, bot: NanoBananaBot) -> None:
        self.bot = bot
        # Attachments are downloaded a few at a time: each is megabytes in memory until shrunk.
        self.downloads = asyncio.Semaphore(CONCURRENT_DOWNLOADS)
        # Built per bot: its options depend on the configured models.
        self.__cog_app_commands__.append(generate_command(self))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: Interaction) -> None:
        """Edit modal submissions, handled from their payload alone (see EditModal)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = EDIT_MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        try:
            instruction = submitted_value(data.get("components"), INSTRUCTION_FIELD) or ""
            await submit_edit(interaction, match["id"], instruction)
        except Exception as error:
            await report_error(interaction, error)


def generate_command(cog: GenerateCog) -> app_commands.Command[Any, ..., None]:
    """`/generate` with the options this bot's models call for: `model` only when members
    may choose between several, `size` only when a model has sizes. Which models exist
    changes while the bot runs (Google retires them): `model` and `size` are autocompleted
    from the live catalog, each choice labelled with its cost, so members see the price
    before anything is charged; the ratios offered are those any possible model takes."""
    models = cog.bot.models

    # A plain str for every choice (not Choice) so that an unknown value reaches the
    # service's own check and its friendly message instead of a conversion error. Images
    # beyond the second come as keyword arguments (image3...imageN, see `reference_options`).
    async def generate(
        itx: Interaction,
        prompt: str,
        aspect_ratio: str = "1:1",
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        model: str | None = None,
        size: str | None = None,
        style: str | None = None,
        count: app_commands.Range[int, 1, MAX_BATCH] = 1,
        grounded: bool = False,
        character: str | None = None,
        **more: discord.Attachment | None,
    ) -> None:
        # Before any await but a server's first settings read: what memory alone can check
        # (rate limit, prompt, ratio, model, size, the attachments as declared and how many
        # the model takes, the server's rules and blocklist, the member's job slots), so
        # these refusals are private, free and instant. Then the job's own message; then
        # the database.
        bot = cog.bot
        attachments = [a for a in (image, image2, *more.values()) if a is not None]
        identity = identity_of(itx)
        saved = None
        if character and itx.guild_id is not None:
            # One indexed read before the answer: the character's images count against the
            # model's limit with the attachments.
            actor = await bot.accounts.actor(identity)
            saved = await bot.characters.find(actor, itx.guild_id, character)
        ticket = await bot.orders.prepare(
            identity, prompt=prompt, model=model, size=size, ratio=aspect_ratio,
            declared=[declared(a) for a in attachments], style=style, count=count,
            grounded=grounded, references=len(saved.refs) if saved is not None else 0,
        )  # fmt: skip

        async def build(member: Member, payer: Payer) -> GenerationRequest:
            async with cog.downloads:
                # One at a time: each downloaded image is dropped once shrunk.
                inputs = tuple([await bot.orders.image(a.filename, await download(a))
                                for a in attachments])  # fmt: skip
            if saved is not None:
                inputs += await bot.characters.references(saved)
            # The style's reference images after the member's own.
            inputs += await bot.orders.style_images(ticket)
            return GenerationRequest(
                prompt=ticket.prompt, aspect_ratio=aspect_ratio, inputs=inputs,
                context=request_context(itx), model=model, image_size=size, grounded=grounded,
            )  # fmt: skip

        if ticket.count > 1:
            # Each image its own job, shown together in one message.
            await start_batch(itx, ticket, build)
        else:
            await start_job(itx, ticket, build, result_view=result_view)

    hidden = set()
    if not models.settings.extras:
        hidden.add("model")
    if not possible_sizes(models.settings, models.lineup):
        hidden.add("size")
    if not any(p.grounding for p in possible_models(models.settings, models.lineup)):
        hidden.add("grounded")
    signature = inspect.signature(generate)
    extra = reference_options(len(signature.parameters) - 2 - len(hidden), models)
    generate.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            *(p for p in signature.parameters.values()
              if p.name not in hidden and p.kind is not p.VAR_KEYWORD),
            *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=discord.Attachment | None) for name in extra),
        ]
    )  # fmt: skip
    descriptions = option_texts(
        "generate",
        "prompt",
        "aspect_ratio",
        "image",
        "image2",
        "model",
        "size",
        "style",
        "count",
        "grounded",
        "character",
        *extra,
    )
    callback = app_commands.describe(**{k: v for k, v in descriptions.items() if k not in hidden})(
        generate
    )
    callback = app_commands.choices(
        aspect_ratio=[
            app_commands.Choice(name=r, value=r)
            for r in possible_ratios(models.settings, models.lineup)[:25]
        ]
    )(callback)
    autocompletes: dict[str, Any] = {"style": _style_choices, "character": character_names}
    if "model" not in hidden:
        autocompletes["model"] = _model_choices
    if "size" not in hidden:
        autocompletes["size"] = _size_choices
    if autocompletes:
        callback = app_commands.autocomplete(**autocompletes)(callback)
    callback = allowed_guild()(in_guild()(app_commands.guild_only()(callback)))
    return app_commands.Command(**command_text("generate"), callback=callback)


def reference_options(taken: int, models: Any) -> list[str]:
    """The image options beyond `image` and `image2` (image3, image4...): as many as the
    models members may choose take (14 for Pro and Nano Banana 2), within Discord's limit of
    options a command has (`taken` are used by the others)."""
    references = possible_references(models.settings, models.lineup)
    count = min(references, MAX_COMMAND_OPTIONS - taken + 2)
    return [f"image{n}" for n in range(3, count + 1)]


async def _model_choices(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The models members may pick now, each with its cost (from memory: instant)."""
    catalog = itx.client.generation.catalog
    typed = current.strip().lower()
    return [
        app_commands.Choice(name=choice.label, value=choice.value)
        for choice in catalog.models()
        if not typed or typed in choice.label.lower() or typed in choice.value
    ][:25]


async def _style_choices(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """This server's style presets (from memory when read lately)."""
    typed = current.strip().casefold()
    return [
        app_commands.Choice(name=preset.name, value=preset.name)
        for preset in await itx.client.styles.styles(itx.guild_id)
        if not typed or typed in preset.name.casefold()
    ][:25]


async def _size_choices(itx: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The sizes of the model picked so far (the default's otherwise), with their costs."""
    catalog = itx.client.generation.catalog
    picked = getattr(itx.namespace, "model", None)
    model = picked if isinstance(picked, str) and picked in catalog.profiles else None
    if model is None and catalog.usable and not catalog.model_option:
        model = catalog.default_model
    typed = current.strip().lower()
    return [
        app_commands.Choice(name=choice.label, value=choice.value)
        for choice in catalog.size_labels(model)
        if not typed or typed in choice.label.lower()
    ][:25]


async def setup(bot: NanoBananaBot) -> None:
    bot.add_dynamic_items(
        RerollButton,
        EditButton,
        VariationsButton,
        DeleteButton,
        ConfirmDeleteButton,
        CancelDeleteButton,
        CancelJobButton,
    )
    await bot.add_cog(GenerateCog(bot))
