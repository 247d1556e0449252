"""The models members may use right now, their sizes, ratios and thinking levels, and what
each costs: a snapshot, rebuilt whenever the deployment learns something about the models.

`resolve` builds one from the owner's settings (`NANOBANANA_MODEL`, which may be `auto`,
`NANOBANANA_MODELS`, `GENERATION_COST(S)`, `NANOBANANA_THINKING`), the lineup (Google's
profiles plus the owner's file) and what the deployment knows of which models exist (the API's
models list, 404s, refused settings: `Availability`). `/generate` is checked against the chosen
model before any coin moves, and the Discord adapter learns its options from here (it never
imports the client).

How a model is chosen (README "Models, sizes and costs"):
- `auto`: the first model of the lineup's preference order that the key can use (listed by the
  API, not retired by a 404, not shut down by Google's announced date); with none of those, the
  first image model the API lists that the lineup doesn't know.
- an id pins that model. If Google has shut it down (the lineup says so) the bot uses its
  successor and says so loudly; if it is gone otherwise (a 404, missing from the models list),
  requests for it are refused, free, until the owner changes the setting.
- Coins and prices set for a model that something replaces apply to its replacement unless
  set for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from bot.nanobanana.profiles import (
    LINEUP,
    Lineup,
    ModelProfile,
    normalise,
    union_ratios,
    union_sizes,
)
from bot.services.errors import InvalidInput

#: Why a model can't be used.
RETIRED = "retired"  # answered 404 NOT_FOUND (for the whole deployment)
SHUT_DOWN = "shut_down"  # Google announced its shutdown, and the date has passed
MISSING = "missing"  # the API's models list doesn't have it (for this key)


@dataclass(frozen=True)
class Availability:
    """What the deployment knows of which models exist, as of `today`.

    `listed`: the image models of the last models list (None: never listed, or the API has no
    list, e.g. behind a proxy: then only the lineup's dates and 404s count); `retired`: models
    that answered 404, with why; `refused`: settings the API refused per model ("sizes",
    "ratios", "thinking")."""

    today: date
    listed: frozenset[str] | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    retired: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def gone(self, profile: ModelProfile) -> str | None:
        """Why `profile`'s model can't be used now (RETIRED, SHUT_DOWN, MISSING), or None."""
        if profile.model in self.retired:
            return RETIRED
        if profile.shut_down_by(self.today):
            return SHUT_DOWN
        if self.listed is not None and profile.model not in self.listed:
            return MISSING
        return None

    def fitted(self, profile: ModelProfile) -> ModelProfile:
        """`profile` less what the API refused for it."""
        refused = self.refused.get(profile.model)
        if not refused:
            return profile
        profile = profile.without(sizes=refused.get("sizes", ()), ratios=refused.get("ratios", ()))
        levels = refused.get("thinking", ())
        if levels:
            kept = tuple(level for level in profile.thinking_levels if level not in levels)
            default = profile.default_thinking if profile.default_thinking in kept else None
            profile = replace(profile, thinking_levels=kept, default_thinking=default)
        return profile


@dataclass(frozen=True)
class Replacement:
    """A configured model the bot can't use, and what it uses instead (None: nothing; its
    requests are refused)."""

    configured: str
    used: str | None
    why: str
    shutdown: date | None = None
    successor: str | None = None


@dataclass(frozen=True)
class Choice:
    """One option value to offer a member, with a label (e.g. "4K · 300 coins")."""

    value: str
    label: str


class ModelCatalog:
    """The offered models (the default first), with ratio, size, thinking and cost rules.

    `default_model` None: no model can be used (every request is refused, free);
    `unavailable`: configured models that can't be used, by id, with why (a member naming
    one is told, free); `aliases`: for a model used in place of others, those others (their
    coins and prices apply to it unless set for it)."""

    def __init__(
        self,
        default_model: str | None,
        models: Sequence[str] = (),
        *,
        default_cost: int,
        costs: Mapping[str, int] | None = None,
        lineup: Lineup = LINEUP,
        availability: Availability | None = None,
        unavailable: Mapping[str, str] | None = None,
        replacements: Sequence[Replacement] = (),
        aliases: Mapping[str, Sequence[str]] | None = None,
        thinking: Mapping[str, str] | None = None,
        auto: bool = False,
    ) -> None:
        self.lineup = lineup
        self.availability = availability
        fit = availability.fitted if availability is not None else (lambda p: p)
        names = [normalise(m) for m in ([default_model] if default_model else []) + list(models)]
        self.profiles: dict[str, ModelProfile] = {
            name: fit(lineup.profile(name)) for name in dict.fromkeys(names)
        }
        self.default_model: str | None = normalise(default_model) if default_model else None
        self.default_cost = default_cost
        self.costs = dict(costs or {})
        self.unavailable = dict(unavailable or {})
        self.replacements = tuple(replacements)
        self.aliases = {model: tuple(old) for model, old in (aliases or {}).items()}
        self.thinking_settings = dict(thinking or {})
        #: Whether the owner lets the bot choose (NANOBANANA_MODEL=auto).
        self.auto = auto

    # What to offer ------------------------------------------------------------------------

    def name_of(self, model: str | None) -> str:
        """A model's name as members know it ("Nano Banana Pro"), from the owner's profiles
        and Google's lineup, never its API id; "?" when there is none."""
        if not model:
            return "?"
        return self.lineup.profile(model).name

    @property
    def offered(self) -> list[ModelProfile]:
        return list(self.profiles.values())

    @property
    def usable(self) -> bool:
        """Whether any model can be used at all."""
        return self.default_model is not None

    @property
    def default(self) -> ModelProfile:
        """The default model's profile (the lineup's first preference when none is usable,
        so that messages can still name something)."""
        if self.default_model is None:
            return self.lineup.profile(self.lineup.preference[0] if self.lineup.preference
                                       else "gemini")  # fmt: skip
        return self.profiles[self.default_model]

    @property
    def model_option(self) -> bool:
        """Whether members get a choice of model (more than one is offered)."""
        return len(self.profiles) > 1

    @property
    def size_option(self) -> bool:
        """Whether members get a choice of size (some offered model has more than one)."""
        return any(len(profile.image_sizes) > 1 for profile in self.offered)

    @property
    def ratios(self) -> tuple[str, ...]:
        """Every ratio some offered model accepts (each model is checked on its own)."""
        return union_ratios(self.offered)

    @property
    def sizes(self) -> tuple[str, ...]:
        return union_sizes(self.offered)

    def models(self) -> list[Choice]:
        """One choice per model: its name and what it costs (from, when sizes differ)."""
        choices = []
        for profile in self.offered:
            costs = sorted({self.cost(profile.model, size) for size in profile.image_sizes})
            cheapest = costs[0] if costs else self.cost(profile.model, None)
            price = f"{cheapest} coins" if len(costs) <= 1 else f"from {cheapest} coins"
            choices.append(Choice(profile.model, f"{profile.name} · {price}"[:100]))
        return choices

    def size_labels(self, model: str | None = None) -> list[Choice]:
        """One choice per size (of `model` when given and offered); labelled with its cost
        when one model is concerned."""
        chosen = self.profiles.get(normalise(model)) if model else None
        single = chosen or (self.default if not self.model_option and self.usable else None)
        sizes = chosen.image_sizes if chosen is not None else self.sizes
        choices = []
        for size in sizes:
            label = size if size != "512" else "512 px"
            if single is not None:
                label += f" · {self.cost(single.model, size)} coins"
            choices.append(Choice(size, label))
        return choices

    # Checking a request -------------------------------------------------------------------

    def profile(self, model: str | None) -> ModelProfile:
        """The offered model named `model` (the default when None). A model that is gone
        (retired, shut down, not offered to this key) is refused with a message saying the
        owner has been told, before any coin moves."""
        if model is None or not model.strip():
            if self.default_model is None:
                raise InvalidInput("model.none_usable")
            return self.profiles[self.default_model]
        name = normalise(model)
        found = self.profiles.get(name)
        if found is not None:
            return found
        for replacement in self.replacements:
            if replacement.configured == name and replacement.used in self.profiles:
                return self.profiles[replacement.used]
        if name in self.unavailable:
            raise InvalidInput("model.retired", model=self.lineup.profile(name).name[:80])
        raise InvalidInput(
            "model.unsupported",
            model=model[:80],
            choices=", ".join(p.name for p in self.offered) or "-",
        )

    def gone(self, model: str) -> bool:
        """Whether `model` is known to be unusable now (a job for it must not call the API)."""
        name = normalise(model)
        if name in self.profiles:
            return False
        if name in self.unavailable:
            return True
        availability = self.availability
        return availability is not None and availability.gone(self.lineup.profile(name)) is not None

    def ratio(self, profile: ModelProfile, ratio: str) -> str:
        if ratio not in profile.aspect_ratios:
            raise InvalidInput(
                # Name the model only when members choose one.
                "aspect.unsupported_model" if self.model_option else "aspect.unsupported",
                ratio=ratio[:20],
                model=profile.name,
                choices=", ".join(profile.aspect_ratios),
            )
        return ratio

    def size(self, profile: ModelProfile, size: str | None) -> str | None:
        """The size to ask for: the member's, else the model's default (None: no sizes)."""
        if size is None or not size.strip():
            return profile.default_size
        if not profile.has_sizes:
            raise InvalidInput("size.not_supported", model=profile.name)
        if size not in profile.image_sizes:
            raise InvalidInput(
                "size.unsupported",
                size=size[:20],
                model=profile.name,
                choices=", ".join(profile.image_sizes),
            )
        return size

    def check_images(self, profile: ModelProfile, count: int) -> None:
        if count > profile.max_reference_images:
            raise InvalidInput(
                "images.too_many", count=count, model=profile.name,
                limit=profile.max_reference_images,
            )  # fmt: skip

    def thinking_level(self, profile: ModelProfile) -> str | None:
        """The thinking level to send for `profile` (NANOBANANA_THINKING, for it, for a model
        it replaced, or for every model), or None to leave the model's own default."""
        for key in (profile.model, *self.aliases.get(profile.model, ()), "*"):
            level = self.thinking_settings.get(key)
            if level is not None:
                return level if level in profile.thinking_levels else None
        return None

    def cost(self, model: str, size: str | None, *, default: int | None = None) -> int:
        """Coins for one image: `model:size`, else `model` (or the same for a model it
        replaced), else `default` (a server's own price, from /settings) or
        `GENERATION_COST`."""
        for name in (model, *self.aliases.get(model, ())):
            if size is not None and f"{name}:{size}" in self.costs:
                return self.costs[f"{name}:{size}"]
            if name in self.costs:
                return self.costs[name]
        return self.default_cost if default is None else default

    def describe(self) -> list[str]:
        """One line per offered model, for `python -m bot check` and the logs."""
        lines = []
        for profile in self.offered:
            if profile.model == self.default_model:
                role = "default, chosen by auto" if self.auto else "default"
            else:
                role = "choice"
            if profile.has_sizes:
                sizes = ", ".join(f"{s}={self.cost(profile.model, s)}" for s in profile.image_sizes)
                price = f"sizes {sizes} coins (default {profile.default_size})"
            else:
                price = f"no sizes, {self.cost(profile.model, None)} coins"
            thinking = self.thinking_level(profile) or profile.default_thinking
            extra = f"; thinking {thinking}" if thinking else ""
            known = (
                ""
                if profile.known
                else f" [not in our table: {profile.family} family's limits assumed]"
            )
            lines.append(
                f"{profile.model} ({profile.name}, {role}): {price}; "
                f"{len(profile.aspect_ratios)} ratios, up to "
                f"{profile.max_reference_images} reference images{extra}{known}"
            )
        return lines


