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

Only ``+ - * /``, comparisons and ``clip`` are used, and both engines run this same compiled
code (``assemble``), so batch and incremental confidences are equal to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, DAILY_TREND, FloatArray
from tickstock.analysis.indicators import atr, rvol, sma
from tickstock.analysis.patterns import assemble
from tickstock.analysis.patterns.found import Found
from tickstock.analysis.spec import Columns, IndicatorSpec, Role

W_STRENGTH, W_TREND, W_VOLUME = 0.45, 0.35, 0.20
TREND_ATRS = 3.0
#: The constants as the compiled pass reads them (``assemble``: passed, never imported there).
WEIGHTS = np.array([W_STRENGTH, W_TREND, W_VOLUME, TREND_ATRS], dtype=np.float64)

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

    def take(self, rows: slice | NDArray[np.int64] | NDArray[np.bool_]) -> Scores:
        """The scores of ``rows`` (aligned with ``Found.take`` of the same rows)."""
        return Scores(*(getattr(self, name)[rows] for name in _FIELDS))

    @staticmethod
    def concat(parts: list[Scores]) -> Scores:
        """``parts`` one after another (aligned with ``Found.concat`` of their rows)."""
        if not parts:
            return NO_SCORES
        return Scores(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


_FIELDS = tuple(f.name for f in fields(Scores))
_NONE = np.zeros(0, dtype=np.float64)
#: The scores of no detection.
NO_SCORES = Scores(_NONE, _NONE, _NONE, _NONE, _NONE, _NONE, np.zeros(0, dtype=np.int8))


def score(found: Found, role_sign: NDArray[np.int64], cols: Columns) -> Scores:
    """Score ``found``; ``role_sign[p]`` is +1 / -1 / 0 for pattern ``p`` (``ROLE_SIGN``).

    The formula is compiled (``assemble.score_rows``; ``detect_frame`` scores in its fused
    pass with the same code)."""
    if not found.index.shape[0]:
        return NO_SCORES
    daily = cols.get(DAILY_TREND)

    def f64(values: object) -> FloatArray:
        return np.ascontiguousarray(values, dtype=np.float64)

    close, ma, atr_, rv = (f64(cols[name]) for name in SCORING_COLUMNS)
    return Scores(
        *assemble.score_rows(
            np.ascontiguousarray(found.pattern, dtype=np.int64),
            np.ascontiguousarray(found.index, dtype=np.int64),
            np.ascontiguousarray(found.direction, dtype=np.int8),
            f64(found.strength), f64(found.high), f64(found.low),
            np.ascontiguousarray(role_sign, dtype=np.int64),
            close, ma, atr_, rv,
            np.zeros(0) if daily is None else f64(daily),
            WEIGHTS,
        )
    )  # fmt: skip
