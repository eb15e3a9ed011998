"""What the engines return: columns for a history (batch), one row for a bar (incremental)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from typing import cast

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import Bars, FloatArray, IntArray, ns_to_datetime
from tickstock.analysis.patterns.found import EMPTY, Found
from tickstock.analysis.patterns.scoring import NO_SCORES, Scores

DIRECTIONS = {1: "bullish", -1: "bearish", 0: "neutral"}


def _finite(pairs: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in pairs.items() if not math.isnan(v)}


@dataclass(frozen=True, slots=True)
class Detection:
    """One pattern on one bar: what the store writes and the live stream publishes.

    ``levels``: ``level`` (the pattern's key price: candle high/low, breakout level, crossed
    average, gap edge), ``stop``, ``high``/``low`` of the bars it spans; missing keys are
    levels the pattern does not have. ``evidence``: the inputs of the confidence formula
    (``strength``, ``trend``, ``volume`` scores; ``trend_atr`` = (close - sma_50) / atr_14;
    ``rvol``; ``metric``, the pattern's own measurement -- TA-Lib's raw output for candles).
    """

    symbol: str
    timeframe: str
    ts_ns: int
    pattern: str
    direction: str
    strength: float
    confidence: float
    levels: dict[str, float] = field(hash=False)
    evidence: dict[str, float] = field(hash=False)
    daily_agrees: bool | None

    @property
    def ts(self) -> datetime:
        """The bar's start time, aware UTC."""
        return ns_to_datetime(self.ts_ns)


@dataclass(frozen=True)
class Detections:
    """Detections of one symbol as columns (``found`` + ``scores``), oldest bar first."""

    symbol: str
    timeframe: str
    names: tuple[str, ...]
    ts: IntArray
    found: Found
    scores: Scores

    def __len__(self) -> int:
        return len(self.found)

    def pattern_names(self) -> list[str]:
        return [self.names[i] for i in self.found.pattern.tolist()]

    def row(self, i: int) -> Detection:
        i = range(len(self))[i]  # a negative index counts from the end; out of range raises
        one = slice(i, i + 1)
        return detection_rows(self.names, self.found.take(one), self.scores.take(one),
                              symbols=[self.symbol], timeframes=[self.timeframe],
                              ts=[int(self.ts[i])])[0]

    def rows(self, keep: NDArray[np.bool_] | None = None) -> list[Detection]:
        """Every detection as a ``Detection`` (those where ``keep`` is true)."""
        found, scores, ts = self.found, self.scores, self.ts
        if keep is not None:
            found, scores, ts = found.take(keep), scores.take(keep), ts[keep]
        n = len(found)
        return detection_rows(self.names, found, scores, symbols=[self.symbol] * n,
                              timeframes=[self.timeframe] * n, ts=ts.tolist())

    def __iter__(self) -> Iterator[Detection]:
        return iter(self.rows())


#: One detection's fields after its bar's: pattern, direction, strength, confidence, levels,
#: evidence, daily_agrees (``Detection``'s order).
DetectionFields = tuple[str, str, float, float, dict[str, float], dict[str, float], bool | None]


def detection_fields(names: tuple[str, ...], found: Found, scores: Scores) -> list[DetectionFields]:
    """Each row of ``found`` / ``scores`` as a ``Detection``'s fields after its bar's (a
    column at a time: the live stream makes thousands a burst); ``names`` indexes
    ``found.pattern``."""
    levels = _finite_dicts(("level", "stop", "high", "low"),
                           (found.level, scores.stop, found.high, found.low))
    evidence = _finite_dicts(
        ("strength", "trend", "volume", "trend_atr", "rvol", "metric"),
        (found.strength, scores.trend_score, scores.volume_score, scores.trend_atr, scores.rvol,
         found.metric))
    return list(zip(
        map(names.__getitem__, found.pattern.tolist()),
        map(DIRECTIONS.__getitem__, found.direction.tolist()),
        found.strength.tolist(), scores.confidence.tolist(), levels, evidence,
        [None if a < 0 else bool(a) for a in scores.daily_agrees.tolist()], strict=True))


