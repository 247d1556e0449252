"""What each Nano Banana model accepts, as data: Google's lineup (`lineup.toml`, each fact with
its source and the date it was checked), what an id we have never heard of is assumed to
accept (by the family its name suggests), and the owner's own profiles file
(`NANOBANANA_MODEL_PROFILES`), which overrides or adds entries without a code change.

The service checks a `/generate` against the chosen model's profile before any coin moves, and
the client checks it again before anything goes on the wire, so a request the real API would
refuse (an unknown size, a ratio the model lacks, too many reference images) never costs a
member coins or the owner a paid call.

Which models exist is not this module's to say: the API's models list and its 404s decide
(`bot.nanobanana.catalogue`, `bot.services.models`). A profile only says what a model accepts
and what Google said about its life (released, deprecated, shut down, successor).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Final

#: The ten ratios every Nano Banana model accepts.
BASE_ASPECT_RATIOS: Final[tuple[str, ...]] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
#: The four extreme ratios of the Nano Banana 2 family.
EXTRA_ASPECT_RATIOS: Final[tuple[str, ...]] = ("1:4", "4:1", "1:8", "8:1")

#: Every `imageConfig.imageSize` value known so far, smallest first ("512" is 512 px). An
#: owner's profile may name others; they sort after these.
ALL_IMAGE_SIZES: Final[tuple[str, ...]] = ("512", "1K", "2K", "4K")

#: The whole inline request (prompt, images as base64, JSON) must stay under this.
INLINE_REQUEST_LIMIT: Final = 20 * 1024 * 1024

#: Statuses a lineup entry may have.
STATUSES: Final = ("ga", "preview", "deprecated", "retired")

#: Ids of today's models, for code that names one (tests, benchmarks, examples).
NANO_BANANA_2_1: Final = "gemini-nano-banana-2.1"
NANO_BANANA_2: Final = "gemini-3.1-flash-image"
NANO_BANANA_2_LITE: Final = "gemini-3.1-flash-lite-image"
NANO_BANANA_PRO: Final = "gemini-3-pro-image"
#: Nano Banana (2.5 Flash Image): deprecated; Google gave an earliest shutdown of 2026-10-02.
NANO_BANANA: Final = "gemini-2.5-flash-image"

_RATIO = re.compile(r"^[1-9][0-9]{0,2}:[1-9][0-9]{0,2}$")
_SIZE = re.compile(r"^[0-9]{1,5}K?$")
_LEVEL = re.compile(r"^[a-z]{1,20}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ProfileError(ValueError):
    """A profile (the lineup or an owner's file) is invalid; `str()` is one line."""


@dataclass(frozen=True)
class PriceFacts:
    """A model's list prices: USD per million tokens (prompt in; text and thinking out; image
    out), and the tokens one output image counts by size (the key None: a model without
    sizes)."""

    input_per_million: Decimal
    output_per_million: Decimal
    image_per_million: Decimal
    image_tokens: Mapping[str | None, int]
    #: USD per 1,000 Google Search queries a grounded answer ran (None: not priced).
    search_per_thousand: Decimal | None = None


@dataclass(frozen=True)
class ModelProfile:
    """What one model accepts, how it answers, and what Google said of its life.

    - `aspect_ratios`: values for `imageConfig.aspectRatio`.
    - `image_sizes`: values for `imageConfig.imageSize`; empty when the model has no size
      setting (sending one is refused); `default_size` is what it makes without one.
    - `max_reference_images`: images one request may carry (inputs plus earlier turns').
    - `thinking`: answers carry thought parts and `thoughtSignature`s, and an edit keeps
      context by sending the previous turn back (multi-turn editing).
    - `thinking_levels`: values of `thinkingConfig.thinkingLevel` it accepts (empty: none to
      choose); `default_thinking` is the model's own.
    - `status`, `released`, `shutdown` (`shutdown_earliest`: only an earliest date was
      announced), `successor`: the model's life as Google announced it.
    - `origin`: "lineup" (Google's, from lineup.toml), "owner" (NANOBANANA_MODEL_PROFILES) or
      "inferred" (an id we have never heard of, limits taken from its `family`).
    """

    model: str
    name: str
    aspect_ratios: tuple[str, ...] = BASE_ASPECT_RATIOS
    image_sizes: tuple[str, ...] = ()
    default_size: str | None = None
    max_reference_images: int = 3
    max_request_bytes: int = INLINE_REQUEST_LIMIT
    output_mime_type: str = "image/png"
    thinking: bool = False
    thinking_levels: tuple[str, ...] = ()
    default_thinking: str | None = None
    grounding: bool = False
    family: str = "legacy"
    status: str = "ga"
    released: date | None = None
    shutdown: date | None = None
    shutdown_earliest: bool = False
    successor: str | None = None
    input_token_limit: int | None = None
    price: PriceFacts | None = None
    sources: tuple[str, ...] = ()
    checked: date | None = None
    origin: str = "lineup"

    @property
    def known(self) -> bool:
        """Whether its limits come from a table (Google's or the owner's), not a guess."""
        return self.origin != "inferred"

    @property
    def has_sizes(self) -> bool:
        return bool(self.image_sizes)

    def label(self) -> str:
        """ "Nano Banana Pro (gemini-3-pro-image)"."""
        return f"{self.name} ({self.model})" if self.name != self.model else self.model

    def shut_down_by(self, today: date) -> bool:
        """Whether Google said it is shut down by `today` (an earliest date alone proves
        nothing: the model may still answer)."""
        if self.status == "retired":
            return True
        return self.shutdown is not None and not self.shutdown_earliest and self.shutdown <= today

    def without(self, *, sizes: Iterable[str] = (), ratios: Iterable[str] = ()) -> ModelProfile:
        """The profile less the sizes and ratios the API refused for it."""
        drop_sizes, drop_ratios = set(sizes), set(ratios)
        if not drop_sizes and not drop_ratios:
            return self
        kept_sizes = tuple(s for s in self.image_sizes if s not in drop_sizes)
        default = self.default_size if self.default_size in kept_sizes else None
        if default is None and kept_sizes:
            default = "1K" if "1K" in kept_sizes else kept_sizes[0]
        kept_ratios = tuple(r for r in self.aspect_ratios if r not in drop_ratios)
        return replace(
            self,
            image_sizes=kept_sizes,
            default_size=default,
            aspect_ratios=kept_ratios or ("1:1",),
        )


@dataclass(frozen=True)
class Family:
    """What an unknown id whose name matches `pattern` is assumed to accept."""

    name: str
    pattern: re.Pattern[str]
    template: ModelProfile
    price_like: str | None = None


@dataclass(frozen=True)
class Lineup:
    """Google's models as this release knows them, plus the owner's profiles: `profile(id)`
    for any id (known, or inferred from its family), `successor_of(id)` through the chain,
    and the preference order of `NANOBANANA_MODEL=auto`."""

    profiles: Mapping[str, ModelProfile]
    preference: tuple[str, ...]
    families: tuple[Family, ...]
    checked: date | None = None
    owner_file: str | None = None
    _inferred: dict[str, ModelProfile] = field(default_factory=dict, compare=False, repr=False)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and normalise(model) in self.profiles

    def profile(self, model: str) -> ModelProfile:
        """The profile of `model`: the table's, else one inferred from the family its id
        suggests (marked `origin="inferred"`)."""
        model = normalise(model)
        found = self.profiles.get(model)
        if found is not None:
            return found
        cached = self._inferred.get(model)
        if cached is None:
            cached = self._infer(model)
            if len(self._inferred) < 1000:  # ids come from config and the API: few
                self._inferred[model] = cached
        return cached

    def _infer(self, model: str) -> ModelProfile:
        family = self.family_of(model)
        price = None
        if family.price_like is not None and family.price_like in self.profiles:
            price = self.profiles[family.price_like].price
        return replace(family.template, model=model, name=model, origin="inferred", price=price)

    def family_of(self, model: str) -> Family:
        for family in self.families:
            if family.pattern.search(model):
                return family
        return self.families[-1]

    def successor_of(self, model: str) -> str | None:
        """The end of `model`'s successor chain (a retired preview -> its GA model -> ...),
        or None when it names none. Cycles stop where they would repeat."""
        seen = {normalise(model)}
        current = self.profiles.get(normalise(model))
        found: str | None = None
        while current is not None and current.successor and current.successor not in seen:
            found = current.successor
            seen.add(found)
            current = self.profiles.get(found)
        return found

    def successors(self, model: str) -> list[str]:
        """Every model of `model`'s successor chain, nearest first."""
        chain: list[str] = []
        seen = {normalise(model)}
        current = self.profiles.get(normalise(model))
        while current is not None and current.successor and current.successor not in seen:
            chain.append(current.successor)
            seen.add(current.successor)
            current = self.profiles.get(current.successor)
        return chain

    def with_owner_profiles(self, path: Path) -> Lineup:
        """This lineup with the entries of an owner's TOML or JSON file (ProfileError, one
        line, naming the file and the entry, if it is invalid)."""
        document = _read_document(path)
        raw_models = document.get("model", document.get("models"))
        if not isinstance(raw_models, list) or not raw_models:
            raise ProfileError(f"{path}: no [[model]] entries (see README, Models)")
        profiles = dict(self.profiles)
        for index, raw in enumerate(raw_models, 1):
            where = f"{path}: model {index}"
            if not isinstance(raw, dict):
                raise ProfileError(f"{where}: must be a table of fields")
            model_id = raw.get("id")
            if isinstance(model_id, str):
                where += f" ({model_id})"
            base = profiles.get(normalise(model_id)) if isinstance(model_id, str) else None
            if base is None and isinstance(model_id, str):
                base = self.profile(model_id)
            try:
                profile = _profile_from(raw, base=base, origin="owner", families=self.families)
            except ProfileError as error:
                raise ProfileError(f"{where}: {error}") from None
            profiles[profile.model] = profile
        preference = document.get("preference")
        order = self.preference
        if preference is not None:
            if not isinstance(preference, list) or not all(
                isinstance(item, str) and _ID.match(item) for item in preference
            ):
                raise ProfileError(f"{path}: preference must be a list of model ids")
            order = tuple(normalise(item) for item in preference)
        return Lineup(
            profiles=profiles,
            preference=order,
            families=self.families,
            checked=self.checked,
            owner_file=str(path),
        )


def normalise(model: str) -> str:
    """A model id as the API's paths take it: no `models/` prefix, no spaces."""
    return model.strip().removeprefix("models/")


# --------------------------------------------------------------------------------------------
# Reading the data
# --------------------------------------------------------------------------------------------


def _read_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ProfileError(f"{path}: not valid {_kind(path)} ({first})") from None
    if not isinstance(document, dict):
        raise ProfileError(f"{path}: must hold [[model]] entries")
    return document


def _kind(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "TOML"


_FIELDS: Final = frozenset(
    {
        "id", "name", "family", "status", "released", "shutdown", "shutdown_earliest",
        "successor", "sizes", "default_size", "ratios", "max_reference_images", "thinking",
        "thinking_levels", "default_thinking", "grounding", "output_mime_type",
        "input_token_limit", "price", "sources", "checked", "max_request_bytes",
    }
)  # fmt: skip


def _profile_from(
    raw: Mapping[str, Any],
    *,
    base: ModelProfile | None,
    origin: str,
    families: Sequence[Family] = (),
) -> ModelProfile:
    """One [[model]] entry as a profile; fields it leaves out come from `base` (the entry it
    overrides, or its family's template)."""
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ProfileError(f"unknown field {unknown[0]!r}")
    model = _text(raw, "id", required=True)
    assert model is not None
    model = normalise(model)
    if not _ID.match(model):
        raise ProfileError(f"id {model!r} is not a model id")
    family_name = _text(raw, "family")
    if family_name is not None:
        family = next((f for f in families if f.name == family_name), None)
        if family is None and families:
            names = ", ".join(f.name for f in families)
            raise ProfileError(f"family must be one of {names}, not {family_name!r}")
        if family is not None and (base is None or base.origin == "inferred"):
            base = replace(family.template, model=model, name=model)
    if base is None:
        base = ModelProfile(model=model, name=model)
    sizes = _strings(raw, "sizes", _SIZE, "a size like 1K")
    image_sizes = _sort_sizes(sizes) if sizes is not None else base.image_sizes
    default_size = _text(raw, "default_size")
    if default_size is None:
        default_size = base.default_size if base.default_size in image_sizes else None
        if default_size is None and image_sizes:
            default_size = "1K" if "1K" in image_sizes else image_sizes[0]
    elif default_size not in image_sizes:
        raise ProfileError(f"default_size {default_size!r} is not one of its sizes")
    ratios = _strings(raw, "ratios", _RATIO, "a ratio like 16:9")
    if ratios is not None and not ratios:
        raise ProfileError("ratios must name at least one ratio")
    levels = _strings(raw, "thinking_levels", _LEVEL, "a level like high")
    thinking_levels = tuple(levels) if levels is not None else base.thinking_levels
    default_thinking = _text(raw, "default_thinking")
    if default_thinking is None:
        kept = base.default_thinking in thinking_levels
        default_thinking = base.default_thinking if kept else None
    elif default_thinking not in thinking_levels:
        raise ProfileError(f"default_thinking {default_thinking!r} is not one of its levels")
    status = _text(raw, "status") or base.status
    if status not in STATUSES:
        raise ProfileError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    references = _integer(raw, "max_reference_images", 0, 100)
    request_bytes = _integer(raw, "max_request_bytes", 1024 * 1024, 1024 * 1024 * 1024)
    token_limit = _integer(raw, "input_token_limit", 1, 100_000_000)
    mime = _text(raw, "output_mime_type") or base.output_mime_type
    if mime not in ("image/png", "image/jpeg", "image/webp"):
        raise ProfileError("output_mime_type must be image/png, image/jpeg or image/webp")
    successor = _text(raw, "successor")
    if successor is not None and not _ID.match(successor):
        raise ProfileError(f"successor {successor!r} is not a model id")
    sources = _strings(raw, "sources", None, "a text")
    return ModelProfile(
        model=model,
        name=_text(raw, "name") or (base.name if base.model == model else model),
        aspect_ratios=tuple(ratios) if ratios is not None else base.aspect_ratios,
        image_sizes=image_sizes,
        default_size=default_size,
        max_reference_images=references if references is not None else base.max_reference_images,
        max_request_bytes=request_bytes if request_bytes is not None else base.max_request_bytes,
        output_mime_type=mime,
        thinking=_flag(raw, "thinking", base.thinking),
        thinking_levels=thinking_levels,
        default_thinking=default_thinking,
        grounding=_flag(raw, "grounding", base.grounding),
        family=family_name or base.family,
        status=status,
        released=_date(raw, "released", base.released),
        shutdown=_date(raw, "shutdown", base.shutdown),
        shutdown_earliest=_flag(raw, "shutdown_earliest", base.shutdown_earliest),
        successor=normalise(successor) if successor else base.successor,
        input_token_limit=token_limit if token_limit is not None else base.input_token_limit,
        price=_price(raw["price"]) if "price" in raw else base.price,
        sources=tuple(sources) if sources is not None else base.sources,
        checked=_date(raw, "checked", base.checked),
        origin=origin,
    )


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise ProfileError(f"{name} is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(f"{name} must be a non-empty text")
    return value.strip()


def _strings(
    raw: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None, what: str
) -> list[str] | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProfileError(f"{name} must be a list")
    items: list[str] = []
    for item in value:
        if not isinstance(item, str) or (pattern is not None and not pattern.match(item)):
            raise ProfileError(f"{name}: {item!r} is not {what}")
        if item not in items:
            items.append(item)
    return items


def _integer(raw: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProfileError(f"{name} must be a whole number from {low} to {high}")
    return value


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ProfileError(f"{name} must be true or false")
    return value


def _date(raw: Mapping[str, Any], name: str, default: date | None) -> date | None:
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ProfileError(f"{name} must be a date like 2026-12-07")


def _price(raw: Any) -> PriceFacts:
    if not isinstance(raw, dict):
        raise ProfileError("price must be a table (input, output, image, image_tokens)")
    amounts: dict[str, Decimal] = {}
    for key in ("input", "output", "image"):
        value = raw.get(key)
        try:
            amount = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise ProfileError(f"price.{key} must be dollars per million tokens") from None
        if value is None or isinstance(value, bool) or not amount.is_finite() or amount < 0:
            raise ProfileError(f"price.{key} must be dollars per million tokens")
        amounts[key] = amount
    tokens = raw.get("image_tokens")
    if not isinstance(tokens, dict) or not tokens:
        raise ProfileError("price.image_tokens must map sizes to tokens")
    image_tokens: dict[str | None, int] = {}
    for size, count in tokens.items():
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
            raise ProfileError(f"price.image_tokens[{size!r}] must be a whole number of tokens")
        image_tokens[size or None] = count
    search = None
    if raw.get("search") is not None:
        try:
            search = Decimal(str(raw["search"]))
        except (InvalidOperation, ValueError):
            raise ProfileError("price.search must be dollars per 1,000 search queries") from None
        if isinstance(raw["search"], bool) or not search.is_finite() or search < 0:
            raise ProfileError("price.search must be dollars per 1,000 search queries")
    return PriceFacts(amounts["input"], amounts["output"], amounts["image"], image_tokens, search)


def _sort_sizes(sizes: Iterable[str]) -> tuple[str, ...]:
    def order(size: str) -> tuple[int, float]:
        if size in ALL_IMAGE_SIZES:
            return (0, ALL_IMAGE_SIZES.index(size))
        number = float(size.rstrip("K") or 0) * (1024 if size.endswith("K") else 1)
        return (1, number)

    return tuple(sorted(dict.fromkeys(sizes), key=order))


def _families(raw: Any) -> tuple[Family, ...]:
    if not isinstance(raw, list) or not raw:
        raise ProfileError("lineup: no [[family]] entries")
    families = []
    for entry in raw:
        name = entry["name"]
        template = _profile_from(
            {k: v for k, v in entry.items() if k not in ("name", "pattern", "price_like")}
            | {"id": f"family-{name}"},
            base=None,
            origin="inferred",
        )
        families.append(
            Family(
                name=name,
                pattern=re.compile(entry["pattern"]),
                template=replace(template, family=name),
                price_like=entry.get("price_like"),
            )
        )
    return tuple(families)


def load_lineup(text: str | None = None) -> Lineup:
    """Google's lineup from `lineup.toml` (packaged beside this module), or from `text`."""
    if text is None:
        text = resources.files("bot.nanobanana").joinpath("lineup.toml").read_text("utf-8")
    document = tomllib.loads(text)
    families = _families(document.get("family"))
    profiles: dict[str, ModelProfile] = {}
    for raw in document.get("model", []):
        family = next(f for f in families if f.name == raw.get("family", "legacy"))
        base = replace(family.template, model=normalise(raw["id"]), name=raw["id"])
        profile = _profile_from(raw, base=base, origin="lineup", families=families)
        profiles[profile.model] = profile
    # A retired entry without prices is priced like its successor (what replaces it).
    lineup = Lineup(profiles=profiles, preference=(), families=families)
    for model, profile in list(profiles.items()):
        if profile.price is None:
            for successor in lineup.successors(model):
                found = profiles.get(successor)
                if found is not None and found.price is not None:
                    profiles[model] = replace(profile, price=found.price)
                    break
    checked = document.get("checked")
    return Lineup(
        profiles=profiles,
        preference=tuple(normalise(m) for m in document.get("preference", [])),
        families=families,
        checked=date.fromisoformat(checked) if isinstance(checked, str) else checked,
    )


#: Google's lineup as this release knows it.
LINEUP: Final = load_lineup()
#: The table's profiles by id (retired ones included), for code that reads one directly.
PROFILES: Final[Mapping[str, ModelProfile]] = LINEUP.profiles


def profile_for(model: str) -> ModelProfile:
    """The profile of `model` in Google's lineup; an id we have never heard of gets the
    limits of the family its name suggests (marked `origin="inferred"`)."""
    return LINEUP.profile(model)


def ratio_value(ratio: str) -> float:
    """ "16:9" -> 1.777...; ValueError for anything else."""
    across, _, down = ratio.partition(":")
    width, height = float(across), float(down)
    if not (width > 0 and height > 0 and math.isfinite(width / height)):
        raise ValueError(f"not a ratio: {ratio!r}")
    return width / height


def nearest_ratio(width: int, height: int, ratios: Iterable[str]) -> str | None:
    """The supported ratio closest to a width×height shape (by log distance, so 2:1 and 1:2
    are equally far from 1:1), or None when there is no shape or no ratio."""
    if width <= 0 or height <= 0:
        return None
    target = math.log(width / height)
    best: tuple[float, str] | None = None
    for ratio in ratios:
        distance = abs(math.log(ratio_value(ratio)) - target)
        if best is None or distance < best[0]:
            best = (distance, ratio)
    return best[1] if best else None


def union_ratios(profiles: Iterable[ModelProfile]) -> tuple[str, ...]:
    """Every ratio any of `profiles` accepts, the base ones first, in a stable order."""
    seen: dict[str, None] = {}
    for profile in profiles:
        for ratio in profile.aspect_ratios:
            seen.setdefault(ratio, None)
    return tuple(seen)


def union_sizes(profiles: Iterable[ModelProfile]) -> tuple[str, ...]:
    """Every size any of `profiles` accepts, smallest first."""
    return _sort_sizes(size for profile in profiles for size in profile.image_sizes)
