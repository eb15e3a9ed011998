"""Two engines, one answer: the incremental engine equals batch, bit for bit, on real data.

Oracle: ``batch.compute`` over the same bars (itself checked against TA-Lib in test_golden).
Recipe: for each symbol, warm the engine up on the first ``cut`` bars (0 = a cold start), then
``peek`` and ``update`` every later bar; every indicator column must equal the batch column
and every bar's detections must equal the batch detections of that bar (pattern, direction,
strength, confidence, levels, evidence, daily agreement).

The symbols are chosen so that every pattern that occurs anywhere in the 489-symbol universe
occurs in them (ADBE has the only three-stars-in-the-south, IVZ a kicking, KLAC an abandoned
baby, ECL identical three crows, QCOM a mat hold, MCHP three black crows, FTV a rising three
methods); BHF starts late, COH had a duplicated date, FTV is the shortest history.
``CDLCONCEALBABYSWALL`` never occurs in the real data: a constructed history shows it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib

from tickstock.analysis import DEFAULT_PATTERNS, Bars, Detection, batch
from tickstock.analysis.incremental import Engine
from tickstock.core.errors import DataValidationError

CASES = [
    ("ADBE", 0),
    ("IVZ", 300),
    ("KLAC", 800),
    ("ECL", 260),
    ("QCOM", 0),
    ("BHF", 10),
    ("COH", 1000),
    ("FTV", 30),
    ("MCHP", 500),
]
SEEN: set[str] = set()


def key(d: Detection) -> tuple[object, ...]:
    """A detection as a comparable tuple (NaN compared as a value)."""

    def f(x: float) -> object:
        return "nan" if math.isnan(x) else x

    return (
        d.symbol,
        d.timeframe,
        d.ts_ns,
        d.pattern,
        d.direction,
        f(d.strength),
        f(d.confidence),
        tuple(sorted(d.levels.items())),
        tuple(sorted(d.evidence.items())),
        d.daily_agrees,
    )


def run_incremental(bars: Bars, cut: int) -> tuple[dict[str, np.ndarray], list[list[Detection]]]:
    engine = Engine()
    if cut:
        engine.warm_up(bars.slice(0, cut))
    n = len(bars)
    values: dict[str, np.ndarray] = {}
    detections: list[list[Detection]] = []
    for i in range(cut, n):
        bar = bars.bar(i)
        peeked = engine.peek(bar)
        snap = engine.update(bar)
        assert list(map(key, peeked.detections)) == list(map(key, snap.detections))
        assert peeked.values.keys() == snap.values.keys()
        for name, value in snap.values.items():
            other = peeked.values[name]
            assert value == other or (math.isnan(value) and math.isnan(other)), name
            values.setdefault(name, np.full(n, np.nan))[i] = value
        detections.append(list(snap.detections))
    return values, detections


@pytest.mark.slow
@pytest.mark.parametrize(("symbol", "cut"), CASES)
def test_incremental_equals_batch(daily_universe: dict[str, Bars], symbol: str, cut: int) -> None:
    bars = daily_universe[symbol]
    expected = batch.compute(bars)
    values, detections = run_incremental(bars, cut)

    assert values.keys() == expected.values.keys()
    for name, column in expected.values.items():
        assert np.array_equal(values[name][cut:], column[cut:], equal_nan=True), name

    by_bar: dict[int, list[tuple[object, ...]]] = {}
    for det in expected.detections:
        by_bar.setdefault(det.ts_ns, []).append(key(det))
    for i, found in zip(range(cut, len(bars)), detections, strict=True):
        assert list(map(key, found)) == by_bar.get(int(bars.ts[i]), []), f"bar {i}"
        SEEN.update(d.pattern for d in found)


def concealing_baby_swallow() -> Bars:
    """20 seeded random bars, then the four black candles of a concealing baby swallow
    (two marubozu, a gap down whose upper shadow reaches into the prior body, one engulfing
    it) -- the one TA-Lib pattern the real data never shows."""
    rng = np.random.default_rng(1)
    close = 100 + np.cumsum(rng.normal(0, 1, 20))
    opens = close + rng.normal(0, 1, 20)
    candles = np.array([(100, 100, 96, 96), (95.5, 95.5, 92, 92), (90, 93, 88.8, 89), (94, 94.5, 87, 87.5)])
    o, h, lo, c = (np.r_[a, candles[:, k]] for k, a in enumerate(
        (opens, np.maximum(opens, close) + 1, np.minimum(opens, close) - 1, close)))  # fmt: skip
    ts = np.arange(24, dtype=np.int64) * 86_400_000_000_000
    return Bars("CBS", "day", ts, o, h, lo, c, np.full(24, 1e6))


def test_concealing_baby_swallow_incremental_equals_batch() -> None:
    bars = concealing_baby_swallow()
    raw = talib.CDLCONCEALBABYSWALL(bars.open, bars.high, bars.low, bars.close)
    assert np.flatnonzero(raw).tolist() == [23]  # the recipe really is the pattern
    expected = [d for d in batch.compute(bars).detections if d.pattern == "cdl_concealbabyswall"]
    assert [(d.ts_ns, d.direction, d.strength) for d in expected] == [(int(bars.ts[23]), "bullish", 0.5)]
    assert expected[0].levels["high"] == 100.0 and expected[0].levels["low"] == 87.0  # its 4 bars
    values, detections = run_incremental(bars, 0)
    result = batch.compute(bars)
    assert [key(d) for d in detections[23]] == [key(d) for d in result.detections if d.ts_ns == bars.ts[23]]
    assert all(np.array_equal(values[n], col, equal_nan=True) for n, col in result.values.items())
    SEEN.add("cdl_concealbabyswall")


def test_every_pattern_was_compared() -> None:
    """Runs after the cases above (file order): the comparison covered every pattern."""
    assert len(SEEN) > 0, "run with the parametrised cases"
    assert {p.name for p in DEFAULT_PATTERNS} - SEEN == set()


def test_update_refuses_an_old_bar(daily_universe: dict[str, Bars]) -> None:
    bars = daily_universe["AAPL"]
    engine = Engine()
    engine.warm_up(bars.slice(0, 100))
    with pytest.raises(DataValidationError, match="not after"):
        engine.update(bars.bar(99))
    assert engine.last_ts("AAPL", "day") == int(bars.ts[99])


def test_update_many_across_the_universe_equals_batch(daily_universe: dict[str, Bars]) -> None:
    """One frame for the newest bar of every symbol: each symbol gets its own batch answer.

    Recipe: warm every symbol up on all but its last 3 bars, ``peek_many`` then
    ``update_many`` the third-last bar of all symbols, then one call with the last two bars
    of each of a few symbols (a symbol repeats within the call), against ``batch.compute``."""
    symbols = sorted(daily_universe)[::8]  # 62 symbols, every 8th
    engine = Engine()
    expected = {}
    for s in symbols:
        bars = daily_universe[s]
        expected[s] = batch.compute(bars)
        engine.warm_up(bars.slice(0, len(bars) - 3))

    def want(s: str, i: int) -> list[tuple[object, ...]]:
        ts = int(daily_universe[s].ts[i])
        return [key(d) for d in expected[s].detections if d.ts_ns == ts]

    step = [daily_universe[s].bar(len(daily_universe[s]) - 3) for s in symbols]
    peeked = engine.peek_many(step)
    snaps = engine.update_many(step)
    assert sum(len(snap.detections) for snap in snaps) > 0
    for s, peek, snap in zip(symbols, peeked, snaps, strict=True):
        n = len(daily_universe[s])
        assert list(map(key, snap.detections)) == list(map(key, peek.detections)) == want(s, n - 3)
        for name, value in snap.values.items():
            assert np.array_equal(value, expected[s].values[name][n - 3], equal_nan=True), (s, name)
    few = symbols[:5]
    tail = [daily_universe[s].bar(len(daily_universe[s]) - k) for k in (2, 1) for s in few]
    for snap in engine.update_many(tail):
        n = len(daily_universe[snap.symbol])
        i = int(np.searchsorted(daily_universe[snap.symbol].ts, snap.ts_ns))
        assert i in (n - 2, n - 1)
        assert list(map(key, snap.detections)) == want(snap.symbol, i)
    with pytest.raises(DataValidationError, match="one forming bar"):
        engine.peek_many([daily_universe["AAPL"].bar(5), daily_universe["AAPL"].bar(6)])


def test_a_forgotten_state_gives_its_row_to_the_next_and_re_warms_to_batch(
        daily_universe: dict[str, Bars]) -> None:
    symbols = sorted(daily_universe)[:6]
    engine = Engine()
    for s in symbols[:4]:
        engine.warm_up(daily_universe[s].slice(0, 200))
    assert engine.slots == 4
    engine.forget(symbols[1], "day")
    engine.forget(symbols[1], "day")  # twice: nothing more to free
    engine.forget("NOSUCH", "day")
    assert engine.slots == 3 and engine.last_ts(symbols[1], "day") is None
    for s in symbols[4:]:  # the first takes the freed row, the second a new one
        engine.warm_up(daily_universe[s].slice(0, 200))
    assert engine.slots == 5
    engine.warm_up(daily_universe[symbols[1]].slice(0, 200))  # re-warmed: a row of its own
    assert engine.slots == 6
    # every state, the re-warmed and the one in a reused row among them, answers as batch
    step = [daily_universe[s].bar(200) for s in symbols]
    for s, snap in zip(symbols, engine.update_many(step), strict=True):
        expected = batch.compute(daily_universe[s].slice(0, 201))
        for name, value in snap.values.items():
            assert np.array_equal(value, expected.values[name][200], equal_nan=True), (s, name)
        assert list(map(key, snap.detections)) == [
            key(d) for d in expected.detections if d.ts_ns == int(daily_universe[s].ts[200])]
