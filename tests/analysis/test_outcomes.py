"""Outcome statistics: a hand-computed case, then real data against a plain-Python oracle."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from tickstock.analysis import Bars, batch
from tickstock.analysis.outcomes import forward_returns, pattern_outcomes
from tickstock.analysis.patterns.signals import gap

DAY = 86_400_000_000_000


def test_forward_returns_stop_at_the_end() -> None:
    close = np.array([10.0, 11.0, 12.0, 9.0])
    got = forward_returns(close, np.array([0, 2, 3]), 1)
    assert got[0] == 11 / 10 - 1 and got[1] == 9 / 12 - 1 and np.isnan(got[2])


def test_gap_outcomes_by_hand() -> None:
    # gap up (open above the previous high) on bars 1 and 3; gap down on bar 5
    opens = [10, 12, 11.6, 13, 13.2, 8, 9]
    highs = [11, 12.5, 12, 13.5, 15, 9, 10]
    lows = [9, 11.5, 10.5, 12.5, 13, 7.5, 8]
    closes = [10, 12, 11, 13, 15, 8, 9.5]
    n = len(closes)
    bars = Bars("X", "day", np.arange(n, dtype=np.int64) * DAY, np.array(opens, float),
                np.array(highs, float), np.array(lows, float), np.array(closes, float),
                np.ones(n))  # fmt: skip
    result = batch.compute(bars, (gap(True), gap(False)))
    assert [(d.pattern, int(d.ts_ns // DAY)) for d in result.detections] == [
        ("gap_up", 1), ("gap_up", 3), ("gap_down", 5),
    ]  # fmt: skip
    stats = {(s.pattern, s.horizon_bars): s for s in pattern_outcomes([result], (1, 2))}
    up1 = stats[("gap_up", 1)]
    r = [11 / 12 - 1, 15 / 13 - 1]
    assert up1.occurrences == 2
    assert up1.mean_return == pytest.approx(sum(r) / 2, rel=1e-12)
    assert up1.median_return == pytest.approx(statistics.median(r), rel=1e-12)
    assert up1.p10_return == pytest.approx(r[0] + 0.1 * (r[1] - r[0]), rel=1e-12)
    assert up1.hit_rate == 0.5
    down2 = stats[("gap_down", 2)]
    assert down2.occurrences == 0 and down2.mean_return is None  # bar 5 + 2 is past the end
    down1 = stats[("gap_down", 1)]
    assert down1.occurrences == 1 and down1.hit_rate == 0.0  # 8 -> 9.5 went against it
    assert up1.period_start_ns == DAY and up1.period_end_ns == 5 * DAY + 1


def test_outcomes_on_real_data_match_a_plain_oracle(daily_universe: dict[str, Bars]) -> None:
    symbols = ["AAPL", "MSFT", "XOM", "JPM", "GE", "KO", "PFE", "T", "WMT", "INTC"]
    results = [batch.compute(daily_universe[s]) for s in symbols]
    start, end = int(np.datetime64("2014-01-01", "ns").astype(np.int64)), None
    stats = pattern_outcomes(results, start_ns=start, end_ns=end)
    by_key = {(s.pattern, s.horizon_bars): s for s in stats}
    for pattern in ("golden_cross", "cdl_engulfing", "bb_squeeze", "volume_surge"):
        for h in (1, 5, 20):
            returns, hits = [], []
            for res in results:
                close = res.bars.close
                for det in res.detections:
                    if det.pattern != pattern or det.ts_ns < start:
                        continue
                    i = int(np.searchsorted(res.bars.ts, det.ts_ns))
                    if i + h >= len(close):
                        continue
                    r = close[i + h] / close[i] - 1
                    returns.append(r)
                    if det.direction != "neutral":
                        hits.append((r > 0) == (det.direction == "bullish") and r != 0)
            got = by_key[(pattern, h)]
            assert got.occurrences == len(returns) > 0, pattern
            assert got.mean_return == pytest.approx(statistics.fmean(returns), rel=1e-9)
            assert got.median_return == pytest.approx(statistics.median(returns), rel=1e-9)
            assert got.p90_return == pytest.approx(np.quantile(returns, 0.9), rel=1e-9)
            if hits:
                assert got.hit_rate == pytest.approx(sum(hits) / len(hits), rel=1e-12)
            else:
                assert got.hit_rate is None
