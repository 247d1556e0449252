"""The price table: Google's list prices per model and size, overrides, the estimate a budget
reserves, and the cost of an answer from its usageMetadata (as the fake API returns it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.config import SettingsError, load_settings
from bot.nanobanana.wire import parse_usage
from bot.services.pricing import PriceTable, UsageCounts, format_usd


@pytest.mark.parametrize(
    ("model", "size", "usd"),
    [
        ("gemini-2.5-flash-image", None, "0.0387"),
        ("gemini-3-pro-image", "1K", "0.1344"),
        ("gemini-3-pro-image", "2K", "0.1344"),
        ("gemini-3-pro-image", "4K", "0.24"),
        ("gemini-3.1-flash-image", "512", "0.04482"),
        ("gemini-3.1-flash-image", "1K", "0.0672"),
        ("gemini-3.1-flash-image", "2K", "0.1008"),
        ("gemini-3.1-flash-image", "4K", "0.1512"),
        ("gemini-nano-banana-2.1", "1K", "0.0336"),
        ("gemini-nano-banana-2.1", "2K", "0.0504"),
        ("gemini-nano-banana-2.1", "4K", "0.1134"),
        ("gemini-3.1-flash-lite-image", "1K", "0.0336"),
        # Retired ids are priced like what replaced them; unknown ids like their family.
        ("gemini-3-pro-image-preview", "4K", "0.24"),
        ("gemini-4-pro-image", "4K", "0.24"),
        ("some-proxy-model", None, "0.0387"),
    ],
)
def test_list_prices_per_model_and_size(model: str, size: str | None, usd: str) -> None:
    assert PriceTable().image_micros(model, size) == int(Decimal(usd) * 1_000_000)


def test_cost_from_usage_metadata_prices_each_kind_of_token() -> None:
    usage = parse_usage(
        {
            "promptTokenCount": 270, "candidatesTokenCount": 2000, "totalTokenCount": 2482,
            "thoughtsTokenCount": 212,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12},
                                    {"modality": "IMAGE", "tokenCount": 258}],
        }
    )  # fmt: skip
    counts = UsageCounts.from_usage(usage)
    assert counts == UsageCounts(prompt=270, output=2000, image=2000, thoughts=212, total=2482)
    # 2000 image tokens at $120/1M + 212 thought tokens at $12/1M + 270 prompt at $2/1M.
    cost = PriceTable().cost("gemini-3-pro-image", "4K", counts)
    assert cost == 240_000 + 2_544 + 540
    # Two images in one answer cost two images.
    double = UsageCounts(prompt=5, output=2580, image=2580)
    assert PriceTable().cost("gemini-2.5-flash-image", None, double) == 77_400 + 2
    # No usage at all (a proxy stripped it): the table's price of the images returned.
    assert PriceTable().cost("gemini-2.5-flash-image", None, None, images=2) == 77_400


def test_overrides_and_the_estimate_never_below_a_plain_answer() -> None:
    table = PriceTable(
        image_prices={"gemini-2.5-flash-image": Decimal("0.02")},
        token_prices={"gemini-2.5-flash-image:input": Decimal("1")},
    )
    assert table.image_micros("gemini-2.5-flash-image", None) == 20_000
    # Image tokens scale with the override; prompt tokens use the overridden rate.
    counts = UsageCounts(prompt=100, output=1290, image=1290)
    assert table.cost("gemini-2.5-flash-image", None, counts) == 20_000 + 100
    for model, size, thoughts in (
        ("gemini-2.5-flash-image", None, 0),
        ("gemini-3-pro-image", "4K", 212),
        ("gemini-nano-banana-2.1", "2K", 212),
    ):
        estimate = PriceTable().estimate(model, size, prompt_chars=400, input_images=1)
        plain = UsageCounts(prompt=101 + 258, output=0, image=0, thoughts=thoughts)
        nominal = PriceTable().image_micros(model, size)
        assert estimate >= nominal + PriceTable().cost(model, size, plain) - 1


def test_format_usd() -> None:
    assert format_usd(38_700) == "$0.039"
    assert format_usd(116_109) == "$0.116"
    assert format_usd(12_500_000) == "$12.50"
    assert format_usd(0) == "$0.00"


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [
        ("monthly_budget_usd", "-1", "must not be negative"),
        ("monthly_budget_usd", "lots", "dollar amount"),
        ("monthly_budget_usd", "1e12", "at most"),
        ("image_prices_usd", "gemini-2.5-flash-image=-0.1", "must not be negative"),
        ("image_prices_usd", "gemini-2.5-flash-image", "not key=dollars"),
        ("token_prices_usd", "gemini-2.5-flash-image=1", "model:input or model:output"),
    ],
)
def test_bad_price_settings_stop_start_up_with_one_line(name: str, value: str, phrase: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(discord_token="x", **{name: value})
    assert phrase in str(error.value) and name.upper() in str(error.value)
