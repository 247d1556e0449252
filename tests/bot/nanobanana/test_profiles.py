"""The lineup as data: Google's models with their sources and dates, retired ids with their
successors, families for ids we have never heard of, and the owner's profiles file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bot.nanobanana.profiles import (
    LINEUP,
    NANO_BANANA_2,
    NANO_BANANA_2_1,
    NANO_BANANA_2_LITE,
    NANO_BANANA_PRO,
    ProfileError,
    load_lineup,
)
from tests.fakes.nanobanana_server import MODELS, TODAY

CURRENT = (NANO_BANANA_2_1, NANO_BANANA_2, NANO_BANANA_2_LITE, NANO_BANANA_PRO)


def test_every_entry_names_its_sources_and_the_date_it_was_checked() -> None:
    for model, profile in LINEUP.profiles.items():
        assert profile.sources, model
        assert all(s.startswith(("[G] ", "[3P] ")) for s in profile.sources), model
        assert profile.checked is not None and profile.checked <= date(2026, 12, 7), model
        assert profile.name and profile.name != model, model


def test_todays_models_are_described_by_their_current_ids() -> None:
    assert {m for m, p in LINEUP.profiles.items() if p.status == "ga"} == {
        NANO_BANANA_2_1, NANO_BANANA_2_LITE, NANO_BANANA_PRO,
    }  # fmt: skip
    nb21 = LINEUP.profile(NANO_BANANA_2_1)
    assert nb21.image_sizes == ("1K", "2K", "4K") and len(nb21.aspect_ratios) == 14
    assert nb21.thinking_levels == ("minimal", "medium", "high")
    lite = LINEUP.profile(NANO_BANANA_2_LITE)
    assert lite.image_sizes == ("1K",) and lite.thinking_levels == ("minimal", "high")
    assert lite.max_reference_images == 14
    for model in CURRENT:
        profile = LINEUP.profile(model)
        assert profile.output_mime_type == "image/jpeg" and profile.thinking
        assert profile.price is not None and profile.price.image_tokens


def test_retired_ids_stay_with_their_shutdown_date_and_successor() -> None:
    for model in ("gemini-3-pro-image-preview", "gemini-3.1-flash-image-preview"):
        profile = LINEUP.profile(model)
        assert profile.status == "retired" and profile.shutdown == date(2026, 6, 25)
        assert profile.shut_down_by(TODAY)
    assert LINEUP.successors("gemini-3-pro-image-preview") == [NANO_BANANA_PRO]
    assert LINEUP.successors("gemini-3.1-flash-image-preview") == [NANO_BANANA_2, NANO_BANANA_2_1]
    # An earliest shutdown date proves nothing: the models list decides.
    legacy = LINEUP.profile("gemini-2.5-flash-image")
    assert legacy.shutdown_earliest and not legacy.shut_down_by(TODAY)
    for model, profile in LINEUP.profiles.items():
        if profile.status == "retired":
            assert profile.shutdown is not None and profile.successor, model
            assert LINEUP.successor_of(model) in LINEUP, model
            assert profile.price is not None, model  # priced like what replaces it


def test_preference_order_names_models_that_are_not_shut_down() -> None:
    assert LINEUP.preference[0] == NANO_BANANA_2_1
    for model in LINEUP.preference:
        assert model in LINEUP and not LINEUP.profile(model).shut_down_by(TODAY)


def test_the_fakes_own_table_agrees_with_the_lineup() -> None:
    """The fake Gemini keeps its own table on purpose: what it accepts must match ours for
    every model it serves today, or the bot would offer what the API refuses."""
    for model, spec in MODELS.items():
        if not spec.image or not spec.served_on(TODAY):
            continue
        profile = LINEUP.profile(model)
        assert profile.known, model
        assert set(profile.aspect_ratios) == set(spec.ratios), model
        assert set(profile.image_sizes) == set(spec.sizes), model
        assert profile.max_reference_images == spec.max_images, model
        assert set(profile.thinking_levels) == set(spec.thinking_levels), model
        assert profile.output_mime_type == spec.mime_type, model


@pytest.mark.parametrize(
    ("model", "family", "sizes"),
    [
        ("gemini-4-pro-image", "pro", ("1K", "2K", "4K")),
        ("gemini-4-flash-lite-image", "flash-lite", ("1K",)),
        ("gemini-4-flash-image-preview", "flash", ("1K", "2K", "4K")),
        ("gemini-nano-banana-3", "flash", ("1K", "2K", "4K")),
        ("my-proxy-model", "legacy", ()),
    ],
)
def test_unknown_ids_get_their_familys_limits(
    model: str, family: str, sizes: tuple[str, ...]
) -> None:
    profile = LINEUP.profile(model)
    assert profile.origin == "inferred" and not profile.known
    assert profile.family == family and profile.image_sizes == sizes
    assert profile.name == model and profile.price is not None


def test_an_owners_toml_file_overrides_and_adds(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        """
preference = ["gemini-4-flash-image", "gemini-nano-banana-2.1"]

