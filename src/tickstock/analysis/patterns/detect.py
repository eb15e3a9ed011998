"""All detections of a plan over some bars: candlesticks, then signal patterns, then scores.

Both engines call ``detect_all``: batch over a whole history (``first=0``), incremental over
the last ``Plan.window`` rows with ``first`` at the newest one. One function, one answer.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import IntArray
from tickstock.analysis.patterns import candles, signals
from tickstock.analysis.patterns.found import Found
from tickstock.analysis.patterns.scoring import ROLE_SIGN, Scores, score
from tickstock.analysis.results import Detections
from tickstock.analysis.spec import Columns, PatternSpec


class PatternSet:
    """A plan's patterns split into the candlestick bank and the signal detectors."""

    def __init__(self, patterns: tuple[PatternSpec, ...]) -> None:
        self.candles = tuple(p for p in patterns if p.kind == "candle")
        self.signals = tuple(p for p in patterns if p.kind != "candle")
        self.names = tuple(p.name for p in (*self.candles, *self.signals))
        self.role_sign = np.array([ROLE_SIGN[p.role] for p in (*self.candles, *self.signals)], dtype=np.int64)


@lru_cache(maxsize=64)
def pattern_set(patterns: tuple[PatternSpec, ...]) -> PatternSet:
    return PatternSet(patterns)


def candle_raw(ps: PatternSet, cols: Columns) -> NDArray[np.int32]:
    """TA-Lib's outputs of every candlestick of ``ps`` over ``cols``, as ``raw[pattern, bar]``."""
    n = len(cols["close"])
    if not ps.candles:
        return np.zeros((0, n), dtype=np.int32)
    return np.stack([candles.batch_raw(spec, cols) for spec in ps.candles])


def detect_all(  # noqa: PLR0917
    ps: PatternSet,
    cols: Columns,
    raw: NDArray[np.int32],
    ts: IntArray,
    symbol: str,
    timeframe: str,
    *,
    first: int = 0,
) -> Detections:
    """Found and scored detections on bars ``>= first``, ordered by bar then pattern."""
    parts: list[Found] = []
    if ps.candles:
        parts.append(candles.detect(ps.candles, raw, cols, first))
    if ps.signals:
        parts.append(signals.detect(ps.signals, len(ps.candles), cols, first))
    found = Found.concat(parts)
    if len(found) > 1:
        order = np.lexsort((found.pattern, found.index))
        found = found.take(order)
    scores: Scores = score(found, ps.role_sign, cols)
    return Detections(symbol, timeframe, ps.names, ts[found.index], found, scores)
