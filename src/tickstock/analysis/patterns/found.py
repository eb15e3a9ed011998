"""``Found``: detections before scoring, as columns (one row per detection); ``CandleHits``."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import FloatArray


@dataclass(frozen=True)
class Found:
    """Raw detections: which pattern, on which bar, which way, how strong, at which levels.

    ``pattern`` indexes the caller's pattern list; ``index`` is the bar; ``direction`` is
    +1 bullish, -1 bearish, 0 neutral; ``strength`` is in [0, 1]; ``metric`` is the pattern's
    own measurement (TA-Lib's raw output for candles); ``level`` the key price level (pattern
    high for a bullish candle, breakout level, crossed average, gap edge); ``high``/``low``
    the range of the bars the pattern spans.
    """

    pattern: NDArray[np.int64]
    index: NDArray[np.int64]
    direction: NDArray[np.int8]
    strength: FloatArray
    metric: FloatArray
    level: FloatArray
    high: FloatArray
    low: FloatArray

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concat(parts: list[Found]) -> Found:
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return EMPTY
        return Found(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Found)))

    def take(self, rows: slice | NDArray[np.int64] | NDArray[np.bool_]) -> Found:
        return Found(*(getattr(self, name)[rows] for name in _FIELDS))


_FIELDS = tuple(f.name for f in fields(Found))


def _empty_f() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


EMPTY = Found(
    np.zeros(0, np.int64),
    np.zeros(0, np.int64),
    np.zeros(0, np.int8),
    _empty_f(),
    _empty_f(),
    _empty_f(),
    _empty_f(),
    _empty_f(),
)


@dataclass(frozen=True)
class CandleHits:
    """Non-zero TA-Lib candlestick outputs: pattern number, row, raw output."""

    pattern: NDArray[np.int64]
    index: NDArray[np.int64]
    raw: NDArray[np.float64]

    @staticmethod
    def concat(parts: list[CandleHits], offsets: list[int]) -> CandleHits:
        """Hits of consecutive segments, their rows shifted by each segment's offset."""
        return CandleHits(
            np.concatenate([h.pattern for h in parts]),
            np.concatenate([h.index + off for h, off in zip(parts, offsets, strict=True)]),
            np.concatenate([h.raw for h in parts]),
        )
