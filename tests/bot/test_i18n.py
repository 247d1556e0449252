"""The message catalogue: both languages say the same things, commands fit Discord's rules."""

from __future__ import annotations

import re

import pytest

from bot.i18n import COMMANDS, MESSAGES, language_from_locale, placeholders, t, translation

# Discord's rule for command and option names (lowercase letters of any script, digits, - _).
NAME = re.compile(r"^[-_\w]{1,32}$")


def test_english_and_spanish_have_the_same_keys_and_placeholders() -> None:
    english, spanish = MESSAGES["en"], MESSAGES["es"]
    assert set(english) == set(spanish), set(english) ^ set(spanish)
    different = {k for k in english if placeholders(english[k]) != placeholders(spanish[k])}
    assert different == set()


def test_no_block_reason_is_shown_as_a_bare_api_code() -> None:
    blocks = [key for key in MESSAGES["en"] if key.startswith("block.")]
    assert blocks
    for key in blocks:
        code = key.rsplit(".", 1)[1]
        for language in MESSAGES:
            text = translation(language, key)
            assert text and (code == "unknown" or code not in text), (language, key)


@pytest.mark.parametrize(
    ("locale", "language"),
    [("es-ES", "es"), ("es-419", "es"), ("en-US", "en"), ("en-GB", "en"), ("ja", "en"),
     (None, "en"), ("", "en")],
)  # fmt: skip
def test_language_follows_the_locale(locale: str | None, language: str) -> None:
    assert language_from_locale(locale) == language


def test_command_texts_fit_discord() -> None:
    for language, entries in COMMANDS.items():
        for key, text in entries.items():
            if key.endswith(".name"):
                assert NAME.match(text) and text == text.lower(), (language, key, text)
            else:
                assert 1 <= len(text) <= 100, (language, key, len(text))
    # Option names are unique within each command, in every language.
    for language, entries in COMMANDS.items():
        by_command: dict[str, list[str]] = {}
        for key, text in entries.items():
            if ".opt." in key and key.endswith(".name"):
                by_command.setdefault(key.split(".opt.")[0], []).append(text)
        for command, names in by_command.items():
            assert len(names) == len(set(names)), (language, command, names)


def test_missing_keys_fall_back_to_english_then_the_key() -> None:
    assert t("fr", "settings.yes") == "yes"
    assert t("es", "no.such.key") == "no.such.key"
    # A missing parameter shows as "?", never as a raw {placeholder}.
    assert t("en", "settings.out_of_range", low=1) == "Pick a whole number from 1 to ?."
