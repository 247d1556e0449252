"""Messages in every language the bot speaks, and the commands' own names, descriptions, options
and choices (`cmd.*`, `choice.*`), which cogs.translator hands to Discord as localisations.

Messages are data: one TOML file per language next to this module (`en.toml`, `es.toml`), read
once at import and checked there (a broken file stops start-up naming the key at fault). Why
TOML and this small engine rather than gettext `.po` files: the code names every message by a
key (`error.coins`), which is exactly what a key/value TOML file holds, one line a message,
read by the standard library (`tomllib`) with no compile step (`.mo`) and no extraction
tooling; what gettext would add is taken from Babel directly: CLDR's plural rules (Spanish has
`one`, `many` and `other`), and localised month names, dates and numbers (`bot.i18n.formats`).

A message is
- a string, filled like `str.format`: `"error.coins" = "You need {cost:coins} ..."`;
- or a table of plural forms chosen by its `count` parameter with the language's CLDR rules:
  `"usage.line" = { one = "{count} image · {cost}", other = "{count} images · {cost}" }`.
Inside a string,
- `{cost:coins}` writes the number `cost` with the language's plural unit `unit.coins`
  ("1 coin", "2 coins"; "1 moneda", "2 monedas");
- `{/daily}`, `{/settings set}`, `{/generate prompt:}` name a command (or an option) by its
  English path and show it under that language's name (`/diario`, `/ajustes cambiar`,
  `/generar indicación:`), from the same `cmd.*.name` entries the Discord client shows (and
  cogs.translator sends); resolved once, at load.

The reply language follows each interaction's locale (`es-ES`, `es-419` -> Spanish, anything
else -> English); `users.language` keeps the latest one for messages sent outside an
interaction. Every language has the same keys and fields, and each plural table exactly the
categories of its language (tests check both).
"""

from __future__ import annotations

import logging
import re
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import Locale

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
#: The parameter that chooses a plural message's form.
COUNT = "count"
#: Plural units (`{n:coins}` -> `unit.coins`) live under this prefix.
UNIT_PREFIX = "unit."

_HERE = Path(__file__).resolve().parent
# `{/settings set}`, `{/generate prompt:}`: a command path, maybe ending with an option.
_COMMAND_REFERENCE = re.compile(r"\{/([^{}]+)\}")
# A field's format spec that names a unit (other specs are Python's own).
_UNIT_SPEC = re.compile(r"^[a-z_]+$")
_PARSER = string.Formatter()


class CatalogueError(ValueError):
    """A language file that can't be used (the message names the file and key)."""


@dataclass(frozen=True)
class Plural:
    """A message's forms by CLDR plural category (`one`, `few`, `many`, `other`...)."""

    forms: Mapping[str, str]

    def templates(self) -> Iterator[str]:
        return iter(self.forms.values())


Entry = str | Plural


def fields(template: str) -> Iterator[tuple[str, str]]:
    """The `(name, spec)` of every `{field}` a template fills in."""
    for _, name, spec, _ in _PARSER.parse(template):
        if name:
            yield name, spec or ""


def placeholders(entry: Entry) -> set[str]:
    """The `{names}` a message fills in (every form of a plural one)."""
    templates = entry.templates() if isinstance(entry, Plural) else (entry,)
    return {name for template in templates for name, _ in fields(template)}


class Catalogue:
    """One language's messages, resolved and checked."""

    def __init__(self, language: str, entries: dict[str, Entry]) -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self.entries = entries
        #: The plural categories this language uses (CLDR; `other` always).
        self.categories = frozenset(self.locale.plural_form.tags | {"other"})
        # Templates that use a unit (`{n:coins}`): filled by the slower Formatter; the rest
        # by str.format_map.
        self.with_units: frozenset[str] = frozenset()
        self._formatter = _UnitFormatter(self)

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def category(self, count: Any) -> str:
        """The plural category of `count` here (`other` for anything that isn't a number)."""
        try:
            return str(self.locale.plural_form(abs(count)))
        except (TypeError, ValueError):
            return "other"

    def choose(self, entry: Entry, params: Mapping[str, Any]) -> str:
        """The template of `entry` for these parameters (a plural's form by `count`)."""
        if isinstance(entry, str):
            return entry
        forms = entry.forms
        return forms.get(self.category(params.get(COUNT))) or forms["other"]

    def unit(self, name: str, count: Any) -> str:
        """`count` with the unit `unit.<name>`: "1 coin", "3 monedas"."""
        entry = self.entries.get(UNIT_PREFIX + name)
        if not isinstance(entry, Plural):
            return str(count)
        template = self.choose(entry, {COUNT: count})
        return template.format_map(_Params(UNIT_PREFIX + name, {COUNT: count}))

    def fill(self, key: str, template: str, params: dict[str, Any]) -> str:
        values = _Params(key, params)
        if template in self.with_units:
            return self._formatter.vformat(template, (), values)
        return template.format_map(values)


