"""The message catalogue: every language says the same things, with its own plural forms and its
own command names; commands fit Discord's rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bot.i18n as i18n
from bot.i18n import (
    CATALOGUES,
    DEFAULT_LANGUAGE,
    CatalogueError,
    Plural,
    fields,
    language_from_locale,
    placeholders,
    t,
    translation,
)

# Discord's rule for command and option names (lowercase letters of any script, digits, - _).
NAME = re.compile(r"^[-_\w]{1,32}$")
ENGLISH = CATALOGUES[DEFAULT_LANGUAGE]
OTHERS = [language for language in CATALOGUES if language != DEFAULT_LANGUAGE]
I18N_DIR = Path(i18n.__file__).parent


def command_entries(language: str) -> dict[str, str]:
    return {
        key: entry
        for key, entry in CATALOGUES[language].entries.items()
        if key.startswith(("cmd.", "choice.")) and isinstance(entry, str)
    }


def texts(language: str) -> dict[str, str]:
    """Every template of a language, a plural message's forms as `key[form]`."""
    found: dict[str, str] = {}
    for key, entry in CATALOGUES[language].entries.items():
        if isinstance(entry, Plural):
            found.update({f"{key}[{form}]": text for form, text in entry.forms.items()})
        else:
            found[key] = entry
    return found


def test_the_catalogues_are_data_files_one_per_language() -> None:
    assert {path.stem for path in I18N_DIR.glob("*.toml")} == set(CATALOGUES) >= {"en", "es"}
    # No message lives in Python any more.
    root = I18N_DIR.parents[1]
    assert not (root / "bot" / "i18n.py").exists()
    assert not list((root / "bot").glob("i18n_*.py"))


@pytest.mark.parametrize("language", OTHERS)
def test_every_language_has_the_same_keys_and_placeholders(language: str) -> None:
    other = CATALOGUES[language]
    assert set(other.entries) == set(ENGLISH.entries), set(other.entries) ^ set(ENGLISH.entries)
    different = {
        key
        for key, entry in ENGLISH.entries.items()
        if placeholders(entry) != placeholders(other.entries[key])
    }
    assert different == set()
    # Units are plural tables in every language.
    for key in ENGLISH.entries:
        if key.startswith(i18n.UNIT_PREFIX):
            assert isinstance(other.entries[key], Plural), key


@pytest.mark.parametrize("language", list(CATALOGUES))
def test_plural_messages_have_exactly_the_forms_of_their_language(language: str) -> None:
    catalogue = CATALOGUES[language]
    plurals = {k: e for k, e in catalogue.entries.items() if isinstance(e, Plural)}
    assert plurals, "no plural forms at all"
    for key, entry in plurals.items():
        assert set(entry.forms) == catalogue.categories, (language, key, sorted(entry.forms))


def test_spanish_has_cldr_plural_forms() -> None:
    spanish = CATALOGUES["es"]
    assert spanish.categories == {"one", "many", "other"}  # CLDR: 1 / 1 000 000 / the rest
    assert t("es", "usage.line", images=1, cost="$0.04") == "1 imagen · $0.04"
    assert t("es", "usage.line", images=2, cost="$0.08") == "2 imágenes · $0.08"
    assert t("es", "usage.line", images=0, cost="$0.00") == "0 imágenes · $0.00"
    assert t("es", "usage.line", images=1_000_000, cost="$1") == "1000000 de imágenes · $1"
    assert t("es", "usage.coins", count=1) == "1 moneda pagada"
    assert t("es", "error.coins", cost=1, balance=0).startswith("Necesitas 1 moneda pero")
    assert t("en", "usage.line", images=1, cost="$0.04") == "1 image · $0.04"
    assert t("en", "gen.failed", reason="Oops.", coins=1) == "❌ Oops. You were refunded 1 coin."
    assert t("en", "gen.failed", reason="Oops.", coins=100).endswith("refunded 100 coins.")


