"""Which text model describes images (/describe): Google's dated lineup of cheap text models
(`text_models.toml`) and the choice among what the API lists for the key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Final

#: Ids of general text models the bot can ask about an image: gemini-X.Y-flash[-lite].
TEXT_MODEL_ID: Final = re.compile(r"^gemini-(\d+)(?:\.(\d+))?-flash(-lite)?$")


@dataclass(frozen=True)
class TextModels:
    """The text models' lineup: the preference order and what deprecated ids became."""

    preference: tuple[str, ...]
    successors: Mapping[str, str] = field(default_factory=dict)
    checked: date | None = None

    def follow(self, model: str) -> str:
        """`model`, or what Google replaced it with (through the chain)."""
        seen = {model}
        while model in self.successors:
            model = self.successors[model]
            if model in seen:
                break
            seen.add(model)
        return model

    def choose(self, listed: Iterable[str] | None) -> str | None:
        """The model to describe images with: the first preferred one the key lists; else
        the newest Flash-Lite, then the newest Flash it lists; None when it lists none.
        `listed` None (no models list, e.g. behind a proxy): the first preferred one."""
        if listed is None:
            return self.preference[0] if self.preference else None
        names = {name for name in listed if TEXT_MODEL_ID.match(name)}
        for model in self.preference:
            if model in names:
                return model
        if not names:
            return None
        return max(names, key=_rank)


def _rank(model: str) -> tuple[int, int, int]:
    """Lite first (cheap), then the newest version."""
    found = TEXT_MODEL_ID.match(model)
    assert found is not None
    major, minor, lite = found.groups()
    return (1 if lite else 0, int(major), int(minor or 0))


def load_text_models(text: str | None = None) -> TextModels:
    """The lineup from `text_models.toml` (packaged beside this module), or from `text`."""
    if text is None:
        text = resources.files("bot.nanobanana").joinpath("text_models.toml").read_text("utf-8")
    document = tomllib.loads(text)
    checked = document.get("checked")
    return TextModels(
        preference=tuple(str(m) for m in document.get("preference", [])),
        successors={str(k): str(v) for k, v in document.get("successors", {}).items()},
        checked=date.fromisoformat(checked) if isinstance(checked, str) else None,
    )


TEXT_MODELS: Final = load_text_models()
