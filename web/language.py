"""The page's and the API's language, following the browser (Accept-Language)."""

from __future__ import annotations

from aiohttp import web

from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES


def preferred_language(header: str | None) -> str:
    """The first language of an Accept-Language header (by its q values) that the catalogue
    has, else English: `es-ES,es;q=0.9,en;q=0.8` -> `es`."""
    choices: list[tuple[float, int, str]] = []
    for index, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().split("-")[0].lower()
        if language and quality > 0:
            choices.append((-quality, index, language))
    for _, _, language in sorted(choices):
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def language_of(request: web.Request) -> str:
    return preferred_language(request.headers.get("Accept-Language"))
