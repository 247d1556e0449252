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
