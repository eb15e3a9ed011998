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

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, DAILY_TREND, HIGH, LOW, OPEN, FloatArray, IntArray
from tickstock.analysis.patterns import assemble, candles, signal_detectors
from tickstock.analysis.patterns.found import EMPTY, CandleHits, Found
from tickstock.analysis.patterns.scoring import ROLE_SIGN, SCORING_COLUMNS, WEIGHTS, Scores, score
from tickstock.analysis.spec import Columns, PatternSpec

BoolArray = NDArray[np.bool_]
_NO_DAILY = np.zeros(0, dtype=np.float64)


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
        #: What the compiled pass reads per pattern (``assemble.assemble``'s ``tables``).
        self.tables = (self.spans, self.direction_table.ravel(), self.role_sign, WEIGHTS)
        self.candle_functions = candles.functions(self.candles)
        self.program = signal_detectors.program(self.signals)
        #: The columns the detectors and the scoring read (a frame carries just these).
        self.columns = tuple(
            dict.fromkeys((OPEN, HIGH, LOW, CLOSE, *(c for p in ordered for c in p.requires)))
        )
        self.candle_lookbacks = np.array([p.warmup - 1 for p in self.candles], dtype=np.int64)
        #: Rows before a bar that its detections depend on: a candlestick's TA-Lib lookback
        #: (its ``warmup`` - 1), a detector's ``lag``, the bars a pattern's levels span.
        self.lookback = max(
            (max(p.lag, p.span - 1, p.warmup - 1 if p.kind == "candle" else 0) for p in ordered),
            default=0,
        )


@lru_cache(maxsize=64)
def pattern_set(patterns: tuple[PatternSpec, ...]) -> PatternSet:
    return PatternSet(patterns)


@dataclass(frozen=True)
class Frame:
    """Columns of stacked symbol segments; ``pos[i]`` is row ``i``'s index in its segment."""

    cols: Columns
    pos: IntArray


def candle_hits(
    ps: PatternSet, segments: Sequence[Columns], buffer: NDArray[np.int32] | None = None
) -> CandleHits:
    """Where each candlestick of ``ps`` fires over the consecutive symbols ``segments`` (each
    one symbol's columns; TA-Lib Function API), by frame row, then pattern. ``buffer``
    (``len(ps.candles)`` times the rows, or more, of int32) is scratch space a caller may
    reuse: fresh large arrays cost page faults."""
    count = len(ps.candles)
    lengths = np.array([len(cols[CLOSE]) for cols in segments], dtype=np.int64)
    size = count * int(lengths.sum())
    if not count or not size:
        return CandleHits(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    buf = buffer if buffer is not None and buffer.shape[0] >= size else np.empty(size, np.int32)
    at = 0
    for cols, n in zip(segments, lengths.tolist(), strict=True):
        o, h, lo, c = (cols[name] for name in candles.CANDLE_INPUTS)
        np.concatenate([fn(o, h, lo, c) for fn in ps.candle_functions], out=buf[at : at + count * n])
        at += count * n
    return CandleHits(*assemble.candle_scan(buf[:size], lengths, count))


def recent_candle_hits(ps: PatternSet, frame: Frame, buffer: NDArray[np.int32] | None = None) -> CandleHits:
    """``candle_hits`` of a frame of short segments (``batch.compute_recent``'s: a few new bars
    each, after their lookback), each candlestick called once over the whole frame rather
    than once per symbol. A row's output depends only on its function's lookback rows before
    it, so it is the segment's own answer wherever it has that many rows of its segment before
    it (``pos``); on the rows that have fewer it is zeroed, as a call on the segment alone
    answers there."""
    count, size = len(ps.candles), frame.pos.shape[0]
    if not count or not size:
        return CandleHits(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    fits = buffer is not None and buffer.shape[0] >= count * size
    buf = buffer if buffer is not None and fits else np.empty(count * size, np.int32)
    out = buf[: count * size].reshape(count, size)
    o, h, lo, c = (_f64(frame.cols, name) for name in candles.CANDLE_INPUTS)
    for k, fn in enumerate(ps.candle_functions):
        out[k] = fn(o, h, lo, c)
    out[frame.pos[None, :] < ps.candle_lookbacks[:, None]] = 0
    return CandleHits(*assemble.candle_scan(buf[: count * size], np.array([size], np.int64), count))


def _f64(cols: Columns, name: str) -> FloatArray:
    return np.ascontiguousarray(cols[name], dtype=np.float64)


def detect_frame(
    ps: PatternSet, frame: Frame, hits: CandleHits, reported: BoolArray | None = None
) -> tuple[Found, Scores]:
    """Found and scored detections on the ``reported`` rows (all when ``None``), ordered by
    row then pattern (rows of a segment are contiguous, so also by segment). ``hits`` must be
    ordered by row, then pattern (as ``candle_hits`` returns them).

    The signal detectors are numpy passes over the frame; merging their detections with the
    candle hits, the candles' levels and every detection's scores are one compiled pass
    (``assemble``)."""
    if reported is not None and len(hits.index):
        keep = reported[hits.index]
        hits = CandleHits(hits.pattern[keep], hits.index[keep], hits.raw[keep])
    cols = frame.cols
    signal = (
        signal_detectors.detect(ps.signals, len(ps.candles), cols, frame.pos, reported, compiled=ps.program)
        if ps.signals
        else EMPTY
    )
    if not len(hits.index) and not len(signal):
        return EMPTY, score(EMPTY, ps.role_sign, cols)
    daily = cols.get(DAILY_TREND)
    close, ma, atr, rvol = (_f64(cols, name) for name in SCORING_COLUMNS)
    out = assemble.assemble(
        hits.pattern, hits.index, np.asarray(hits.raw, dtype=np.float64),
        signal.pattern, signal.index, signal.direction, signal.strength, signal.metric, signal.level,
        ps.tables,
        _f64(cols, HIGH), _f64(cols, LOW), np.ascontiguousarray(frame.pos, dtype=np.int64),
        close, ma, atr, rvol,
        _NO_DAILY if daily is None else np.ascontiguousarray(daily, dtype=np.float64),
    )  # fmt: skip
    return Found(*out[:8]), Scores(*out[8:])


