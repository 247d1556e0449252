"""The /usage chart speaks the member's language: axis names, dates and dollars."""

from __future__ import annotations

from bot.services.charts import usage_chart, usage_figure
from storage.usage import Group

DAYS = [Group(("2026-12-06",), 2, 78_000), Group(("2026-12-07",), 1, 1_500_000)]


def tick_labels(language: str) -> tuple[str, str, list[str], list[str]]:
    figure = usage_figure(DAYS, title="Uso", subtitle="Últimos 30 días", language=language)
    figure.canvas.draw()  # ticks are formatted when drawn
    costs, images = figure.axes
    return (
        costs.get_ylabel(),
        images.get_ylabel(),
        [label.get_text() for label in costs.get_xticklabels()],
        [label.get_text() for label in costs.get_yticklabels() if label.get_text()],
    )


def test_spanish_chart_labels() -> None:
    cost_axis, image_axis, days, money = tick_labels("es")
    assert cost_axis == "coste estimado (USD)" and image_axis == "imágenes"
    assert days == ["6 dic", "7 dic"]
    assert money and all(text.endswith("US$") for text in money), money
    assert "1,50 US$" in money or any("," in text for text in money)


def test_english_chart_labels() -> None:
    cost_axis, image_axis, days, money = tick_labels("en")
    assert cost_axis == "estimated cost (USD)" and image_axis == "images"
    assert days == ["Dec 6", "Dec 7"]
    assert money and all(text.startswith("$") for text in money), money


def test_the_chart_is_a_png() -> None:
    assert usage_chart(DAYS, title="t", language="es").startswith(b"\x89PNG")
