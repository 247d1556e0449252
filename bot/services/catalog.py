"""The models members may use, their sizes and ratios, and what each costs.

Built from the settings (`NANOBANANA_MODEL`, `NANOBANANA_MODELS`, `GENERATION_COST`,
`GENERATION_COSTS`) and the client's model profiles, so `/generate` is checked against the
chosen model before any coin moves, and the Discord adapter learns its options from here
(it never imports the client).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.nanobanana.profiles import ModelProfile, profile_for, union_ratios, union_sizes
from bot.services.errors import InvalidInput


@dataclass(frozen=True)
class Choice:
    """One option value to offer a member, with a label (e.g. "4K · 300 coins")."""

    value: str
    label: str


class ModelCatalog:
    """The offered models (the default first), with ratio, size and cost rules."""

    def __init__(
        self,
        default_model: str,
        models: Sequence[str] = (),
        *,
        default_cost: int,
        costs: Mapping[str, int] | None = None,
    ) -> None:
        names = list(dict.fromkeys([default_model, *models]))
        self.profiles: dict[str, ModelProfile] = {name: profile_for(name) for name in names}
        self.default_model = self.profiles[default_model].model
        self.default_cost = default_cost
        self.costs = dict(costs or {})

    # What to offer ------------------------------------------------------------------------

    @property
    def offered(self) -> list[ModelProfile]:
        return list(self.profiles.values())

    @property
    def default(self) -> ModelProfile:
        return self.profiles[self.default_model]

    @property
    def model_option(self) -> bool:
        """Whether members get a choice of model (more than one is offered)."""
        return len(self.profiles) > 1

    @property
    def size_option(self) -> bool:
        """Whether members get a choice of size (some offered model has sizes)."""
        return any(profile.has_sizes for profile in self.offered)

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

    def size_labels(self) -> list[Choice]:
        """One choice per size; with a single model, labelled with its cost."""
        single = self.default if not self.model_option else None
        choices = []
        for size in self.sizes:
            label = size if size != "512" else "512 px"
            if single is not None:
                label += f" · {self.cost(single.model, size)} coins"
            choices.append(Choice(size, label))
        return choices

    # Checking a request -------------------------------------------------------------------

    def profile(self, model: str | None) -> ModelProfile:
        """The offered model named `model` (the default when None)."""
        if model is None or not model.strip():
            return self.default
        found = self.profiles.get(model.strip().removeprefix("models/"))
        if found is None:
            raise InvalidInput(
                "model.unsupported",
                model=model[:80],
                choices=", ".join(p.name for p in self.offered),
            )
        return found

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

    def cost(self, model: str, size: str | None, *, default: int | None = None) -> int:
        """Coins for one image: `model:size`, else `model`, else `default` (a server's own
        price, from /settings) or `GENERATION_COST`."""
        if size is not None and f"{model}:{size}" in self.costs:
            return self.costs[f"{model}:{size}"]
        return self.costs.get(model, self.default_cost if default is None else default)

    def describe(self) -> list[str]:
        """One line per offered model, for `python -m bot check` and the logs."""
        lines = []
        for profile in self.offered:
            role = "default" if profile.model == self.default_model else "choice"
            if profile.has_sizes:
                sizes = ", ".join(f"{s}={self.cost(profile.model, s)}" for s in profile.image_sizes)
                price = f"sizes {sizes} coins (default {profile.default_size})"
            else:
                price = f"no sizes, {self.cost(profile.model, None)} coins"
            known = "" if profile.known else " [unknown model: Nano Banana's limits assumed]"
            lines.append(
                f"{profile.model} ({profile.name}, {role}): {price}; "
                f"{len(profile.aspect_ratios)} ratios, up to "
                f"{profile.max_reference_images} reference images{known}"
            )
        return lines
