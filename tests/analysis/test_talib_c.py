"""The TA-Lib stream C API called directly (``kernels.talib_c``) and the engine's block path.

Oracles: ``talib.stream`` handles (the same C functions behind the wheel's own wrapper) and
the Function API on real daily bars; ``batch.compute`` for ``Engine.update_block``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import talib
from talib import stream

from tickstock.analysis import Bars, batch
from tickstock.analysis.incremental import Block, Engine
from tickstock.analysis.kernels.talib_c import TalibCError, c_function
from tickstock.core.errors import DataValidationError

SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM", "KO", "FTV", "BHF", "NVDA")
LONG = ("AAPL", "MSFT", "XOM", "JPM", "KO", "NVDA")  # 500 bars or more
#: (function, parameters, inputs): every input and output shape the live set uses.
CASES = [
    ("RSI", (("timeperiod", 14),), ("close",)),
    ("EMA", (("timeperiod", 20),), ("close",)),
    ("MACD", (("fastperiod", 12), ("signalperiod", 9), ("slowperiod", 26)), ("close",)),
    ("BBANDS", (("matype", 0), ("nbdevdn", 2.0), ("nbdevup", 2.0), ("timeperiod", 20)), ("close",)),
    ("ATR", (("timeperiod", 14),), ("high", "low", "close")),
    ("STOCH", (), ("high", "low", "close")),
    ("CDLENGULFING", (), ("open", "high", "low", "close")),
    ("CDLMORNINGSTAR", (("penetration", 0.3),), ("open", "high", "low", "close")),
]


@pytest.mark.parametrize(("function", "params", "inputs"), CASES)
def test_update_many_equals_the_wrappers_streams_and_batch(
        daily_universe: dict[str, Bars], function: str, params: tuple[tuple[str, int | float], ...],
        inputs: tuple[str, ...]) -> None:
    """Open a handle per symbol on its first 300 bars, then advance all of them 200 bars,
    one compiled call a bar: every output equals ``talib.stream``'s and, at the end, the
    Function API's over the whole history."""
    fn = c_function(function, params)
    kwargs = dict(params)
    bars = [daily_universe[s] for s in LONG]
    start = 300
    cols = [[getattr(b, name)[:start + 200] for name in inputs] for b in bars]
    opened = [fn.open([c[:start] for c in col]) for col in cols]
    assert all(o is not None for o in opened)
    handles = np.array([o[0] for o in opened if o is not None], dtype=np.uint64)
    theirs = [getattr(stream, function)(*[c[:start] for c in col], **kwargs) for col in cols]
    for their, mine in zip(theirs, opened, strict=True):
        assert mine is not None
        assert np.array_equal(np.atleast_1d(their.value), mine[1])
    for k in range(start, start + 200):
        out = fn.update_many(handles, [np.array([col[j][k] for col in cols]) for j in range(len(inputs))])
        want = np.array([np.atleast_1d(t.update(*[c[k] for c in col]))
                         for t, col in zip(theirs, cols, strict=True)], dtype=np.float64)
        assert np.array_equal(out, want), k
    for i, col in enumerate(cols):
        full = getattr(talib, function)(*col, **kwargs)
        full = full if isinstance(full, tuple) else (full,)
        assert [float(f[-1]) for f in full] == out[i].tolist()
    for h in handles.tolist():
        fn.close(h)


def test_a_bar_that_is_not_finite_is_counted_and_answered_nan(daily_universe: dict[str, Bars]) -> None:
    close = daily_universe["AAPL"].close
    fn = c_function("SMA", (("timeperiod", 5),))
    opened = fn.open([close[:50]])
    assert opened is not None
    handle = opened[0]
    theirs = stream.SMA(close[:50], timeperiod=5)
    out = fn.update_many(np.array([handle], dtype=np.uint64), [np.array([math.nan])])
    assert math.isnan(out[0, 0])
    theirs.advance()  # the wrapper's way to skip a bar: both stay a bar apart from nothing
    assert fn.update(handle, [close[50]]) == (theirs.update(close[50]),)
    assert fn.peek(handle, [close[51]]) == (theirs.peek(close[51]),)
    fn.close(handle)