def _shown_command_names(language: str) -> dict[str, str]:
    """Every command path (`settings set`) as a language shows it (`/ajustes cambiar`)."""
    shown: dict[str, str] = {}
    for key in command_entries(DEFAULT_LANGUAGE):
        if key.startswith("cmd.") and key.endswith(".name") and ".opt." not in key:
            parts = key.removeprefix("cmd.").removesuffix(".name").split(".")
            names = [t(language, "cmd." + ".".join(parts[: n + 1]) + ".name")
                     for n in range(len(parts))]  # fmt: skip
            shown[" ".join(parts)] = "/" + " ".join(names)
    return shown


@pytest.mark.parametrize("language", OTHERS)
def test_no_english_command_name_in_another_language(language: str) -> None:
    english, local = _shown_command_names(DEFAULT_LANGUAGE), _shown_command_names(language)
    foreign = {path: name for path, name in english.items() if name != local[path]}
    assert "/daily" in foreign.values() and "/grant" in foreign.values()
    leaks = []
    for key, text in texts(language).items():
        for path, name in foreign.items():
            if re.search(rf"(?<![\w/<]){re.escape(name)}(?![\w-])", text):
                leaks.append((key, name, local[path]))
    assert leaks == []
    # And the localised names are what members read.
    assert "/diario" in t("es", "error.coins", cost=1, balance=0)
    assert "/otorgar" in t("es", "error.coins", cost=1, balance=0)
    assert "/monedas" in t("es", "error.coins", cost=1, balance=0)
    assert "`/token revocar id:" in t("es", "token.created", name="n", id="i", token="x")
    assert "/generar indicación:" in t("es", "prompt.empty")


def test_data_files_name_commands_by_reference_only() -> None:
    """A command written out in a data file (`/daily`) would not follow the member's language:
    every one is a `{/daily}` reference."""
    commands = {key.split(".")[1] for key in command_entries(DEFAULT_LANGUAGE)
                if key.startswith("cmd.")}  # fmt: skip
    names = commands | {t(lang, f"cmd.{c}.name") for lang in CATALOGUES for c in commands}
    written = re.compile(rf"(?<![\w/<{{])/({'|'.join(map(re.escape, names))})(?![\w-])")
    for path in I18N_DIR.glob("*.toml"):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if line.startswith("#"):
                continue
            value = line.partition(" = ")[2]
            assert not written.search(value), f"{path.name}:{number}: {line}"


def test_a_reference_to_a_missing_command_stops_loading() -> None:
    with pytest.raises(CatalogueError, match=r"cmd\.nosuch\.name"):
        i18n._resolve_commands("use {/nosuch}", i18n._command_names("en", ENGLISH.entries, {}))
    assert (
        i18n._resolve_commands("{/settings set}", i18n._command_names("es", {}, ENGLISH.entries))
        == "/settings set"
    )


@pytest.mark.parametrize("language", list(CATALOGUES))
def test_units_are_known(language: str) -> None:
    catalogue = CATALOGUES[language]
    for key, text in texts(language).items():
        for _, spec in fields(text):
            if spec:
                assert isinstance(catalogue.get(f"unit.{spec}"), Plural), (key, spec)


def test_no_block_reason_is_shown_as_a_bare_api_code() -> None:
    blocks = [key for key in ENGLISH.entries if key.startswith("block.")]
    assert blocks
    for key in blocks:
        code = key.rsplit(".", 1)[1]
        for language in CATALOGUES:
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
    for language in CATALOGUES:
        for key, text in command_entries(language).items():
            if key.endswith(".name"):
                assert NAME.match(text) and text == text.lower(), (language, key, text)
            else:
                assert 1 <= len(text) <= 100, (language, key, len(text))
    # Option names are unique within each command, in every language.
    for language in CATALOGUES:
        by_command: dict[str, list[str]] = {}
        for key, text in command_entries(language).items():
            if ".opt." in key and key.endswith(".name"):
                by_command.setdefault(key.split(".opt.")[0], []).append(text)
        for command, names in by_command.items():
            assert len(names) == len(set(names)), (language, command, names)


def test_missing_keys_fall_back_to_english_then_the_key() -> None:
    assert t("fr", "settings.yes") == "yes"
    assert t("es", "no.such.key") == "no.such.key"
    # A missing parameter shows as "?", never as a raw {placeholder}.
    assert t("en", "settings.out_of_range", low=1) == "Pick a whole number from 1 to ?."
    assert t("en", "gen.failed", reason="x") == "❌ x You were refunded ? coins."