def _finite_dicts(keys: tuple[str, ...], columns: tuple[FloatArray, ...]) -> list[dict[str, float]]:
    """Row ``i`` of ``columns`` as a dict by ``keys``, its NaN values left out."""
    values = np.column_stack(columns)
    rows = cast(list[list[float]], values.tolist())
    finite = ~np.isnan(values)
    if finite.all():
        return [dict(zip(keys, row, strict=True)) for row in rows]
    return [dict(zip(compress(keys, mask), compress(row, mask), strict=True))
            for row, mask in zip(rows, cast(list[list[bool]], finite.tolist()), strict=True)]


def detection_rows(names: tuple[str, ...], found: Found, scores: Scores, *, symbols: list[str],
                   timeframes: list[str], ts: list[int]) -> list[Detection]:
    """``Detections.row`` of every row of ``found`` / ``scores``, row ``i`` of symbol
    ``symbols[i]`` on its timeframe and bar (many symbols at once: each column read once)."""
    return [Detection(symbol, timeframe, t, *fields) for symbol, timeframe, t, fields
            in zip(symbols, timeframes, ts, detection_fields(names, found, scores), strict=True)]


@dataclass(frozen=True)
class FoundRows:
    """Detections of many bars as columns, for a caller that wants no object a detection
    (the live stream sends them between processes): detection ``k`` is row ``k`` of
    ``found`` / ``scores``, completed on bar ``rows[k]`` (ascending); ``names`` indexes
    ``found.pattern``."""

    names: tuple[str, ...]
    rows: IntArray
    found: Found
    scores: Scores

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def fields(self) -> list[DetectionFields]:
        """``detection_fields`` of every detection."""
        return detection_fields(self.names, self.found, self.scores)

    def take(self, keep: IntArray | NDArray[np.bool_]) -> FoundRows:
        return FoundRows(self.names, self.rows[keep], self.found.take(keep),
                         self.scores.take(keep))

    def moved(self, rows: IntArray) -> FoundRows:
        """The same detections on other bars: ``rows[k]`` for the bar ``self.rows[k]``."""
        return FoundRows(self.names, rows[self.rows], self.found, self.scores)

    @staticmethod
    def concat(names: tuple[str, ...], parts: list[FoundRows]) -> FoundRows:
        """``parts`` one after another, bars in order (a bar's detections in their part's)."""
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return FoundRows(names, np.zeros(0, dtype=np.int64), EMPTY, NO_SCORES)
        if any(p.names != names for p in parts):
            raise ValueError("detections of different pattern sets cannot be joined")
        rows = np.concatenate([p.rows for p in parts])
        joined = FoundRows(names, rows, Found.concat([p.found for p in parts]),
                           Scores.concat([p.scores for p in parts]))
        if bool((np.diff(rows) >= 0).all()):
            return joined
        return joined.take(np.argsort(rows, kind="stable"))


@dataclass(frozen=True)
class Result:
    """Batch output for one symbol: every indicator column and every detection."""

    bars: Bars
    values: dict[str, FloatArray]
    detections: Detections

    @property
    def symbol(self) -> str:
        return self.bars.symbol

    @property
    def timeframe(self) -> str:
        return self.bars.timeframe

    @property
    def ts_ns(self) -> IntArray:
        """Bar start times (ns since the epoch, UTC), aligned with every ``values`` column."""
        return self.bars.ts

    def latest(self) -> dict[str, float]:
        """The last bar's values (NaN ones left out)."""
        if not len(self.bars):
            return {}
        return _finite({name: float(arr[-1]) for name, arr in self.values.items()})

    def tail(self, since_ns: int) -> Result:
        """The bars stamped ``>= since_ns`` with their values and detections."""
        start = int(np.searchsorted(self.bars.ts, since_ns, side="left"))
        keep = self.detections.found.index >= start
        found = self.detections.found.take(keep)
        d = self.detections
        scores = d.scores.take(keep)
        shifted = Found(**{**found.__dict__, "index": found.index - start})
        return Result(
            self.bars.slice(start),
            {name: arr[start:] for name, arr in self.values.items()},
            Detections(d.symbol, d.timeframe, d.names, d.ts[keep], shifted, scores),
        )


@dataclass(frozen=True)
class Snapshot:
    """Incremental output for one bar: its indicator values and the patterns it completes."""

    symbol: str
    timeframe: str
    ts_ns: int
    values: dict[str, float]
    detections: tuple[Detection, ...]

    @property
    def ts(self) -> datetime:
        return ns_to_datetime(self.ts_ns)
