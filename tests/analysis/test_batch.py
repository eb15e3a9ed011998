"""Many symbols in one detection frame give each symbol exactly its own single-symbol answer.

Oracle: ``batch.compute`` of each symbol alone (itself checked against TA-Lib in test_golden
and against the incremental engine in test_incremental). Recipe: ``compute_many`` with a small
chunk, so frames hold several symbols and chunk edges fall between them; the symbols include
the shortest histories (FTV, BHF start late) next to full ones.
"""

from __future__ import annotations

import numpy as np

from tests.analysis.test_incremental import key
from tickstock.analysis import Bars, batch

SYMBOLS = ("FTV", "AAPL", "BHF", "ADBE", "COH", "IVZ", "KLAC", "XOM", "QCOM", "ECL", "MCHP")


def test_compute_many_equals_compute_per_symbol(daily_universe: dict[str, Bars]) -> None:
    histories = [daily_universe[s] for s in SYMBOLS]
    many = list(batch.compute_many(histories, chunk=4))
    assert [r.symbol for r in many] == list(SYMBOLS)
    for bars, got in zip(histories, many, strict=True):
        alone = batch.compute(bars)
        assert got.values.keys() == alone.values.keys()
        for name, column in alone.values.items():
            assert np.array_equal(got.values[name], column, equal_nan=True), (bars.symbol, name)
        assert len(alone.detections) > 0
        assert list(map(key, got.detections)) == list(map(key, alone.detections)), bars.symbol
        assert np.all(np.diff(got.detections.ts) >= 0)  # oldest bar first


def test_a_pattern_never_reaches_into_the_previous_symbol() -> None:
    # Symbol A ends far above symbol B's first bar: stacked, B's first bar would look like a
    # gap down and a breakdown, and its candles would span A's bars. Alone, B has none of that.
    day = 86_400_000_000_000
    n = 30
    up = np.linspace(100.0, 130.0, n)

    def bars(symbol: str, close: np.ndarray) -> Bars:
        ts = np.arange(close.shape[0], dtype=np.int64) * day
        return Bars(
            symbol, "day", ts, close - 0.5, close + 1.0, close - 1.0, close, np.full(close.shape[0], 1e6)
        )

    a, b = bars("A", up), bars("B", up / 10.0)
    together = list(batch.compute_many([a, b]))
    alone = batch.compute(b)
    assert list(map(key, together[1].detections)) == list(map(key, alone.detections))
    first_bar = [d.pattern for d in together[1].detections if d.ts_ns == 0]
    assert "gap_down" not in first_bar


def test_empty_and_tiny_histories_share_a_frame(daily_universe: dict[str, Bars]) -> None:
    aapl = daily_universe["AAPL"]
    histories = [aapl.slice(0, n) for n in (0, 1, 2, 300, 0, 5)]
    many = list(batch.compute_many(histories))
    for bars, got in zip(histories, many, strict=True):
        alone = batch.compute(bars)
        assert list(map(key, got.detections)) == list(map(key, alone.detections))
        assert all(len(column) == len(bars) for column in got.values.values())
    assert [d.pattern for d in many[2].detections] == ["gap_up"]  # 2012-12-07 opened above the 6th's high


def test_recent_detections_equal_the_whole_history_ones(
    daily_universe: dict[str, Bars], minute_bars: Bars
) -> None:
    """``compute_recent`` scans only the rows the new bars' patterns read: its detections are
    the whole-history ones from each start on, value for value (scores, levels), whatever the
    start -- inside the lookback, at its edge, on the last bar, past the end."""
    histories = [daily_universe[s] for s in SYMBOLS] + [minute_bars]
    starts = [0, 1, 13, 14, 15, 300, len(histories[6]) - 1, len(histories[7]) - 40,
              len(histories[8]), len(histories[9]) + 5, len(histories[10]) - 250, 2000]
    recent = list(batch.compute_recent(zip(histories, starts, strict=True), chunk=4))
    whole = list(batch.compute_many(histories, chunk=4))
    checked = 0
    for bars, start, got, full in zip(histories, starts, recent, whole, strict=True):
        since = int(bars.ts[start]) if start < len(bars) else 2**63 - 1
        want = [key(d) for d in full.detections if d.ts_ns >= since]
        assert list(map(key, got.detections)) == want, (bars.symbol, start)
        for name, column in full.values.items():
            assert np.array_equal(got.values[name], column, equal_nan=True), (bars.symbol, name)
        checked += len(want)
    assert checked > 1000  # the starts reach far enough back to see many patterns
