"""Localised command names, descriptions, options and choices, from the message catalogue.

An extension: loading it sets the command tree's translator (before the tree is synced), so the
synced commands carry `name_localizations` / `description_localizations` for every language
the catalogue has (Spanish: `es-ES` and `es-419`). English is the commands' own text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord import Locale, app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import DEFAULT_LANGUAGE, language_from_locale, translation

if TYPE_CHECKING:
    from bot.app import NanoBananaBot


def catalogue_key(location: Where, data: Any) -> str | None:
    """The catalogue key of a string discord.py asks to translate (None: not ours).

    Keys follow the command's path: `cmd.settings.show.description`,
    `cmd.generate.opt.prompt.name`; choices are `choice.<value>`.
    """
    if location is Where.command_name and isinstance(data, app_commands.ContextMenu):
        # A message or user command: its name has spaces and capitals ("Edit with Nano
        # Banana"); its catalogue key is `menu.<extras["key"]>.name`, or made from the name.
        key = data.extras.get("key")
        return f"menu.{key}.name" if key else f"{menu_key(data.name)}.name"
    if location in (Where.command_name, Where.group_name):
        return f"cmd.{_path(data)}.name"
    if location in (Where.command_description, Where.group_description):
        return f"cmd.{_path(data)}.description"
    if location is Where.parameter_name:
        return f"cmd.{_path(data.command)}.opt.{data.name}.name"
    if location is Where.parameter_description:
        return f"cmd.{_path(data.command)}.opt.{data.name}.description"
    if location is Where.choice_name:
        return f"choice.{data.value}"
    return None


def menu_key(name: str) -> str:
    """The catalogue prefix of a context menu by its English name (message commands are
    named in words: "Describe with Nano Banana" -> "menu.describe_with_nano_banana")."""
    return "menu." + "_".join(name.lower().split())


def _path(command: Any) -> str:
    return str(command.qualified_name).replace(" ", ".")


class CatalogueTranslator(app_commands.Translator):
    """Answers discord.py's translation requests from bot.i18n's catalogue."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        language = language_from_locale(locale.value)
        if language == DEFAULT_LANGUAGE:
            return None
        key = catalogue_key(context.location, context.data)
        return translation(language, key) if key is not None else None


async def setup(bot: NanoBananaBot) -> None:
    await bot.tree.set_translator(CatalogueTranslator())


async def teardown(bot: NanoBananaBot) -> None:
    await bot.tree.set_translator(None)
