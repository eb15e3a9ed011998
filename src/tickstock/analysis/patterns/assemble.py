"""The compiled passes of pattern detection: scanning candle outputs, merging, levels, scores.

``candle_scan``: where a bank of TA-Lib candlestick outputs is non-zero, ordered by bar, then
pattern. ``assemble``: candle hits and signal detections merged into one (row, pattern) order,
each with its direction, strength, key levels and scores (the formula documented in
``scoring``) -- one loop over the detections instead of a few dozen whole-array numpy passes
and their temporaries. ``score_rows``: the scores alone, for detections found elsewhere.

Every ``+ - * /`` and comparison is the one the numpy formulation made, in the same order, on
the same float64 values (see ``kernels.compiled``), so results are equal to the last bit.

Numba's cache does not notice edits to other modules, so everything compiled here reads only
this module and its arguments: constants (weights, tables) are passed in, never imported.
The per-detection helpers take scalars only: every array passed to a compiled call costs two
atomic reference-count updates, which made an earlier version of this pass four times slower.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.kernels.compiled import jit

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]


@jit
def _nonzero(flat: NDArray[np.int32]) -> I64:
    """Positions of the non-zero entries of ``flat``, ascending."""
    size = flat.shape[0]
    total = 0
    for k in range(size):
        total += flat[k] != 0
    hit = np.empty(total, dtype=np.int64)
    m = 0
    pairs = flat[: size - size % 2].view(np.int64)  # two outputs per test: most pairs are zero
    for j in range(pairs.shape[0]):
        if pairs[j] != 0:
            for k in (2 * j, 2 * j + 1):
                if flat[k] != 0:
                    hit[m] = k
                    m += 1
    if size % 2 and flat[size - 1] != 0:
        hit[m] = size - 1
    return hit


@jit
def candle_scan(flat: NDArray[np.int32], lengths: I64, patterns: int) -> tuple[I64, I64, F64]:
    """Non-zero candlestick outputs of consecutive symbols: ``flat`` holds, for each symbol in
    turn, its ``patterns`` outputs of ``lengths[s]`` bars one after the other (pattern-major).
    Returns (pattern, row, value) by row then pattern, rows counted across the symbols (the
    frame's rows).

    A vectorised count, one pass over ``flat`` (almost all zeros) collecting the hits, then a
    counting sort by row (stable: each row's patterns stay in order) -- no transposed copy,
    no comparison sort."""
    hit = _nonzero(flat)
    total = hit.shape[0]
    rows = 0
    for n in lengths:
        rows += n
    pattern = np.empty(total, dtype=np.int64)
    row = np.empty(total, dtype=np.int64)
    block, block_start, first_row = 0, 0, 0  # the symbol of the current hit, where it starts
    for k in range(total):
        f = hit[k]
        while f >= block_start + patterns * lengths[block]:
            block_start += patterns * lengths[block]
            first_row += lengths[block]
            block += 1
        p = (f - block_start) // lengths[block]
        pattern[k], row[k] = p, first_row + (f - block_start) - p * lengths[block]
    start = np.zeros(rows + 1, dtype=np.int64)
    for k in range(total):
        start[row[k] + 1] += 1
    for i in range(rows):
        start[i + 1] += start[i]
    out_pattern = np.empty(total, dtype=np.int64)
    index = np.empty(total, dtype=np.int64)
    value = np.empty(total, dtype=np.float64)
    for k in range(total):
        at = start[row[k]]
        start[row[k]] = at + 1
        out_pattern[at], index[at], value[at] = pattern[k], row[k], flat[hit[k]]
    return out_pattern, index, value


@jit
def _max(a: float, b: float) -> float:
    """``np.maximum``: NaN wins, ties keep ``a``."""
    return a if a >= b or math.isnan(a) else b


@jit
def _min(a: float, b: float) -> float:
    return a if a <= b or math.isnan(a) else b


@jit
def _clip(v: float, lo: float, hi: float) -> float:
    """``np.clip``: NaN stays NaN."""
    if math.isnan(v):
        return v
    r = v if v > lo else lo
    return r if r < hi else hi


@jit
def _row_terms(close: F64, ma: F64, atr: F64, rvol: F64, scale: float) -> tuple[F64, F64, F64, F64]:
    """Per frame row (many detections share a row): ``x``, ``T`` of a detection the trend is
    against (role * direction -1) and of one it is with (+1), and ``V``; ``scale`` is the
    trend scale in ATRs."""
    n = close.shape[0]
    x, against, along, volume = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for r in range(n):
        xr = _trend_x(close[r], ma[r], atr[r])
        a = _clip(xr / scale, -1.0, 1.0)
        known = not math.isnan(a)
        x[r] = xr
        against[r] = (1.0 - a) / 2.0 if known else 0.5
        along[r] = (1.0 + a) / 2.0 if known else 0.5
        rv = rvol[r]
        volume[r] = 0.5 if math.isnan(rv) else _clip(rv / 2.0, 0.0, 1.0)
    return x, against, along, volume


@jit
def _confidence(strength: float, trend: float, volume: float, weights: tuple[float, float, float]) -> float:
    """``weights``: the strength, trend and volume weights (``scoring.WEIGHTS``)."""
    s = 0.5 if math.isnan(strength) else strength
    confidence = weights[0] * s
    confidence += weights[1] * trend
    confidence += weights[2] * volume
    return _clip(confidence, 0.0, 1.0)


@jit
def _trend_x(close: float, ma: float, atr: float) -> float:
    """``(close - ma) / atr``; NaN unless ``atr > 0``."""
    num = close - ma
    return num / atr if atr > 0 else math.nan


@jit
def _agrees(d: int, dt: float) -> int:
    """1 / 0 whether direction ``d`` has the daily trend's sign, -1 unknown."""
    if d != 0 and dt != 0 and not math.isnan(dt):
        return 1 if d * dt > 0 else 0
    return -1


@jit
def score_rows(  # noqa: PLR0917
    pattern: I64,
    index: I64,
    direction: I8,
    strength: F64,
    high: F64,
    low: F64,
    role_sign: I64,
    close: F64,
    ma: F64,
    atr: F64,
    rvol: F64,
    daily: F64,
    weights: F64,
) -> tuple[F64, F64, F64, F64, F64, F64, I8]:
    """The ``Scores`` columns of detections given as ``Found`` columns."""
    n = index.shape[0]
    x, against, along, vol = _row_terms(close, ma, atr, rvol, weights[3])
    w = (weights[0], weights[1], weights[2])
    has_daily = daily.shape[0] > 0
    conf, trend, volume = np.empty(n), np.empty(n), np.empty(n)
    x_out, rv_out, stop = np.empty(n), np.empty(n), np.empty(n)
    agrees = np.empty(n, dtype=np.int8)
    for k in range(n):
        r, d = index[k], direction[k]
        rd = role_sign[pattern[k]] * d
        trend[k] = 0.5 if rd == 0 else (against[r] if rd < 0 else along[r])
        volume[k] = vol[r]
        conf[k] = _confidence(strength[k], trend[k], volume[k], w)
        x_out[k], rv_out[k] = x[r], rvol[r]
        stop[k] = low[k] if d > 0 else (high[k] if d < 0 else math.nan)
        agrees[k] = _agrees(d, daily[r]) if has_daily else -1
    return conf, trend, volume, x_out, rv_out, stop, agrees


@jit
def _signal_order(s_index: I64, s_pattern: I64, rows: int, patterns: int) -> I64:
    """The order of the signal detections by (row, pattern). They come as one run per pattern
    in pattern order (``signal_detectors.detect``), so a stable counting sort by row is enough;
    anything else falls back to a sort."""
    ns = s_index.shape[0]
    start = np.zeros(rows + 1, dtype=np.int64)
    for k in range(ns):
        start[s_index[k] + 1] += 1
    for r in range(rows):
        start[r + 1] += start[r]
    order = np.empty(ns, dtype=np.int64)
    for k in range(ns):
        r = s_index[k]
        order[start[r]] = k
        start[r] += 1
    for k in range(1, ns):
        a, b = order[k - 1], order[k]
        if s_index[a] * patterns + s_pattern[a] >= s_index[b] * patterns + s_pattern[b]:
            return np.argsort(s_index * patterns + s_pattern, kind="mergesort")
    return order


@jit
def assemble(  # noqa: PLR0917 -- one fused pass is the point
    c_pattern: I64,
    c_index: I64,
    c_raw: F64,
    s_pattern: I64,
    s_index: I64,
    s_direction: I8,
    s_strength: F64,
    s_metric: F64,
    s_level: F64,
    tables: tuple[I64, I8, I64, F64],
    high: F64,
    low: F64,
    pos: I64,
    close: F64,
    ma: F64,
    atr: F64,
    rvol: F64,
    daily: F64,
) -> tuple[I64, I64, I8, F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, F64, I8]:
    """Candle hits (``c_*``, by row then pattern) and signal detections (``s_*``, any order)
    as ``Found`` columns then ``Scores`` columns, by row then pattern. ``tables``: per pattern
    its span, its direction for a negative / positive TA-Lib output (``(patterns, 2)``,
    flattened), its role sign; then ``weights`` (``score_rows``). ``daily`` is empty when the
    frame has no daily trend."""
    spans, direction_table, role_sign, weights = tables
    x, against, along, vol = _row_terms(close, ma, atr, rvol, weights[3])
    w = (weights[0], weights[1], weights[2])
    has_daily = daily.shape[0] > 0
    patterns = spans.shape[0]
    nc, ns = c_index.shape[0], s_index.shape[0]
    order = _signal_order(s_index, s_pattern, high.shape[0], patterns)
    total = nc + ns
    pattern, index = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)
    direction = np.empty(total, dtype=np.int8)
    strength, metric, level = np.empty(total), np.empty(total), np.empty(total)
    high_out, low_out = np.empty(total), np.empty(total)
    conf, trend, volume = np.empty(total), np.empty(total), np.empty(total)
    x_out, rv_out, stop = np.empty(total), np.empty(total), np.empty(total)
    agrees = np.empty(total, dtype=np.int8)
    i = j = 0
    for k in range(total):
        candle = j >= ns or (
            i < nc
            and c_index[i] * patterns + c_pattern[i] < s_index[order[j]] * patterns + s_pattern[order[j]]
        )
        if candle:
            p, r, raw = c_pattern[i], c_index[i], c_raw[i]
            i += 1
            d = direction_table[p * 2 + (1 if raw > 0 else 0)]
            hi, lo = high[r], low[r]
            for back in range(1, min(spans[p], pos[r] + 1)):  # the span, within the segment
                hi = _max(hi, high[r - back])
                lo = _min(lo, low[r - back])
            lv = hi if d > 0 else (lo if d < 0 else math.nan)
            s, m = abs(raw) / 200.0, raw
        else:
            o = order[j]
            j += 1
            p, r, d = s_pattern[o], s_index[o], s_direction[o]
            s, m, lv = s_strength[o], s_metric[o], s_level[o]
            hi, lo = high[r], low[r]
        pattern[k], index[k], direction[k] = p, r, d
        strength[k], metric[k], level[k], high_out[k], low_out[k] = s, m, lv, hi, lo
        rd = role_sign[p] * d
        trend[k] = 0.5 if rd == 0 else (against[r] if rd < 0 else along[r])
        volume[k] = vol[r]
        conf[k] = _confidence(s, trend[k], volume[k], w)
        x_out[k], rv_out[k] = x[r], rvol[r]
        stop[k] = lo if d > 0 else (hi if d < 0 else math.nan)
        agrees[k] = _agrees(d, daily[r]) if has_daily else -1
    return (
        pattern, index, direction, strength, metric, level, high_out, low_out,
        conf, trend, volume, x_out, rv_out, stop, agrees,
    )  # fmt: skip
