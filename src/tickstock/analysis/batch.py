"""The batch engine: every indicator and pattern over whole histories (the nightly run).

    result = compute(bars)                       # one symbol, DEFAULT_SPECS
    results = compute_many(histories, specs)     # many symbols, one plan

Per symbol: each indicator's kernel runs over the full arrays in dependency order (TA-Lib's
Function API for TA-Lib-backed ones), then all candlestick outputs are stacked and every
pattern is detected and scored in a few vectorised passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from tickstock.analysis.bars import Bars, FloatArray
from tickstock.analysis.patterns.detect import candle_raw, detect_all, pattern_set
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import DEFAULT_SPECS
from tickstock.analysis.results import Result
from tickstock.analysis.spec import Columns, Spec


def base_columns(bars: Bars) -> dict[str, np.ndarray]:
    """The base input columns of ``bars`` (optional ones only when given)."""
    cols: dict[str, np.ndarray] = {
        "ts": bars.ts,
        "open": bars.open,
        "high": bars.high,
        "low": bars.low,
        "close": bars.close,
        "volume": bars.volume,
    }
    if bars.session is not None:
        cols["session"] = bars.session
    if bars.daily_trend is not None:
        cols["daily_trend"] = bars.daily_trend
    return cols


def indicator_columns(p: Plan, cols: dict[str, np.ndarray]) -> dict[str, FloatArray]:
    """Run every indicator of ``p`` over ``cols``, adding their outputs to ``cols``."""
    values: dict[str, FloatArray] = {}
    for spec in p.indicators:
        outputs = spec.kernel.batch(cols)
        for name, arr in zip(spec.columns, outputs, strict=True):
            cols[name] = arr
            values[name] = arr
    return values


def compute_with_plan(bars: Bars, p: Plan) -> Result:
    """``compute`` with an already resolved plan."""
    cols = base_columns(bars)
    values = indicator_columns(p, cols)
    ps = pattern_set(p.patterns)
    frame: Columns = cols
    detections = detect_all(ps, frame, candle_raw(ps, frame), bars.ts, bars.symbol, bars.timeframe)
    return Result(bars, values, detections)


def compute(bars: Bars, specs: Iterable[Spec] = DEFAULT_SPECS) -> Result:
    """Every indicator value and pattern detection of ``specs`` over ``bars``."""
    return compute_with_plan(bars, plan(specs))


def compute_many(histories: Iterable[Bars], specs: Iterable[Spec] = DEFAULT_SPECS) -> Iterator[Result]:
    """``compute`` for each history, sharing one resolved plan; results in input order."""
    p = plan(specs)
    for bars in histories:
        yield compute_with_plan(bars, p)