[[model]]
id = "gemini-3-pro-image"
max_reference_images = 6

[[model]]
id = "gemini-4-flash-image"
name = "Nano Banana 4"
family = "flash"
sizes = ["1K", "2K"]
ratios = ["1:1", "16:9"]
thinking_levels = ["low", "high"]
default_thinking = "low"
[model.price]
input = "0.40"
output = "2"
image = "40"
image_tokens = { "1K" = 1000, "2K" = 1500 }
""",
        encoding="utf-8",
    )
    lineup = LINEUP.with_owner_profiles(path)
    pro = lineup.profile(NANO_BANANA_PRO)
    assert pro.max_reference_images == 6 and pro.origin == "owner"
    assert pro.image_sizes == ("1K", "2K", "4K")  # the rest of Google's entry stays
    new = lineup.profile("gemini-4-flash-image")
    assert new.known and new.name == "Nano Banana 4" and new.image_sizes == ("1K", "2K")
    assert new.aspect_ratios == ("1:1", "16:9") and new.default_thinking == "low"
    assert new.price is not None and new.price.image_tokens["2K"] == 1500
    assert lineup.preference == ("gemini-4-flash-image", NANO_BANANA_2_1)
    assert LINEUP.profile(NANO_BANANA_PRO).max_reference_images == 14  # untouched


def test_an_owners_json_file_works_too(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"model": [{"id": "proxy-image-model", "family": "pro"}]}))
    profile = LINEUP.with_owner_profiles(path).profile("proxy-image-model")
    assert profile.origin == "owner" and profile.family == "pro"
    assert profile.image_sizes == ("1K", "2K", "4K")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[[model]]\nid = 'x-image'\ncolour = 'red'\n",
            "model 1 (x-image): unknown field 'colour'",
        ),
        ("[[model]]\nid = 'x-image'\nratios = ['16/9']\n", "ratios: '16/9' is not a ratio"),
        (
            "[[model]]\nid = 'x-image'\nsizes = ['1K']\ndefault_size = '4K'\n",
            "default_size '4K' is not one of its sizes",
        ),
        ("[[model]]\nid = 'x-image'\nfamily = 'huge'\n", "family must be one of"),
        ("[[model]]\nname = 'no id'\n", "model 1: id is missing"),
        ("[[model]]\nid = 'x-image'\nmax_reference_images = 500\n", "from 0 to 100"),
        ("[[model]]\nid = 'x-image'\nprice = { input = 'cheap' }\n", "price.input must be"),
        ("model = [\n", "not valid TOML"),
        ("preference = ['a']\n", "no [[model]] entries"),
        ("[[model]]\nid = 'x-image'\nstatus = 'beta'\n", "status must be one of"),
    ],
)
def test_a_bad_profiles_file_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        LINEUP.with_owner_profiles(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text


def test_a_missing_profiles_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot be read"):
        LINEUP.with_owner_profiles(tmp_path / "nowhere.toml")


def test_successor_chains_stop_at_a_cycle() -> None:
    lineup = load_lineup(
        """
preference = []
[[family]]
name = "legacy"
pattern = ".*"
[[model]]
id = "a-image"
name = "A"
successor = "b-image"
sources = ["[3P] test"]
[[model]]
id = "b-image"
name = "B"
successor = "a-image"
sources = ["[3P] test"]
"""
    )
    assert lineup.successors("a-image") == ["b-image"]
    assert lineup.successor_of("a-image") == "b-image"


def test_the_reference_page_names_every_model_of_the_lineup() -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "models.md").read_text()
    assert LINEUP.checked is not None and LINEUP.checked.isoformat() in page
    for model in LINEUP.profiles:
        assert f"`{model}`" in page, model
