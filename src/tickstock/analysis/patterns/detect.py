"""All detections of a plan over a frame: candlesticks, then signal patterns, then scores.

A ``Frame`` is the rows of one or more symbols' bars stacked end to end (each symbol a
segment) with every row's position in its own segment. Detectors look back only within a
segment (a pattern reading ``lag`` earlier bars fires on rows with ``pos >= lag``), so one
vectorised pass over many symbols gives each symbol exactly what a pass over that symbol
alone gives. Both engines call ``detect_frame``: batch over whole histories (many symbols per
frame), incremental over the last ``Plan.window`` rows of each symbol, reporting only the
newest row. One function, one answer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, HIGH, LOW, OPEN, IntArray
from tickstock.analysis.patterns import candles, signal_detectors
from tickstock.analysis.patterns.found import EMPTY, CandleHits, Found
from tickstock.analysis.patterns.scoring import ROLE_SIGN, Scores, score
from tickstock.analysis.spec import Columns, PatternSpec

BoolArray = NDArray[np.bool_]


class PatternSet:
    """A plan's patterns split into the candlestick bank and the signal detectors."""

    def __init__(self, patterns: tuple[PatternSpec, ...]) -> None:
        self.candles = tuple(p for p in patterns if p.kind == "candle")
        self.signals = tuple(p for p in patterns if p.kind != "candle")
        ordered = (*self.candles, *self.signals)
        self.names = tuple(p.name for p in ordered)
        self.role_sign = np.array([ROLE_SIGN[p.role] for p in ordered], dtype=np.int64)
        #: Per pattern: TA-Lib sign -> direction (zeros for signal patterns, which bring
        #: their own) and the bars it spans (1 for signal patterns).
        self.direction_table = np.vstack(
            (candles.direction_table(self.candles), np.zeros((len(self.signals), 2), np.int8))
        )
        self.spans = np.array([p.span for p in ordered], dtype=np.int64)
        self.candle_functions = candles.functions(self.candles)
        #: The columns the detectors and the scoring read (a frame carries just these).
        self.columns = tuple(
            dict.fromkeys((OPEN, HIGH, LOW, CLOSE, *(c for p in ordered for c in p.requires)))
        )


@lru_cache(maxsize=64)
def pattern_set(patterns: tuple[PatternSpec, ...]) -> PatternSet:
    return PatternSet(patterns)


@dataclass(frozen=True)
class Frame:
    """Columns of stacked symbol segments; ``pos[i]`` is row ``i``'s index in its segment."""

    cols: Columns
    pos: IntArray


def candle_hits(ps: PatternSet, cols: Columns, buffer: NDArray[np.int32] | None = None) -> CandleHits:
    """Where each candlestick of ``ps`` fires over one symbol's ``cols`` (TA-Lib Function API),
    ordered by bar, then pattern. ``buffer`` (``len(ps.candles) * bars`` or more int32) is
    scratch space a caller reuses across symbols: fresh large arrays cost page faults."""
    count = len(ps.candles)
    if not count:
        return CandleHits(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    n = len(cols[CLOSE])
    size = count * n
    buf = buffer if buffer is not None and buffer.shape[0] >= size else np.empty(size, np.int32)
    raw = buf[:size]  # pattern-major: row p * n + bar
    o, h, lo, c = (cols[name] for name in candles.CANDLE_INPUTS)
    np.concatenate([fn(o, h, lo, c) for fn in ps.candle_functions], out=raw)
    pattern, index = np.divmod(np.flatnonzero(raw != 0), n)
    key = index * count + pattern
    key.sort()  # bar-major: the order detections are reported in
    index, pattern = np.divmod(key, count)
    return CandleHits(pattern, index, raw[pattern * n + index].astype(np.float64))


def _interleave(hits: CandleHits, signal: Found, patterns: int) -> tuple[CandleHits, IntArray, Found]:
    """Candle hits and signal detections in one (row, pattern) order: the merged hits (raw 0
    on signal rows), the merged positions of the signal rows, and the signals in that order.
    ``hits`` already are in that order; ``signal`` is one sorted run per pattern (a stable
    sort merges runs in near-linear time). Only three columns are merged here: the candle
    columns are then computed in merged order, the signal ones laid over them."""
    if not len(signal):
        return hits, np.zeros(0, np.int64), signal
    sk = signal.index * patterns + signal.pattern
    order = np.argsort(sk, kind="stable")
    signal = signal.take(order)
    at = np.searchsorted(hits.index * patterns + hits.pattern, sk[order]) + np.arange(len(signal))
    total = len(hits.index) + len(signal)
    rest = np.ones(total, dtype=np.bool_)
    rest[at] = False
    cpos = np.flatnonzero(rest)
    pattern = np.empty(total, dtype=np.int64)
    pattern[cpos], pattern[at] = hits.pattern, signal.pattern
    index = np.empty(total, dtype=np.int64)
    index[cpos], index[at] = hits.index, signal.index
    raw = np.zeros(total, dtype=np.float64)
    raw[cpos] = hits.raw
    return CandleHits(pattern, index, raw), at, signal


def detect_frame(
    ps: PatternSet, frame: Frame, hits: CandleHits, reported: BoolArray | None = None
) -> tuple[Found, Scores]:
    """Found and scored detections on the ``reported`` rows (all when ``None``), ordered by
    row then pattern (rows of a segment are contiguous, so also by segment). ``hits`` must be
    ordered by row, then pattern (as ``candle_hits`` returns them)."""
    if reported is not None and len(hits.index):
        keep = reported[hits.index]
        hits = CandleHits(hits.pattern[keep], hits.index[keep], hits.raw[keep])
    signal = (
        signal_detectors.detect(ps.signals, len(ps.candles), frame.cols, frame.pos, reported)
        if ps.signals
        else EMPTY
    )
    merged, at, signal = _interleave(hits, signal, len(ps.names))
    if not len(merged.index):
        return EMPTY, score(EMPTY, ps.role_sign, frame.cols)
    found = candles.detect(merged, frame.cols, frame.pos, ps.spans, ps.direction_table)
    for name in ("direction", "strength", "metric", "level"):  # high / low: the same lookup
        getattr(found, name)[at] = getattr(signal, name)
    return found, score(found, ps.role_sign, frame.cols)


def take_scores(scores: Scores, rows: slice | NDArray[np.int64]) -> Scores:
    """The scores of ``rows`` (aligned with ``Found.take`` of the same rows)."""
    return Scores(*(getattr(scores, f.name)[rows] for f in fields(Scores)))
