"""The incremental engine: one new bar per symbol (the live stream), same answers as batch.

    engine = Engine(DEFAULT_SPECS)
    engine.warm_up(stored_bars)        # after a restart: seed from stored history
    snap = engine.update(closed_bar)   # commit a closed bar -> its values and detections
    engine.peek(forming_bar)           # the still-forming bar's values; commits nothing
    snaps = engine.update_many(bars)   # one new bar of each of many symbols, one detection pass

Per symbol and timeframe the engine keeps each indicator's stream state (``talib.stream``
handles for TA-Lib-backed ones) and the last ``Plan.window - 1`` rows of the columns the
pattern detectors read. The detectors are the batch ones (``patterns.detect.detect_frame``),
run over those rows plus the new bar -- for every symbol of an ``update_many`` call in one
frame -- reporting only the new bar. For the same bars, ``update`` returns exactly what
``batch.compute`` reports for the last of them.

Warm-up and exactness: recursive indicators (EMA, RSI, ATR, ADX, MACD, OBV) depend on every bar
since the first one they saw, so the incremental values equal the batch values computed over
the *same* history: warm up from the bars the batch run used (or accept differences that
fade with the length of the history; ``Plan.warmup`` bars is the minimum for every output to
exist). ``warm_up`` returns the batch result over the history it was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from tickstock.analysis.bars import (
    CLOSE,
    DAILY_TREND,
    HIGH,
    LOW,
    OPEN,
    SESSION,
    TS,
    VOLUME,
    Bar,
    Bars,
)
from tickstock.analysis.batch import base_columns, compute_with_plan
from tickstock.analysis.kernels.talib_kernel import TalibCell
from tickstock.analysis.patterns.candles import CANDLE_INPUTS
from tickstock.analysis.patterns.detect import Frame, PatternSet, detect_frame, pattern_set, take_scores
from tickstock.analysis.patterns.found import CandleHits
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import DEFAULT_SPECS
from tickstock.analysis.results import Detections, Result, Snapshot
from tickstock.analysis.spec import IndicatorStream, Spec
from tickstock.core.errors import DataValidationError

_PRICE = (OPEN, HIGH, LOW, CLOSE, VOLUME)


def _row(bar: Bar) -> dict[str, float]:
    row: dict[str, float] = {
        TS: bar.ts,
        OPEN: bar.open,
        HIGH: bar.high,
        LOW: bar.low,
        CLOSE: bar.close,
        VOLUME: bar.volume,
        DAILY_TREND: bar.daily_trend,
    }
    if bar.session is not None:
        row[SESSION] = bar.session
    return row


class SymbolState:
    """Everything the engine remembers about one symbol on one timeframe.

    The pattern window is a ``(Plan.window - 1, columns)`` array of the last committed rows
    of the columns the detectors read (``PatternSet.columns`` and the daily trend)."""

    def __init__(self, p: Plan, ps: PatternSet, symbol: str, timeframe: str) -> None:
        self.symbol, self.timeframe = symbol, timeframe
        self._plan, self._ps = p, ps
        self._streams: list[tuple[tuple[str, ...], IndicatorStream]] = [
            (spec.columns, spec.kernel.stream()) for spec in p.indicators
        ]
        self._candles = [TalibCell(spec.talib_function, {}) for spec in ps.candles]
        self._value_columns = p.columns
        self._keep = p.window - 1
        self.columns = (*ps.columns, DAILY_TREND)
        self.window = np.zeros((0, len(self.columns)), dtype=np.float64)
        self.last_ts: int | None = None

    def warm_up(self, bars: Bars) -> Result:
        """Seed every state from ``bars``; returns the batch result over them."""
        result = compute_with_plan(bars, self._plan)
        cols = base_columns(bars)
        cols.update(result.values)
        for _columns, stream in self._streams:
            stream.warm_up(cols)
        prices = [np.asarray(cols[name], dtype=np.float64) for name in CANDLE_INPUTS]
        for cell in self._candles:
            cell.warm_up(prices)
        if bars.daily_trend is None:
            cols[DAILY_TREND] = np.full(len(bars), math.nan)
        start = max(len(bars) - self._keep, 0)
        self.window = np.column_stack(
            [np.asarray(cols[name][start:], dtype=np.float64) for name in self.columns]
        )
        self.last_ts = int(bars.ts[-1]) if len(bars) else None
        return result

    def advance(self, bar: Bar, commit: bool) -> tuple[dict[str, float], list[float], list[float]]:
        """Run every indicator stream and candlestick cell on ``bar`` (committing when
        ``commit``): its indicator values, its row of ``columns`` and the candles' raw outputs."""
        if self.last_ts is not None and bar.ts <= self.last_ts:
            raise DataValidationError(
                f"{bar.symbol}/{bar.timeframe}: bar at {bar.ts} is not after the last "
                f"committed bar at {self.last_ts}"
            )
        row = _row(bar)
        for columns, stream in self._streams:
            outputs = stream.update(row) if commit else stream.peek(row)
            if len(columns) == 1:
                row[columns[0]] = outputs[0]
            else:
                row.update(zip(columns, outputs, strict=True))
        values = {name: row[name] for name in self._value_columns}
        prices = [row[name] for name in CANDLE_INPUTS]
        if commit:
            raw = [cell.update(*prices)[0] for cell in self._candles]
        else:
            raw = [cell.peek(*prices)[0] for cell in self._candles]
        return values, [row[name] for name in self.columns], raw

    def commit(self, bar: Bar, segment: np.ndarray) -> None:
        """Keep the last rows of ``segment``: the window with ``bar``'s row stacked under it
        (``Engine._step`` stacks it for detection already; stacking again cost a copy a bar)."""
        self.window = segment[-self._keep :] if self._keep else self.window
        self.last_ts = bar.ts


