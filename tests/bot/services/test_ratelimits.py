"""The sliding-window limit shared by /upload and the API, on a clock the test moves."""

from __future__ import annotations

import pytest

from bot.services.errors import TooSoon
from bot.services.ratelimits import SlidingWindow


def test_a_window_allows_rate_hits_then_says_when() -> None:
    now = [100.0]
    window = SlidingWindow(3, 60.0, clock=lambda: now[0])
    for moment in (100.0, 110.0, 120.0):
        now[0] = moment
        window.hit("alice")
    now[0] = 125.0
    with pytest.raises(TooSoon) as refused:
        window.hit("alice")
    assert refused.value.retry_after == pytest.approx(35.0)
    assert refused.value.params == {"seconds": "35"}
    window.hit("bob")  # each key has its own
    now[0] = 160.0  # the hit at 100 has left the window
    window.hit("alice")
    with pytest.raises(TooSoon) as again:
        window.hit("alice")
    assert again.value.retry_after == pytest.approx(10.0)


def test_member_buckets_refill_and_count_refused_attempts() -> None:
    from bot.services.ratelimits import MemberLimits

    now = [0.0]
    limits = MemberLimits(clock=lambda: now[0])
    for _ in range(12):
        limits.take("gallery", 1, 12)  # a full bucket: the minute's twelve at once
    with pytest.raises(TooSoon) as refused:
        limits.take("gallery", 1, 12)
    assert refused.value.retry_after == pytest.approx(10.0)  # the refusal took a token too
    limits.take("gallery", 2, 12)  # another member, another bucket
    limits.take("coins", 1, 12)  # another action, another bucket
    now[0] = 10.0
    limits.take("gallery", 1, 12)  # told "10 s", came back after 10 s: through
    with pytest.raises(TooSoon):
        limits.take("gallery", 1, 12)
    assert limits.refused == {"gallery": 2}
    # However long the hammering, the debt stops at a minute's worth.
    for _ in range(50):
        with pytest.raises(TooSoon) as again:
            limits.take("gallery", 1, 12)
    assert again.value.retry_after == pytest.approx(65.0)


def test_rates_parse_with_clear_errors() -> None:
    from bot.services.ratelimits import DEFAULT_RATES, parse_rates

    assert parse_rates("generate=5, gallery=20") == {"generate": 5, "gallery": 20}
    assert parse_rates({"upload": "3"}) == {"upload": 3}
    for bad, message in (("generate", "action=number"), ("fly=3", "unknown action"),
                         ("generate=x", "whole number"), ("generate=0", "from 1")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_rates(bad)
    with pytest.raises(ValueError, match="from 1 to 10"):
        parse_rates("coins=11", ceiling=DEFAULT_RATES)


def test_a_batch_takes_a_use_per_image_or_none() -> None:
    from bot.services.ratelimits import MemberLimits

    now = [0.0]
    limits = MemberLimits(clock=lambda: now[0])
    limits.take("generate", 1, 10, uses=4)  # a batch of four: four of the minute's ten
    limits.take("generate", 1, 10, uses=4)
    with pytest.raises(TooSoon) as refused:
        limits.take("generate", 1, 10, uses=4)  # two left: the whole batch waits
    # The refusal took one token (as any refused attempt): three more are needed, 6 s each.
    assert refused.value.retry_after == pytest.approx(18.0)
    limits.take("generate", 1, 10)  # one image still fits
    now[0] = 18.0
    limits.take("generate", 1, 10, uses=3)
    with pytest.raises(TooSoon):
        limits.take("generate", 1, 10)
