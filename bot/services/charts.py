"""The /usage chart: the last 30 days at a glance (estimated cost as bars, images as a line),
drawn with matplotlib's Agg backend (no display; a Figure per call, no global pyplot state, so
it is safe to draw in a worker thread), labelled in the member's language (axis names, dates,
dollars)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from bot.i18n import t
from bot.i18n.formats import day_month, usd
from bot.services.pricing import usd as micros_to_usd
from storage.usage import Group

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BANANA = "#f5c400"
INK = "#2b2d31"


def usage_chart(
    daily: Sequence[Group], *, title: str, subtitle: str = "", language: str = "en"
) -> bytes:
    """A PNG (1000x500 px): one bar per day of estimated cost in USD, images on a second axis."""
    figure = usage_figure(daily, title=title, subtitle=subtitle, language=language)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def usage_figure(
    daily: Sequence[Group], *, title: str, subtitle: str = "", language: str = "en"
) -> Figure:
    """The chart's figure (drawn by `usage_chart`)."""
    # Imported on the first chart: matplotlib and numpy are ~38 MiB that a bot process whose
    # owners never ask for /usage should not carry.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    figure = Figure(figsize=(10, 5), dpi=100, facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    days = [group.key[0] or "" for group in daily]
    costs = [float(micros_to_usd(group.cost_micros)) for group in daily]
    images = [group.images for group in daily]
    positions = list(range(len(days)))
    axes.bar(positions, costs, color=BANANA, edgecolor=INK, linewidth=0.4)
    axes.set_ylabel(t(language, "usage.chart.cost_axis"), color=INK)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: usd(language, value)))
    axes.set_ylim(bottom=0, top=max([*costs, 0.01]) * 1.15)
    labels = [day_month(language, date.fromisoformat(day)) if day else "" for day in days]
    step = max(1, len(labels) // 10)
    axes.set_xticks(positions[::step], labels[::step], rotation=0, fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    counts = axes.twinx()
    counts.plot(positions, images, color=INK, marker="o", markersize=3, linewidth=1.5)
    counts.set_ylabel(t(language, "usage.chart.images_axis"), color=INK)
    counts.set_ylim(bottom=0, top=max([*images, 1]) * 1.15)
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title, fontsize=14, fontweight="bold", color=INK)
    if subtitle:
        axes.set_title(subtitle, fontsize=10, color="#555555")
    figure.tight_layout()
    return figure