class _Params(dict[str, Any]):
    """Message parameters; one that is missing shows as "?" (logged), never as a raw
    `{placeholder}` template."""

    def __init__(self, key: str, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self.key = key

    def __missing__(self, name: str) -> str:
        log.warning("message %s was shown without its {%s} parameter", self.key, name)
        return "?"


class _UnitFormatter(string.Formatter):
    """`str.format` plus units: `{cost:coins}` is `cost` with the plural unit `unit.coins`."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        return kwargs[str(key)]  # _Params answers "?" for a missing one

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec and _UNIT_SPEC.match(format_spec):
            return self.catalogue.unit(format_spec, value)
        return str(super().format_field(value, format_spec))


def _read(language: str) -> dict[str, Entry]:
    path = _HERE / f"{language}.toml"
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{path.name}: {error}") from None
    entries: dict[str, Entry] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            entries[key] = value
        elif isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
            entries[key] = Plural(dict(value))
        else:
            raise CatalogueError(f"{path.name}: {key} is neither text nor a table of plural forms")
    return entries


def _command_names(
    language: str, entries: Mapping[str, Entry], english: Mapping[str, Entry]
) -> Callable[[str], str]:
    def name(key: str) -> str:
        found = entries.get(key, english.get(key))
        if not isinstance(found, str):
            raise CatalogueError(f"{language}.toml: no command name {key}")
        return found

    return name


def _resolve_commands(template: str, name: Callable[[str], str]) -> str:
    """`{/settings set}` -> `/ajustes cambiar`; `{/generate prompt:}` -> `/generar indicación:`."""

    def one(match: re.Match[str]) -> str:
        path: list[str] = []
        shown: list[str] = []
        for word in match.group(1).split():
            if word.endswith(":"):
                option = name(f"cmd.{'.'.join(path)}.opt.{word[:-1]}.name")
                shown.append(f"{option}:")
            else:
                path.append(word)
                shown.append(name(f"cmd.{'.'.join(path)}.name"))
        return "/" + " ".join(shown)

    return _COMMAND_REFERENCE.sub(one, template)


def _load(language: str, english: Mapping[str, Entry] | None = None) -> Catalogue:
    raw = _read(language)
    name = _command_names(language, raw, english or raw)
    entries: dict[str, Entry] = {}
    for key, entry in raw.items():
        if isinstance(entry, Plural):
            entries[key] = Plural({c: _resolve_commands(t, name) for c, t in entry.forms.items()})
        else:
            entries[key] = _resolve_commands(entry, name)
    catalogue = Catalogue(language, entries)
    with_units = set()
    for key, entry in entries.items():
        if isinstance(entry, Plural):
            unknown = set(entry.forms) - catalogue.categories
            if unknown or "other" not in entry.forms:
                raise CatalogueError(
                    f"{language}.toml: {key} has plural forms {sorted(entry.forms)}; "
                    f"{language} uses {sorted(catalogue.categories)}"
                )
        templates = entry.templates() if isinstance(entry, Plural) else (entry,)
        for template in templates:
            try:
                specs = [spec for _, spec in fields(template) if spec]
            except ValueError as error:
                raise CatalogueError(f"{language}.toml: {key}: {error}") from None
            for spec in specs:
                if not _UNIT_SPEC.match(spec):
                    continue
                if not isinstance(entries.get(UNIT_PREFIX + spec), Plural):
                    raise CatalogueError(f"{language}.toml: {key} uses a unknown unit {spec}")
                with_units.add(template)
    catalogue.with_units = frozenset(with_units)
    return catalogue


def _load_all() -> dict[str, Catalogue]:
    english = _load(DEFAULT_LANGUAGE)
    catalogues = {DEFAULT_LANGUAGE: english}
    for path in sorted(_HERE.glob("*.toml")):
        if path.stem != DEFAULT_LANGUAGE:
            catalogues[path.stem] = _load(path.stem, english.entries)
    return catalogues


#: Every language's catalogue, by language code (English first).
CATALOGUES: dict[str, Catalogue] = _load_all()
#: The languages the bot speaks.
LANGUAGES: frozenset[str] = frozenset(CATALOGUES)
_ENGLISH = CATALOGUES[DEFAULT_LANGUAGE]


def language_from_locale(locale: str | None) -> str:
    """`es-ES` -> `es`; anything we have no messages for -> English."""
    if not locale:
        return DEFAULT_LANGUAGE
    language = str(locale).split("-")[0].lower()
    return language if language in CATALOGUES else DEFAULT_LANGUAGE


def translation(language: str, key: str) -> str | None:
    """The catalogue's text for `key` in exactly `language`, or None (no fallback); a plural
    message's `other` form."""
    catalogue = CATALOGUES.get(language)
    entry = catalogue.get(key) if catalogue is not None else None
    if isinstance(entry, Plural):
        return entry.forms["other"]
    return entry


def has_message(key: str) -> bool:
    """Whether `key` is a message (in English, the fallback of every language)."""
    return key in _ENGLISH.entries


def t(language: str | None, key: str, **params: Any) -> str:
    """The message `key` in `language` (falling back to English), filled with `params`."""
    catalogue = CATALOGUES.get(language or DEFAULT_LANGUAGE, _ENGLISH)
    entry = catalogue.get(key)
    if entry is None:
        catalogue = _ENGLISH
        entry = catalogue.get(key)
        if entry is None:
            return key
    template = catalogue.choose(entry, params)
    try:
        return catalogue.fill(key, template, params)
    except (IndexError, ValueError, AttributeError, KeyError, TypeError):
        log.warning("message %s could not be filled in", key)
        return template.replace("{", "").replace("}", "")
