"""Confidence of a detection: pattern strength, trend context and volume confirmation.

For a detection with direction ``d`` (+1 bullish, -1 bearish, 0 neutral) on bar ``t``::

    S = strength in [0, 1]            the pattern's own: |TA-Lib output| / 200 for candles;
                                      for signal patterns see tickstock.analysis.patterns.signals
    S = 0.5                           strength unknown (its ATR still warming up)
    x = (close - sma_50) / atr_14     where price stands against its trend, in ATRs
    a = clip(x / 3, -1, 1)            -1 well below the 50-bar average .. +1 well above
    T = (1 + d * a) / 2               continuation patterns: confirmed by a trend their way
    T = (1 - d * a) / 2               reversal patterns: confirmed by a trend against them
    T = 0.5                           neutral pattern or direction, or x unknown (warm-up)
    V = clip(rvol_20 / 2, 0, 1)       relative volume: 1x average -> 0.5, >= 2x -> 1
    V = 0.5                           volume unknown (warm-up, or no volume: an index)

    confidence = 0.45 * S + 0.35 * T + 0.20 * V          (in [0, 1])

A detection's ``stop`` is the low of the bars it spans when bullish, their high when bearish
(none when neutral). ``daily_agrees`` (intraday, from the caller's ``daily_trend``): whether
``d`` has the sign of the daily trend; unknown when either is 0 or missing.

Only ``+ - * /``, comparisons and ``clip`` are used, and both engines call this same function
on arrays, so batch and incremental confidences are equal to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, DAILY_TREND, FloatArray
from tickstock.analysis.indicators import atr, rvol, sma
from tickstock.analysis.kernels.common import safe_ratio
from tickstock.analysis.patterns.found import Found
from tickstock.analysis.spec import Columns, IndicatorSpec, Role

W_STRENGTH, W_TREND, W_VOLUME = 0.45, 0.35, 0.20
TREND_ATRS = 3.0

_TREND_MA, _ATR, _RVOL = sma(50), atr(14), rvol(20)
SCORING_DEPENDS: tuple[IndicatorSpec, ...] = (_TREND_MA, _ATR, _RVOL)
SCORING_COLUMNS = (CLOSE, _TREND_MA.name, _ATR.name, _RVOL.name)
ROLE_SIGN: dict[Role, int] = {"continuation": 1, "reversal": -1, "neutral": 0}


@dataclass(frozen=True)
class Scores:
    """Per-detection scores, aligned with the ``Found`` rows they score."""

    confidence: FloatArray
    trend_score: FloatArray
    volume_score: FloatArray
    trend_atr: FloatArray
    rvol: FloatArray
    stop: FloatArray
    #: 1 agrees with the daily trend, 0 disagrees, -1 unknown.
    daily_agrees: NDArray[np.int8]


def _row_scores(cols: Columns) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per frame row (cheaper than per detection: many detections share a row): ``x``,
    relative volume, ``V``, and ``T`` for each ``role * direction`` in -1, 0, +1 (rows of a
    ``(3, rows)`` array, so a detection's ``T`` is one lookup)."""
    close = np.asarray(cols[CLOSE], dtype=np.float64)
    x = safe_ratio(close - np.asarray(cols[_TREND_MA.name], dtype=np.float64), np.asarray(cols[_ATR.name]))
    a = np.clip(x / TREND_ATRS, -1.0, 1.0)
    trend = np.full((3, a.shape[0]), 0.5)
    # (1 + rd * a) / 2 with rd = -1 / +1: 1 + (-a) is exactly 1 - a, 1 + 1 * a exactly 1 + a.
    known = ~np.isnan(a)
    trend[0, known] = (1.0 - a[known]) / 2.0
    trend[2, known] = (1.0 + a[known]) / 2.0
    rv = np.asarray(cols[_RVOL.name], dtype=np.float64)
    volume = np.clip(rv / 2.0, 0.0, 1.0)
    volume[np.isnan(rv)] = 0.5
    return x, rv, volume, trend


def score(found: Found, role_sign: NDArray[np.int64], cols: Columns) -> Scores:
    """Score ``found``; ``role_sign[p]`` is +1 / -1 / 0 for pattern ``p`` (``ROLE_SIGN``)."""
    idx = found.index
    if not idx.shape[0]:
        e = np.zeros(0, dtype=np.float64)
        return Scores(e, e, e, e, e, e, np.zeros(0, dtype=np.int8))
    x_row, rv_row, volume_row, trend_row = _row_scores(cols)
    d = found.direction
    rd = role_sign[found.pattern] * d
    trend = trend_row.ravel()[(rd + 1) * trend_row.shape[1] + idx]
    volume = volume_row[idx]
    strength = np.where(np.isnan(found.strength), 0.5, found.strength)
    confidence = W_STRENGTH * strength
    confidence += W_TREND * trend
    confidence += W_VOLUME * volume
    np.clip(confidence, 0.0, 1.0, out=confidence)
    stop = np.where(d > 0, found.low, found.high)
    stop[d == 0] = np.nan
    daily = cols.get(DAILY_TREND)
    if daily is None:
        agrees = np.full(idx.shape[0], -1, dtype=np.int8)
    else:
        dt = np.asarray(daily, dtype=np.float64)[idx]
        known = (d != 0) & (dt != 0) & ~np.isnan(dt)
        agrees = np.where(known, (d * dt > 0).astype(np.int8), -1).astype(np.int8)
    return Scores(confidence, trend, volume, x_row[idx], rv_row[idx], stop, agrees)
