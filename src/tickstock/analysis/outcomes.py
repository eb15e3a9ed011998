"""Outcome statistics: what happened after each pattern, over a universe and a period.

For a detection on bar ``i`` of a symbol with closes ``c``, the forward return at horizon ``h``
bars is ``c[i + h] / c[i] - 1`` (the detection bar's close is the entry; detections fewer than
``h`` bars before the end of the history have no return at ``h`` and are not counted there).

Per pattern and horizon (1, 5 and 20 bars by default):

- ``occurrences``: detections with a forward return at that horizon;
- ``mean``, ``median``, ``p10``, ``p90``: of the raw forward returns (not sign-adjusted: a
  bearish pattern that works has a negative mean); percentiles interpolate linearly;
- ``hit_rate``: the share of directional detections whose return went their way (``> 0``
  after a bullish one, ``< 0`` after a bearish one); neutral detections are left out, and a
  pattern with none directional has no hit rate (``None``).

A pure function over arrays: the caller gives batch results (or detections and closes) and
stores the rows (``pattern_outcomes``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tickstock.analysis.bars import FloatArray, IntArray
from tickstock.analysis.results import Result

HORIZONS = (1, 5, 20)


@dataclass(frozen=True)
class OutcomeStats:
    """Forward-return distribution of one pattern at one horizon."""

    pattern: str
    timeframe: str
    horizon_bars: int
    occurrences: int
    mean_return: float | None
    median_return: float | None
    p10_return: float | None
    p90_return: float | None
    hit_rate: float | None
    period_start_ns: int
    period_end_ns: int


def forward_returns(close: FloatArray, index: IntArray, horizon: int) -> FloatArray:
    """``close[i + horizon] / close[i] - 1`` for each ``i`` of ``index``; NaN past the end."""
    out = np.full(index.shape[0], np.nan)
    ok = index + horizon < close.shape[0]
    out[ok] = close[index[ok] + horizon] / close[index[ok]] - 1.0
    return out


def summarize(
    pattern: str,
    timeframe: str,
    horizon: int,
    returns: FloatArray,
    direction: np.ndarray,
    *,
    period: tuple[int, int],
) -> OutcomeStats:
    """Statistics of one pattern's forward ``returns`` (NaN = not available) at ``horizon``."""
    ok = ~np.isnan(returns)
    r, d = returns[ok], direction[ok]
    if not r.shape[0]:
        return OutcomeStats(pattern, timeframe, horizon, 0, None, None, None, None, None, *period)
    p10, median, p90 = (float(x) for x in np.percentile(r, [10, 50, 90]))
    directional = d != 0
    hits = (r * d > 0)[directional]
    hit_rate = float(hits.mean()) if hits.shape[0] else None
    return OutcomeStats(
        pattern, timeframe, horizon, int(r.shape[0]), float(r.mean()), median, p10, p90,
        hit_rate, *period,
    )  # fmt: skip


def pattern_outcomes(
    results: Iterable[Result],
    horizons: tuple[int, ...] = HORIZONS,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> list[OutcomeStats]:
    """Per pattern and horizon, the outcome statistics of every detection in ``results``
    stamped in ``[start_ns, end_ns)`` (default: all). Forward returns may use bars after
    ``end_ns`` that the results contain. Rows are ordered by pattern, then horizon."""
    names: list[np.ndarray] = []
    dirs: list[np.ndarray] = []
    rets: dict[int, list[FloatArray]] = {h: [] for h in horizons}
    timeframe = ""
    lo, hi = start_ns, end_ns
    for result in results:
        det = result.detections
        timeframe = timeframe or det.timeframe
        keep = np.ones(len(det), dtype=bool)
        if start_ns is not None:
            keep &= det.ts >= start_ns
        if end_ns is not None:
            keep &= det.ts < end_ns
        index = det.found.index[keep]
        names.append(np.asarray(det.names, dtype=object)[det.found.pattern[keep]])
        dirs.append(det.found.direction[keep])
        for h in horizons:
            rets[h].append(forward_returns(result.bars.close, index, h))
        if len(index):
            first, last = int(det.ts[keep][0]), int(det.ts[keep][-1]) + 1
            lo = first if start_ns is None and (lo is None or first < lo) else lo
            hi = last if end_ns is None and (hi is None or last > hi) else hi
    if not names:
        return []
    pattern = np.concatenate(names)
    direction = np.concatenate(dirs)
    returns = {h: np.concatenate(rets[h]) for h in horizons}
    period = (lo or 0, hi or 0)
    out: list[OutcomeStats] = []
    for name in sorted(set(pattern.tolist())):
        rows = pattern == name
        for h in horizons:
            out.append(summarize(name, timeframe, h, returns[h][rows], direction[rows], period=period))
    return out