class Engine:
    """Incremental analysis of many symbols and timeframes with one set of specs.

    ``update_many`` / ``peek_many`` run the indicator streams per symbol, then detect and score
    the patterns of every symbol's newest bar in one frame (``patterns.detect``), the same
    function the batch engine runs over whole histories."""

    def __init__(self, specs: Iterable[Spec] = DEFAULT_SPECS) -> None:
        self.plan = plan(specs)
        self._ps = pattern_set(self.plan.patterns)
        self._states: dict[tuple[str, str], SymbolState] = {}

    def _state(self, symbol: str, timeframe: str) -> SymbolState:
        key = (symbol, timeframe)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = SymbolState(self.plan, self._ps, symbol, timeframe)
        return state

    def warm_up(self, bars: Bars) -> Result:
        """(Re)seed a symbol's state from stored ``bars``; returns their batch result."""
        state = SymbolState(self.plan, self._ps, bars.symbol, bars.timeframe)
        result = state.warm_up(bars)
        self._states[(bars.symbol, bars.timeframe)] = state
        return result

    def update(self, bar: Bar) -> Snapshot:
        """Commit a closed bar; its values and the patterns it completes."""
        return self._step([bar], commit=True)[0]

    def peek(self, bar: Bar) -> Snapshot:
        """The values and patterns ``bar`` would have if it closed now; commits nothing."""
        return self._step([bar], commit=False)[0]

    def update_many(self, bars: Iterable[Bar]) -> list[Snapshot]:
        """``update`` for new bars of many symbols (in order; a symbol may repeat)."""
        return [snap for group in _distinct_runs(bars) for snap in self._step(group, commit=True)]

    def peek_many(self, bars: Iterable[Bar]) -> list[Snapshot]:
        """``peek`` for forming bars of many symbols (each symbol at most once)."""
        group = list(bars)
        if len(_distinct_runs(group)) > 1:
            raise DataValidationError("peek_many: one forming bar per symbol and timeframe")
        return self._step(group, commit=False)

    def _step(self, bars: list[Bar], commit: bool) -> list[Snapshot]:
        if not bars:
            return []
        states = [self._state(bar.symbol, bar.timeframe) for bar in bars]
        advanced = [state.advance(bar, commit) for state, bar in zip(states, bars, strict=True)]
        segments, frame, last = _frame(states, [row for _, row, _ in advanced])
        reported = np.zeros(frame.pos.shape[0], dtype=np.bool_)
        reported[last] = True
        hits = _newest_candles([raw for _, _, raw in advanced], last)
        found, scores = detect_frame(self._ps, frame, hits, reported)
        # detections are few: most bars get an empty tuple without slicing the columns
        bounds = np.searchsorted(found.index, last, side="right")
        counts = np.diff(bounds, prepend=0)
        snaps = [
            Snapshot(bar.symbol, bar.timeframe, bar.ts, values, ())
            for bar, (values, _, _) in zip(bars, advanced, strict=True)
        ]
        for k in np.flatnonzero(counts).tolist():
            bar = bars[k]
            rows = slice(int(bounds[k] - counts[k]), int(bounds[k]))
            own = found.take(rows)
            ts = np.full(len(own), bar.ts, dtype=np.int64)
            det = Detections(bar.symbol, bar.timeframe, self._ps.names, ts, own, take_scores(scores, rows))
            snaps[k] = Snapshot(bar.symbol, bar.timeframe, bar.ts, advanced[k][0], tuple(det))
        if commit:
            for bar, state, segment in zip(bars, states, segments, strict=True):
                state.commit(bar, segment)
        return snaps

    def last_ts(self, symbol: str, timeframe: str) -> int | None:
        """The last committed bar time of a symbol, ``None`` if it has no state."""
        state = self._states.get((symbol, timeframe))
        return None if state is None else state.last_ts

    def forget(self, symbol: str, timeframe: str) -> None:
        """Drop a symbol's state (delisted, or to re-warm it)."""
        self._states.pop((symbol, timeframe), None)


