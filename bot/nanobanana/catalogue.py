"""The models the API says exist: `GET /v1beta/models` (ListModels), read as pure functions.

Google's reference (ai.google.dev/api/models, checked 2026-12-07): `pageSize` defaults to 50
and is capped at 1000; the answer is `{"models": [Model...], "nextPageToken": "..."}` with no
token on the last page. A Model has `name` ("models/{id}"), `baseModelId`, `version`,
`displayName`, `description`, `inputTokenLimit`, `outputTokenLimit`,
`supportedGenerationMethods` (e.g. "generateContent"), `thinking`, and sampling defaults.

The list holds every model the key may call (text, embeddings, Imagen...): `is_image_model`
keeps the ones the bot can use, Nano Banana models answering `generateContent`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from bot.nanobanana.errors import MalformedResponse
from bot.nanobanana.profiles import Lineup, normalise

#: What a page may ask for (Google returns at most this many whatever is asked).
MAX_PAGE_SIZE: Final = 1000
#: A listing that needs more pages than this is not Google's (a broken proxy looping).
MAX_PAGES: Final = 100
#: Ids that look like a Nano Banana image model (Imagen models use `:predict`, not ours).
_IMAGE_ID: Final = re.compile(r"(image|nano-banana)", re.IGNORECASE)
_NOT_OURS: Final = re.compile(r"^(imagen|veo|embedding|text-embedding|aqa)", re.IGNORECASE)


@dataclass(frozen=True)
class ListedModel:
    """One model of the API's list."""

    model: str
    display_name: str
    methods: tuple[str, ...] = ()
    input_token_limit: int | None = None
    output_token_limit: int | None = None
    version: str | None = None

    @property
    def generates(self) -> bool:
        """Whether it answers `generateContent` (what the bot calls)."""
        return "generateContent" in self.methods

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "display_name": self.display_name,
            "methods": list(self.methods),
            "input_token_limit": self.input_token_limit,
        }


def parse_page(payload: bytes | bytearray | str) -> tuple[list[ListedModel], str | None]:
    """One page of ListModels: its models and the next page's token (None on the last).
    Raises MalformedResponse for anything that is not that shape."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise MalformedResponse("the models list is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedResponse("the models list is not a JSON object")
    raw_models = document.get("models", [])
    if not isinstance(raw_models, list):
        raise MalformedResponse("the models list has no list of models")
    models = [model for raw in raw_models if (model := parse_model(raw)) is not None]
    token = document.get("nextPageToken")
    return models, token if isinstance(token, str) and token else None


def parse_model(raw: object) -> ListedModel | None:
    """One Model resource, or None when it has no usable name."""
    if not isinstance(raw, dict):
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    methods = raw.get("supportedGenerationMethods")
    display = raw.get("displayName")
    return ListedModel(
        model=normalise(name),
        display_name=display.strip()[:128] if isinstance(display, str) and display.strip()
        else normalise(name),
        methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list)
        else (),
        input_token_limit=_positive(raw.get("inputTokenLimit")),
        output_token_limit=_positive(raw.get("outputTokenLimit")),
        version=raw.get("version") if isinstance(raw.get("version"), str) else None,
    )  # fmt: skip


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def is_image_model(listed: ListedModel, lineup: Lineup) -> bool:
    """Whether the bot can use it: a model of our lineup, or one whose id looks like a Nano
    Banana image model; either way answering `generateContent`."""
    if not listed.generates:
        return False
    if listed.model in lineup:
        return True
    return bool(_IMAGE_ID.search(listed.model)) and not _NOT_OURS.match(listed.model)


def image_models(listed: Iterable[ListedModel], lineup: Lineup) -> list[ListedModel]:
    """The image models of a listing, in the API's order."""
    return [model for model in listed if is_image_model(model, lineup)]