def test_short_history_opens_nothing_and_bad_calls_are_named() -> None:
    fn = c_function("RSI", (("timeperiod", 14),))
    assert fn.open([np.arange(10, dtype=np.float64)]) is None
    assert fn.open([np.full(40, np.nan)]) is None  # leading NaN bars are not history
    with pytest.raises(TalibCError, match="unknown parameters"):
        c_function("RSI", (("period", 14),))
    with pytest.raises(TalibCError, match="variable periods"):
        c_function("MAVP", ())
    opened = fn.open([100 + np.sin(np.arange(40, dtype=np.float64))])
    assert opened is not None
    with pytest.raises(TalibCError, match="RSI_Update refused bar 1"):
        fn.update_many(np.array([opened[0], 0], dtype=np.uint64), [np.array([1.0, 2.0])])


def test_update_block_equals_batch_from_cold_short_and_long_starts(daily_universe: dict[str, Bars]) -> None:
    """Symbols warmed on 0, 3, 30, 60 and 400 bars (cells still buffering, opening during
    the run, open from the start) advance together a block a step for 70 steps, a step with a
    symbol twice: every value equals ``batch.compute`` over the same history, every detection
    too."""
    cuts = dict(zip(SYMBOLS, (0, 3, 30, 60, 400, 0, 30, 400), strict=True))
    engine = Engine()
    for symbol, cut in cuts.items():
        if cut:
            engine.warm_up(daily_universe[symbol].slice(0, cut))
    names = engine.plan.columns
    got: dict[str, list[list[float]]] = {s: [] for s in SYMBOLS}
    found: dict[str, set[tuple[int, str]]] = {s: set() for s in SYMBOLS}
    steps = 70
    for step in range(0, steps, 2):  # two bars a symbol a block: each symbol repeats
        picks = [(s, cuts[s] + k) for k in (step, step + 1) for s in SYMBOLS]
        block = Block.of([daily_universe[s].bar(i) for s, i in picks])
        result = engine.update_block(block)
        assert result.names == names
        for (s, _), row in zip(picks, result.values.tolist(), strict=True):
            got[s].append(row)
        for row, d in result.detections:
            assert d.symbol == picks[row][0]
            found[d.symbol].add((d.ts_ns, d.pattern))
    for s in SYMBOLS:
        bars = daily_universe[s].slice(0, cuts[s] + steps)
        expected = batch.compute(bars)
        mine = np.array(got[s])
        for j, name in enumerate(names):
            assert np.array_equal(mine[:, j], expected.values[name][cuts[s]:], equal_nan=True), (s, name)
        first = int(bars.ts[cuts[s]])
        assert found[s] == {(d.ts_ns, d.pattern) for d in expected.detections if d.ts_ns >= first}, s
    old = daily_universe["AAPL"].bar(cuts["AAPL"] + steps - 1)
    with pytest.raises(DataValidationError, match="not after"):
        engine.update_block(Block.of([old]))


def test_a_block_with_a_price_that_is_not_finite_is_refused_naming_the_bar(
        daily_universe: dict[str, Bars]) -> None:
    bars = [daily_universe[s].bar(10) for s in ("AAPL", "MSFT")]
    bars[1].close = math.nan
    with pytest.raises(DataValidationError, match=r"MSFT/day: bar at .* not finite"):
        Block.of(bars)


def test_update_many_takes_bars_with_and_without_a_session_in_one_call(
        daily_universe: dict[str, Bars]) -> None:
    """Intraday bars carry their session, daily bars none: one call may mix them (each run
    becomes its own block) and each answers as it would alone."""
    aapl, msft = daily_universe["AAPL"], daily_universe["MSFT"]
    mixed, alone = Engine(), Engine()
    for engine in (mixed, alone):
        engine.warm_up(aapl.slice(0, 100))
        engine.warm_up(msft.slice(0, 100))
    day = msft.bar(100)
    intraday = aapl.bar(100)
    intraday.session = int(intraday.ts)
    snaps = mixed.update_many([intraday, day])
    assert [s.symbol for s in snaps] == ["AAPL", "MSFT"]
    want = [alone.update(intraday), alone.update(day)]
    for got, expected in zip(snaps, want, strict=True):
        assert got.values.keys() == expected.values.keys()
        assert all(np.array_equal(got.values[k], expected.values[k], equal_nan=True) for k in got.values)


def test_a_cell_owns_its_handle_and_cannot_be_copied() -> None:
    import copy
    import pickle

    from tickstock.analysis.kernels.talib_kernel import TalibCell

    cell = TalibCell("SMA", {"timeperiod": 3})
    cell.warm_up([np.arange(10, dtype=np.float64)])
    assert cell.handle
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="C handle"):
            duplicate(cell)
    assert cell.update(10.0) == (9.0,)