_NO_ROWS = np.zeros(0, dtype=np.int64)


def _frame(states: list[SymbolState], rows: list[list[float]]) -> tuple[list[np.ndarray], Frame, np.ndarray]:
    """Each state's window with its new row under it (its segment), all segments as one
    detection frame, and the frame row of each new row. When every window is full -- every
    bar of a burst after the warm-up -- the segments are stacked in two numpy calls."""
    columns = states[0].columns
    new = np.array(rows, dtype=np.float64).reshape(len(rows), len(columns))
    depth = states[0].window.shape[0]
    if all(s.window.shape[0] == depth for s in states):
        stacked = np.concatenate(
            (np.stack([s.window for s in states]), new[:, None, :]), axis=1
        )  # [segment, row, column]
        table = stacked.reshape(-1, len(columns))
        segments = list(stacked)
        per = depth + 1
        last = np.arange(len(states), dtype=np.int64) * per + depth
        pos = np.tile(np.arange(per, dtype=np.int64), len(states))
    else:
        segments = [np.vstack((s.window, new[k])) for k, s in enumerate(states)]
        lengths = [seg.shape[0] for seg in segments]
        last = np.cumsum(lengths, dtype=np.int64) - 1
        table = np.vstack(segments)
        pos = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
    frame = Frame({name: table[:, j] for j, name in enumerate(columns)}, pos)
    return segments, frame, last


def _newest_candles(raws: list[list[float]], last: np.ndarray) -> CandleHits:
    """Candle hits of each segment's newest row (``last[k]``), by row then pattern."""
    if not raws or not raws[0]:
        return CandleHits(_NO_ROWS, _NO_ROWS, np.zeros(0, dtype=np.float64))
    raw = np.array(raws, dtype=np.float64)  # [segment, pattern]
    seg, pattern = np.nonzero(raw)
    return CandleHits(pattern.astype(np.int64), last[seg], raw[seg, pattern])


def _distinct_runs(bars: Iterable[Bar]) -> list[list[Bar]]:
    """``bars`` cut into consecutive groups in which no symbol and timeframe repeats."""
    groups: list[list[Bar]] = [[]]
    seen: set[tuple[str, str]] = set()
    for bar in bars:
        key = (bar.symbol, bar.timeframe)
        if key in seen:
            groups.append([])
            seen.clear()
        groups[-1].append(bar)
        seen.add(key)
    return [g for g in groups if g]
