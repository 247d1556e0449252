"""How the catalog chooses models from the settings, the lineup and what the deployment
knows of which models exist (pure: no database, no API)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bot.nanobanana.profiles import (
    LINEUP,
    NANO_BANANA,
    NANO_BANANA_2,
    NANO_BANANA_2_1,
    NANO_BANANA_2_LITE,
    NANO_BANANA_PRO,
)
from bot.services.catalog import (
    MISSING,
    RETIRED,
    SHUT_DOWN,
    Availability,
    ModelSettings,
    possible_models,
    resolve,
)
from bot.services.errors import InvalidInput
from bot.services.pricing import PriceTable

TODAY = date(2026, 12, 7)
LISTED = frozenset({NANO_BANANA_2_1, NANO_BANANA_2, NANO_BANANA_2_LITE, NANO_BANANA_PRO})


def known(listed: frozenset[str] | None = LISTED, **changes: object) -> Availability:
    return Availability(today=TODAY, listed=listed, **changes)  # type: ignore[arg-type]


def test_auto_takes_the_first_preferred_model_the_key_can_use() -> None:
    catalog = resolve(ModelSettings(), LINEUP, known())
    assert catalog.auto and catalog.default_model == NANO_BANANA_2_1
    assert catalog.profile(None).model == NANO_BANANA_2_1 and not catalog.model_option
    # Never listed (no key yet, or no list behind a proxy): the lineup's dates decide.
    assert resolve(ModelSettings(), LINEUP, known(None)).default_model == NANO_BANANA_2_1


def test_auto_moves_on_when_the_preferred_model_is_retired_or_missing() -> None:
    retired = resolve(ModelSettings(), LINEUP, known(retired={NANO_BANANA_2_1: "404"}))
    assert retired.default_model == NANO_BANANA_2
    missing = resolve(ModelSettings(), LINEUP, known(LISTED - {NANO_BANANA_2_1, NANO_BANANA_2}))
    assert missing.default_model == NANO_BANANA_2_LITE
    # Coins set for the models it passed over apply to the one it took.
    priced = resolve(
        ModelSettings(costs={NANO_BANANA_2_1: 60, f"{NANO_BANANA_2_1}:4K": 200}),
        LINEUP,
        known(retired={NANO_BANANA_2_1: "404"}),
    )
    assert priced.cost(NANO_BANANA_2, "1K") == 60 and priced.cost(NANO_BANANA_2, "4K") == 200
    assert priced.cost(NANO_BANANA_2, "512") == 60


def test_auto_takes_a_listed_model_we_have_never_heard_of_when_nothing_else_exists() -> None:
    catalog = resolve(ModelSettings(), LINEUP, known(frozenset({"gemini-5-flash-image"})))
    assert catalog.default_model == "gemini-5-flash-image"
    assert catalog.default.origin == "inferred" and catalog.default.family == "flash"


def test_auto_with_no_usable_model_refuses_free() -> None:
    catalog = resolve(ModelSettings(), LINEUP, known(frozenset()))
    assert not catalog.usable
    with pytest.raises(InvalidInput) as caught:
        catalog.profile(None)
    assert caught.value.key == "model.none_usable"


def test_a_retired_preview_id_keeps_working_on_its_successor() -> None:
    settings = ModelSettings(
        model="gemini-3-pro-image-preview",
        costs={"gemini-3-pro-image-preview": 150, "gemini-3-pro-image-preview:4K": 300},
    )
    catalog = resolve(settings, LINEUP, known())
    assert catalog.default_model == NANO_BANANA_PRO and not catalog.auto
    [replacement] = catalog.replacements
    assert replacement.configured == "gemini-3-pro-image-preview"
    assert replacement.used == NANO_BANANA_PRO and replacement.why == SHUT_DOWN
    assert replacement.shutdown == date(2026, 6, 25)
    # Prices set for the old id apply to the successor unless set for it.
    assert catalog.cost(NANO_BANANA_PRO, "1K") == 150 and catalog.cost(NANO_BANANA_PRO, "4K") == 300
    assert catalog.profile("gemini-3-pro-image-preview").model == NANO_BANANA_PRO
    own = resolve(
        ModelSettings(model="gemini-3-pro-image-preview",
                      costs={"gemini-3-pro-image-preview": 150, NANO_BANANA_PRO: 120}),
        LINEUP, known(),
    )  # fmt: skip
    assert own.cost(NANO_BANANA_PRO, "1K") == 120
    prices = PriceTable(
        image_prices={"gemini-3-pro-image-preview:4K": Decimal("0.5")},
        aliases=catalog.aliases,
    )
    assert prices.image_micros(NANO_BANANA_PRO, "4K") == 500_000


def test_a_pinned_model_that_is_gone_is_refused_free_naming_its_successor() -> None:
    for availability, why in (
        (known(retired={NANO_BANANA_2: "404"}), RETIRED),
        (known(LISTED - {NANO_BANANA_2}), MISSING),
    ):
        catalog = resolve(ModelSettings(model=NANO_BANANA_2), LINEUP, availability)
        assert not catalog.usable
        [replacement] = catalog.replacements
        assert replacement.why == why and replacement.used is None
        assert replacement.successor == NANO_BANANA_2_1
        with pytest.raises(InvalidInput) as caught:
            catalog.profile(None)
        assert caught.value.key == "model.none_usable"
        with pytest.raises(InvalidInput) as named:
            catalog.profile(NANO_BANANA_2)
        assert named.value.key == "model.retired"
        assert catalog.gone(NANO_BANANA_2)


def test_extras_follow_the_same_rules_and_gone_ones_are_not_offered() -> None:
    extras = (NANO_BANANA_PRO, "gemini-3.1-flash-image-preview", NANO_BANANA)
    settings = ModelSettings(model=NANO_BANANA_2_1, extras=extras)
    catalog = resolve(settings, LINEUP, known())
    # The retired preview moves to its successor; 2.5 Flash Image isn't listed: not offered.
    assert list(catalog.profiles) == [NANO_BANANA_2_1, NANO_BANANA_PRO, NANO_BANANA_2]
    assert catalog.model_option and catalog.size_option
    with pytest.raises(InvalidInput) as caught:
        catalog.profile(NANO_BANANA)
    assert caught.value.key == "model.retired"
    assert [c.value for c in catalog.models()] == [NANO_BANANA_2_1, NANO_BANANA_PRO, NANO_BANANA_2]


def test_settings_the_api_refused_are_no_longer_offered() -> None:
    catalog = resolve(
        ModelSettings(),
        LINEUP,
        known(refused={NANO_BANANA_2_1: {"sizes": ("4K",), "ratios": ("8:1",),
                                         "thinking": ("medium",)}}),
    )  # fmt: skip
    profile = catalog.default
    assert profile.image_sizes == ("1K", "2K") and "8:1" not in profile.aspect_ratios
    assert profile.thinking_levels == ("minimal", "high") and profile.default_thinking is None
    with pytest.raises(InvalidInput):
        catalog.size(profile, "4K")


def test_thinking_levels_per_model_or_for_every_model() -> None:
    catalog = resolve(
        ModelSettings(extras=(NANO_BANANA_PRO, NANO_BANANA_2),
                      thinking={"*": "high", NANO_BANANA_2: "minimal"}),
        LINEUP, known(),
    )  # fmt: skip
    assert catalog.thinking_level(catalog.profile(NANO_BANANA_2_1)) == "high"
    assert catalog.thinking_level(catalog.profile(NANO_BANANA_2)) == "minimal"
    assert catalog.thinking_level(catalog.profile(NANO_BANANA_PRO)) is None  # no levels
    untouched = resolve(ModelSettings(), LINEUP, known())
    assert untouched.thinking_level(untouched.default) is None  # the model's own default


def test_the_command_shape_covers_every_model_the_settings_could_offer() -> None:
    names = [p.model for p in possible_models(ModelSettings(), LINEUP)]
    assert names[:5] == list(LINEUP.preference)
    pinned = [p.model for p in possible_models(ModelSettings(model="gemini-3-pro-image-preview"),
                                               LINEUP)]  # fmt: skip
    assert pinned == ["gemini-3-pro-image-preview", NANO_BANANA_PRO]