@dataclass(frozen=True)
class ModelSettings:
    """The owner's settings about models (from Settings)."""

    model: str = "auto"
    extras: tuple[str, ...] = ()
    default_cost: int = 100
    costs: Mapping[str, int] = field(default_factory=dict)
    thinking: Mapping[str, str] = field(default_factory=dict)

    @property
    def auto(self) -> bool:
        return self.model == "auto"


def resolve(settings: ModelSettings, lineup: Lineup, availability: Availability) -> ModelCatalog:
    """The catalog these settings give with what the deployment knows now (see the module's
    docstring for the rules)."""
    unavailable: dict[str, str] = {}
    replacements: list[Replacement] = []
    aliases: dict[str, list[str]] = {}

    def usable(model: str) -> bool:
        return availability.gone(lineup.profile(model)) is None

    def follow(model: str) -> str | None:
        """`model`, or the successor that replaces it; None when nothing can."""
        profile = lineup.profile(model)
        why = availability.gone(profile)
        if why is None:
            return model
        used = None
        if why == SHUT_DOWN:
            used = next((s for s in lineup.successors(model) if usable(s)), None)
        replacements.append(
            Replacement(model, used, why, profile.shutdown, lineup.successor_of(model))
        )
        if used is None:
            unavailable[model] = why
        else:
            aliases.setdefault(used, []).append(model)
        return used

    default: str | None
    if settings.auto:
        candidates = list(lineup.preference)
        if availability.listed is not None:
            candidates += sorted(m for m in availability.listed if m not in lineup)
        default = next((m for m in candidates if usable(m)), None)
        if default is not None:
            # Coins set for preferred models that are gone apply to the one chosen.
            earlier = candidates[: candidates.index(default)]
            if earlier:
                aliases.setdefault(default, []).extend(earlier)
    else:
        default = follow(normalise(settings.model))
    offered: list[str] = []
    for model in [default, *(follow(normalise(m)) for m in settings.extras)]:
        if model is not None and model not in offered:
            offered.append(model)
    return ModelCatalog(
        default,
        offered,
        default_cost=settings.default_cost,
        costs=settings.costs,
        lineup=lineup,
        availability=availability,
        unavailable=unavailable,
        replacements=replacements,
        aliases=aliases,
        thinking=settings.thinking,
        auto=settings.auto,
    )


def possible_models(settings: ModelSettings, lineup: Lineup) -> list[ModelProfile]:
    """Every model these settings could ever offer (whatever the API says), for the shape
    of the `/generate` command (its options are synced once, not at every change)."""
    names: list[str] = []
    roots: Iterable[str] = (
        [*lineup.preference, *settings.extras] if settings.auto
        else [settings.model, *settings.extras]
    )  # fmt: skip
    for model in roots:
        for name in (normalise(model), *lineup.successors(model)):
            if name not in names:
                names.append(name)
    return [lineup.profile(name) for name in names]


def possible_ratios(settings: ModelSettings, lineup: Lineup) -> tuple[str, ...]:
    """Every ratio a model these settings could offer takes (the `/generate` choices)."""
    return union_ratios(possible_models(settings, lineup))


def possible_references(settings: ModelSettings, lineup: Lineup) -> int:
    """The most reference images a model these settings could offer takes (how many image
    options `/generate` needs)."""
    return max((p.max_reference_images for p in possible_models(settings, lineup)), default=0)


def possible_sizes(settings: ModelSettings, lineup: Lineup) -> bool:
    """Whether a model these settings could offer has more than one size."""
    return any(len(profile.image_sizes) > 1 for profile in possible_models(settings, lineup))
