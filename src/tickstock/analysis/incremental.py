"""The incremental engine: one new bar per symbol (the live stream), same answers as batch.

    engine = Engine(DEFAULT_SPECS)
    engine.warm_up(stored_bars)        # after a restart: seed from stored history
    snap = engine.update(closed_bar)   # commit a closed bar -> its values and detections
    engine.peek(forming_bar)           # the still-forming bar's values; commits nothing

Per symbol and timeframe the engine keeps each indicator's stream state (``talib.stream``
handles for TA-Lib-backed ones) and the last ``Plan.window`` rows of every column for the
pattern detectors, which are the batch detectors run over that window. For the same bars,
``update`` returns exactly what ``batch.compute`` reports for the last of them.

Warm-up and exactness: recursive indicators (EMA, RSI, ATR, ADX, MACD, OBV) depend on every bar
since the first one they saw, so the incremental values equal the batch values computed over
the *same* history: warm up from the bars the batch run used (or accept differences that
fade with the length of the history; ``Plan.warmup`` bars is the minimum for every output to
exist). ``warm_up`` returns the batch result over the history it was given.
"""

from __future__ import annotations

import math
from collections import deque
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
from tickstock.analysis.patterns.detect import Frame, PatternSet, detect_frame, pattern_set
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
    """Everything the engine remembers about one symbol on one timeframe."""

    def __init__(self, p: Plan, ps: PatternSet, symbol: str, timeframe: str) -> None:
        self.symbol, self.timeframe = symbol, timeframe
        self._plan, self._ps = p, ps
        self._streams: list[tuple[tuple[str, ...], IndicatorStream]] = [
            (spec.columns, spec.kernel.stream()) for spec in p.indicators
        ]
        self._candles = [TalibCell(spec.talib_function, {}) for spec in ps.candles]
        self._keep = p.window - 1
        self._columns = (TS, *_PRICE, DAILY_TREND, *p.columns)
        self._window: dict[str, deque[float]] = {c: deque(maxlen=self._keep) for c in self._columns}
        self._has_session = False
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
        for name in self._columns:
            self._window[name] = deque(
                np.asarray(cols[name][start:], dtype=np.float64).tolist(), maxlen=self._keep
            )
        self._has_session = bars.session is not None
        self.last_ts = int(bars.ts[-1]) if len(bars) else None
        return result

    def _check(self, bar: Bar) -> None:
        if self.last_ts is not None and bar.ts <= self.last_ts:
            raise DataValidationError(
                f"{bar.symbol}/{bar.timeframe}: bar at {bar.ts} is not after the last "
                f"committed bar at {self.last_ts}"
            )

    def step(self, bar: Bar, commit: bool) -> Snapshot:
        self._check(bar)
        row = _row(bar)
        values: dict[str, float] = {}
        for columns, stream in self._streams:
            outputs = stream.update(row) if commit else stream.peek(row)
            for name, value in zip(columns, outputs, strict=True):
                row[name] = value
                values[name] = value
        prices = [row[name] for name in CANDLE_INPUTS]
        raw_now = [(cell.update if commit else cell.peek)(*prices)[0] for cell in self._candles]
        detections = self._detect(row, raw_now)
        if commit:
            for name in self._columns:
                self._window[name].append(float(row[name]))
            self.last_ts = bar.ts
        return Snapshot(bar.symbol, bar.timeframe, bar.ts, values, tuple(detections))

    def _detect(self, row: dict[str, float], raw_now: list[float]) -> Detections:
        cols = {
            name: np.fromiter((*self._window[name], row[name]), dtype=np.float64) for name in self._columns
        }
        n = len(cols[TS])
        raw = np.asarray(raw_now, dtype=np.float64)
        fired = np.flatnonzero(raw).astype(np.int64)
        hits = CandleHits(fired, np.full(fired.shape[0], n - 1, np.int64), raw[fired])
        ts = cols[TS].astype(np.int64)
        if math.isnan(row[DAILY_TREND]):
            del cols[DAILY_TREND]
        reported = np.zeros(n, dtype=np.bool_)
        reported[n - 1] = True
        frame = Frame(cols, np.arange(n, dtype=np.int64))
        found, scores = detect_frame(self._ps, frame, hits, reported)
        return Detections(self.symbol, self.timeframe, self._ps.names, ts[found.index], found, scores)


class Engine:
    """Incremental analysis of many symbols and timeframes with one set of specs."""

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
        return self._state(bar.symbol, bar.timeframe).step(bar, commit=True)

    def peek(self, bar: Bar) -> Snapshot:
        """The values and patterns ``bar`` would have if it closed now; commits nothing."""
        return self._state(bar.symbol, bar.timeframe).step(bar, commit=False)

    def update_many(self, bars: Iterable[Bar]) -> list[Snapshot]:
        """``update`` for one new bar of each of many symbols."""
        return [self.update(bar) for bar in bars]

    def last_ts(self, symbol: str, timeframe: str) -> int | None:
        """The last committed bar time of a symbol, ``None`` if it has no state."""
        state = self._states.get((symbol, timeframe))
        return None if state is None else state.last_ts

    def forget(self, symbol: str, timeframe: str) -> None:
        """Drop a symbol's state (delisted, or to re-warm it)."""
        self._states.pop((symbol, timeframe), None)
