"""Daily context of intraday bars: hand-computed cases, then the engines' ``daily_agrees``.

Oracle: the definition in ``tickstock.analysis.context`` evaluated by hand on a small daily
history (trend of the previous completed daily bar, NaN while its SMA warms up).
"""

from __future__ import annotations

import numpy as np

from tickstock.analysis import Bars, batch
from tickstock.analysis.context import daily_trend
from tickstock.analysis.patterns.signals import gap

DAY = 86_400_000_000_000
OPEN_UTC = 14 * 3_600_000_000_000 + 30 * 60_000_000_000  # 09:30 New York in winter


def daily(closes: list[float]) -> Bars:
    c = np.array(closes)
    ts = np.arange(c.shape[0], dtype=np.int64) * DAY  # midnight UTC stamps
    return Bars("X", "day", ts, c, c + 1, c - 1, c, np.ones(c.shape[0]))


def test_trend_is_the_previous_days_close_against_its_sma() -> None:
    d = daily([10, 11, 12, 9, 9])  # SMA3 from day 2: 11, 32/3, 10
    sessions = np.array([0, 1, 2, 3, 4, 5], dtype=np.int64) * DAY + OPEN_UTC
    got = daily_trend(d, sessions, period=3)
    # day 0, 1, 2: no completed day with an SMA before them; day 3 sees day 2 (12 > 11);
    # day 4 sees day 3 (9 < 32/3); day 5 sees day 4 (9 < 10)
    assert np.isnan(got[:3]).all()
    assert got[3:].tolist() == [1.0, -1.0, -1.0]


def test_no_daily_history_is_unknown() -> None:
    assert np.isnan(daily_trend(daily([]), np.array([OPEN_UTC]))).all()


def test_intraday_detections_record_agreement_with_the_daily_trend() -> None:
    # Two sessions of three minute bars; each session opens with a gap up on its second bar.
    minute = 60_000_000_000
    sessions = np.repeat(np.array([3, 4], dtype=np.int64) * DAY + OPEN_UTC, 3)
    ts = sessions + np.tile(np.arange(3, dtype=np.int64) * minute, 2)
    opens = np.array([10.0, 12, 12, 10, 12, 12])
    highs, lows, closes = opens + 0.5, opens - 0.5, opens
    trend = daily_trend(daily([10, 11, 12, 9, 9]), sessions, period=3)  # day 3: up, day 4: down
    bars = Bars("X", "1min", ts, opens, highs, lows, closes, np.ones(6), sessions, trend)
    found = [
        (int(d.ts_ns), d.direction, d.daily_agrees) for d in batch.compute(bars, (gap(True),)).detections
    ]
    assert found == [(int(ts[1]), "bullish", True), (int(ts[3 + 1]), "bullish", False)]
