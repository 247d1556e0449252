"""Dates, numbers, sizes and money in a member's language, from CLDR through Babel ("April 2026"
is "abril de 2026" in Spanish, "1.5 MB" is "1,5 MB")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from babel.dates import format_skeleton, format_timedelta
from babel.numbers import format_currency, format_decimal
from babel.units import format_unit

# Sizes in SI units, as CLDR names them (a kilobyte is 1000 bytes).
_SIZE_UNITS = (
    (1000**3, "digital-gigabyte"),
    (1000**2, "digital-megabyte"),
    (1000, "digital-kilobyte"),
)


def month_year(language: str, day: date) -> str:
    """ "April 2026", "abril de 2026"."""
    return str(format_skeleton("yMMMM", day, locale=language))


def day_month(language: str, day: date) -> str:
    """ "Apr 7", "7 abr"."""
    return str(format_skeleton("MMMd", day, locale=language))


def ago(language: str, moment: datetime, now: datetime) -> str:
    """How long before `now` `moment` was: "3 days ago", "hace 3 días" (no time zone needed,
    where Discord's own `<t:...>` timestamps can't be used, as in a select menu)."""
    # Never "in 0 seconds": a moment a clock tick ahead is "1 second ago".
    delta = min(moment - now, timedelta(seconds=-1))
    return str(format_timedelta(delta, add_direction=True, threshold=1, locale=language))


def file_size(language: str, size: int) -> str:
    """A human size: "812 bytes", "48 kB", "1.2 MB", "1,2 MB" (never "0.0 MB")."""
    for scale, unit in _SIZE_UNITS:
        if size >= scale * 0.9995:  # 999,999 bytes is "1 MB", not "1,000 kB"
            value = Decimal(size) / scale
            shown = round(value, 1) if value < 10 else round(value)
            return str(format_unit(shown, unit, length="short", locale=language))
    return str(format_unit(size, "digital-byte", length="long", locale=language))


def number(language: str, value: int | float | Decimal) -> str:
    """A number with the language's separators: "1,234.5", "1234,5"."""
    return str(format_decimal(value, locale=language))


def usd(language: str, amount: float | Decimal) -> str:
    """US dollars as the language writes them: "$1.50", "1,50 US$"."""
    return str(format_currency(amount, "USD", locale=language))
