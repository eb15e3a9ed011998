"""The batch engine: every indicator and pattern over whole histories (the nightly run).

    result = compute(bars)                       # one symbol, DEFAULT_SPECS
    results = compute_many(histories, specs)     # many symbols, one plan

1. Per symbol, each indicator's kernel runs over the full arrays in dependency order
   (TA-Lib's Function API for TA-Lib-backed ones); per chunk of symbols, the 61 candlestick
   functions run over each one into one buffer, and one compiled scan reports where they fire.
2. Per chunk, the columns the pattern detectors read are stacked into one
   ``Frame``; every signal pattern is detected, merged with the candle hits and every
   detection scored in two compiled passes (``patterns.detect``), then split back per symbol.

What the engine adds to the bare TA-Lib calls of step 1 is kept small by doing it per chunk
(a few dozen calls per frame instead of per symbol) and in compiled loops (no whole-array
temporaries): ``bench/analysis.py`` measures the ratio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

import numpy as np

from tickstock.analysis.bars import DAILY_TREND, Bars, FloatArray
from tickstock.analysis.patterns.detect import (
    Frame,
    PatternSet,
    candle_hits,
    detect_frame,
    pattern_set,
    recent_candle_hits,
)
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import DEFAULT_SPECS
from tickstock.analysis.results import Detections, Result
from tickstock.analysis.spec import Spec

#: Symbols whose pattern detection shares one frame: enough to amortise the per-frame calls,
#: few enough that a frame's columns and detections stay near the cache (with the compiled
#: passes, 1 to 32 measured within the noise of each other on the daily universe; numpy
#: passes had made 8 ~8% faster than 32).
CHUNK = 8
#: ``compute_recent``'s frames hold a few rows per symbol: more symbols share each call.
RECENT_CHUNK = 64


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


def stack(ps: PatternSet, segments: list[dict[str, np.ndarray]], lengths: list[int]) -> Frame:
    """The frame of ``segments`` (one symbol's columns each) with the columns ``ps`` reads."""
    names = list(ps.columns)
    if any(DAILY_TREND in seg for seg in segments):
        names.append(DAILY_TREND)
    if len(segments) == 1:  # one symbol: its own columns are the frame
        return Frame({name: segments[0][name] for name in names}, np.arange(lengths[0], dtype=np.int64))
    cols = {
        name: np.concatenate(
            [
                seg[name] if name in seg else np.full(n, np.nan)
                for seg, n in zip(segments, lengths, strict=True)
            ]
        )
        for name in names
    }
    starts = np.cumsum([0, *lengths[:-1]], dtype=np.int64)
    pos = np.arange(sum(lengths), dtype=np.int64) - np.repeat(starts, lengths)
    return Frame(cols, pos)


def _chunk(
    histories: list[Bars],
    p: Plan,
    ps: PatternSet,
    scratch: np.ndarray | None = None,
    starts: list[int] | None = None,
) -> list[Result]:
    """Results of ``histories``; with ``starts``, detections only on each history's rows from
    its start on: the patterns scan the last rows each of those needs (``PatternSet.lookback``),
    not the whole history."""
    segments, values = [], []
    for bars in histories:
        cols = base_columns(bars)
        values.append(indicator_columns(p, cols))
        segments.append(cols)
    firsts = [0] * len(histories) if starts is None else [max(0, s - ps.lookback) for s in starts]
    if starts is not None:
        names = [*ps.columns, DAILY_TREND]
        segments = [
            {n: seg[n][first:] for n in names if n in seg}
            for seg, first in zip(segments, firsts, strict=True)
        ]
    lengths = [len(b) - first for b, first in zip(histories, firsts, strict=True)]
    offsets = np.cumsum([0, *lengths], dtype=np.int64)
    frame = stack(ps, segments, lengths)
    reported = None
    if starts is None:
        hits = candle_hits(ps, segments, scratch)
    else:
        hits = recent_candle_hits(ps, frame, scratch)
        since = np.array(starts, dtype=np.int64) - np.array(firsts, dtype=np.int64)
        reported = frame.pos >= np.repeat(since, lengths)
    found, scores = detect_frame(ps, frame, hits, reported)
    bounds = np.searchsorted(found.index, offsets).tolist()
    # each detection's bar in its own history, and its time: one gather for the whole frame
    local = frame.pos[found.index] + np.repeat(np.array(firsts, dtype=np.int64), np.diff(bounds))
    ts = np.concatenate([b.ts[first:] for b, first in zip(histories, firsts, strict=True)])[found.index]
    results = []
    for k, bars in enumerate(histories):
        rows = slice(bounds[k], bounds[k + 1])
        own = replace(found.take(rows), index=local[rows])
        det = Detections(bars.symbol, bars.timeframe, ps.names, ts[rows], own, scores.take(rows))
        results.append(Result(bars, values[k], det))
    return results


def compute_with_plan(bars: Bars, p: Plan) -> Result:
    """``compute`` with an already resolved plan."""
    return _chunk([bars], p, pattern_set(p.patterns))[0]


def compute(bars: Bars, specs: Iterable[Spec] = DEFAULT_SPECS) -> Result:
    """Every indicator value and pattern detection of ``specs`` over ``bars``."""
    return compute_with_plan(bars, plan(specs))


def compute_many(
    histories: Iterable[Bars], specs: Iterable[Spec] = DEFAULT_SPECS, *, chunk: int = CHUNK
) -> Iterator[Result]:
    """``compute`` for each history, sharing one resolved plan and, per ``chunk`` symbols, one
    pattern-detection pass; results in input order, equal to ``compute`` of each."""
    return _compute_many(((bars, 0) for bars in histories), plan(specs), chunk, recent=False)


def compute_recent(
    histories: Iterable[tuple[Bars, int]], specs: Iterable[Spec] = DEFAULT_SPECS, *, chunk: int = RECENT_CHUNK
) -> Iterator[Result]:
    """``compute_many`` of each ``(bars, start)`` whose detections are only those on rows
    ``start`` and later (equal to ``compute``'s there; indicator values on every row): what a
    run that stores the results of new bars only needs, at the cost of the new bars' patterns
    rather than the whole history's."""
    return _compute_many(histories, plan(specs), chunk, recent=True)


def _compute_many(
    histories: Iterable[tuple[Bars, int]], p: Plan, chunk: int, *, recent: bool
) -> Iterator[Result]:
    ps = pattern_set(p.patterns)  # looked up once: hashing 81 pattern specs is not free
    scratch = np.empty(0, dtype=np.int32)  # the candle outputs of a chunk, reused
    it = iter(histories)
    while group := list(islice(it, chunk)):
        size = len(ps.candles) * sum(len(b) for b, _ in group)
        if scratch.shape[0] < size:
            scratch = np.empty(size + size // 4, dtype=np.int32)
        starts = [min(max(start, 0), len(b)) for b, start in group] if recent else None
        yield from _chunk([b for b, _ in group], p, ps, scratch, starts)
