"""The incremental engine: one new bar per symbol (the live stream), same answers as batch.

    engine = Engine(DEFAULT_SPECS)
    engine.warm_up(stored_bars)        # after a restart: seed from stored history
    snap = engine.update(closed_bar)   # commit a closed bar -> its values and detections
    engine.peek(forming_bar)           # the still-forming bar's values; commits nothing
    snaps = engine.update_many(bars)   # one new bar of each of many symbols, one detection pass
    result = engine.update_block(block)  # the same as columns in, columns out (the live burst)

Per symbol and timeframe the engine keeps each indicator's stream state (TA-Lib stream
handles for TA-Lib-backed ones, ``kernels.talib_c``) and the last ``Plan.window - 1`` rows of
the columns the pattern detectors read. The detectors are the batch ones
(``patterns.detect.detect_frame``), run over those rows plus the new bar -- for every symbol of
an ``update_many`` call in one frame -- reporting only the new bar. For the same bars,
``update`` returns exactly what ``batch.compute`` reports for the last of them.

A block (``update_block``) advances every symbol's state column by column: the handles of one
TA-Lib function for all the block's symbols are one row of a table kept by state slot, updated
in one compiled call; VWAP and relative volume step their columns with numpy. Not thread-safe:
one thread drives an engine.

Warm-up and exactness: recursive indicators (EMA, RSI, ATR, ADX, MACD, OBV) depend on every bar
since the first one they saw, so the incremental values equal the batch values computed over
the *same* history: warm up from the bars the batch run used (or accept differences that
fade with the length of the history; ``Plan.warmup`` bars is the minimum for every output to
exist). ``warm_up`` returns the batch result over the history it was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

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
    FloatArray,
    IntArray,
)
from tickstock.analysis.batch import base_columns, compute_with_plan
from tickstock.analysis.kernels.talib_kernel import TalibCell, TalibKernel, TalibStream, update_cells
from tickstock.analysis.patterns.candles import CANDLE_INPUTS
from tickstock.analysis.patterns.detect import Frame, PatternSet, detect_frame, pattern_set
from tickstock.analysis.patterns.found import CandleHits
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import DEFAULT_SPECS
from tickstock.analysis.results import (
    Detection,
    Detections,
    FoundRows,
    Result,
    Snapshot,
    detection_rows,
)
from tickstock.analysis.spec import Columns, IndicatorStream, Spec
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


@dataclass(frozen=True)
class Block:
    """New bars of many symbols as columns, one bar a row (``Engine.update_block``'s input).

    ``session`` is each bar's session start (epoch ns), ``None`` when no bar has one."""

    symbols: Sequence[str]
    timeframes: Sequence[str]
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    daily_trend: FloatArray
    session: IntArray | None = None

    def __post_init__(self) -> None:
        prices = np.vstack((self.open, self.high, self.low, self.close, self.volume))
        bad = np.flatnonzero(~np.isfinite(prices).all(axis=0))
        if bad.shape[0]:
            i = int(bad[0])
            raise DataValidationError(
                f"{self.symbols[i]}/{self.timeframes[i]}: bar at {int(self.ts[i])} has a price or "
                f"volume that is not finite ({[float(x) for x in prices[:, i]]})"
            )

    def __len__(self) -> int:
        return len(self.symbols)

    @classmethod
    def of(cls, bars: Sequence[Bar]) -> Block:
        """The block of ``bars`` (a bar without a session may not join bars with one)."""
        sessions = [b.session for b in bars]
        has = [s is not None for s in sessions]
        if any(has) and not all(has):
            raise DataValidationError("a block's bars all have a session or none has")
        def column(name: str) -> FloatArray:
            return np.array([getattr(b, name) for b in bars], dtype=np.float64)

        return cls(
            [b.symbol for b in bars], [b.timeframe for b in bars],
            np.array([b.ts for b in bars], dtype=np.int64),
            column("open"), column("high"), column("low"), column("close"), column("volume"),
            column("daily_trend"),
            session=np.array(sessions, dtype=np.int64) if bars and all(has) else None,
        )


@dataclass(frozen=True)
class BlockResult:
    """``Engine.update_block``'s answer: ``values[i]`` the indicator values of bar ``i`` of
    ``block`` in ``names`` order (NaN where not defined), ``found`` the patterns completed
    as columns (their bars' rows in order); ``detections`` the same as objects."""

    names: tuple[str, ...]
    values: FloatArray
    found: FoundRows
    block: Block

    @property
    def detections(self) -> list[tuple[int, Detection]]:
        """Each detection with its bar's row, in row order."""
        rows = self.found.rows.tolist()
        block = self.block
        listed = detection_rows(self.found.names, self.found.found, self.found.scores,
                                symbols=[block.symbols[i] for i in rows],
                                timeframes=[block.timeframes[i] for i in rows],
                                ts=[int(block.ts[i]) for i in rows])
        return list(zip(rows, listed, strict=True))


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
        #: The indicator streams (plan order) and candlestick cells (pattern set order).
        self.streams = [stream for _, stream in self._streams]
        self.candles = [TalibCell(spec.talib_function, {}) for spec in ps.candles]
        #: Every TA-Lib cell: the TA-Lib-backed indicators' (plan order), then the candles'.
        self.cells = [s.cell for s in self.streams if isinstance(s, TalibStream)] + self.candles
        #: This state's row in its engine's handle table (``Engine._handles``).
        self.slot = -1
        self._value_columns = p.columns
        self.keep = p.window - 1
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
        for cell in self.candles:
            cell.warm_up(prices)
        if bars.daily_trend is None:
            cols[DAILY_TREND] = np.full(len(bars), math.nan)
        start = max(len(bars) - self.keep, 0)
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
            raw = [cell.update(*prices)[0] for cell in self.candles]
        else:
            raw = [cell.peek(*prices)[0] for cell in self.candles]
        return values, [row[name] for name in self.columns], raw

    def commit(self, bar: Bar, segment: np.ndarray) -> None:
        """Keep the last rows of ``segment``: the window with ``bar``'s row stacked under it
        (``Engine._step`` stacks it for detection already; stacking again cost a copy a bar)."""
        self.window = segment[-self.keep :] if self.keep else self.window
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
        # The TA-Lib handles of every state, a row per state (its ``slot``), a column per cell
        # (``SymbolState.cells``; 0 while a cell buffers): a block's handles are one fancy
        # index. ``_cell_of[j]``: the column of indicator ``j``'s cell, None if not TA-Lib.
        talib_specs = [isinstance(spec.kernel, TalibKernel) for spec in self.plan.indicators]
        columns = iter(range(len(talib_specs)))
        self._cell_of = [next(columns) if is_talib else None for is_talib in talib_specs]
        self._handles = np.zeros((16, sum(talib_specs) + len(self._ps.candles)), dtype=np.uint64)
        self._free_slot = 0  # the first row never used
        self._freed: list[int] = []  # rows of forgotten states, used again first
        for cell in SymbolState(self.plan, self._ps, "", "").cells:
            cell.function.prepare()

    def _state(self, symbol: str, timeframe: str) -> SymbolState:
        key = (symbol, timeframe)
        state = self._states.get(key)
        if state is None:
            state = self._place(SymbolState(self.plan, self._ps, symbol, timeframe))
        return state

    def _place(self, state: SymbolState) -> SymbolState:
        """Keep ``state`` as its symbol's and timeframe's (in the slot of the one it replaces)."""
        key = (state.symbol, state.timeframe)
        old = self._states.get(key)
        if old is not None:
            state.slot = old.slot
        elif self._freed:
            state.slot = self._freed.pop()
        else:
            if self._free_slot == self._handles.shape[0]:
                self._handles = np.concatenate((self._handles, np.zeros_like(self._handles)))
            state.slot, self._free_slot = self._free_slot, self._free_slot + 1
        self._states[key] = state
        self._sync(state)
        return state

    def _sync(self, state: SymbolState) -> None:
        """Copy ``state``'s handles into the table (after its cells may have opened)."""
        self._handles[state.slot] = [cell.handle for cell in state.cells]

    def warm_up(self, bars: Bars) -> Result:
        """(Re)seed a symbol's state from stored ``bars``; returns their batch result."""
        state = SymbolState(self.plan, self._ps, bars.symbol, bars.timeframe)
        result = state.warm_up(bars)
        self._place(state)
        return result

    def update(self, bar: Bar) -> Snapshot:
        """Commit a closed bar; its values and the patterns it completes."""
        return self._step([bar], commit=True)[0]

    def peek(self, bar: Bar) -> Snapshot:
        """The values and patterns ``bar`` would have if it closed now; commits nothing."""
        return self._step([bar], commit=False)[0]

    def update_many(self, bars: Iterable[Bar]) -> list[Snapshot]:
        """``update`` for new bars of many symbols (in order; a symbol may repeat)."""
        snaps: list[Snapshot] = []
        for group in _session_runs(list(bars)):  # a block's bars all have a session or none
            result = self.update_block(Block.of(group))
            found: dict[int, list[Detection]] = {}
            for row, detection in result.detections:
                found.setdefault(row, []).append(detection)
            snaps.extend(
                Snapshot(bar.symbol, bar.timeframe, bar.ts, dict(zip(result.names, values, strict=True)),
                         tuple(found.get(i, ())))
                for i, (bar, values) in enumerate(zip(group, result.values.tolist(), strict=True)))
        return snaps

    def update_block(self, block: Block) -> BlockResult:
        """``update`` for each bar of ``block`` in order (a symbol may repeat), as columns:
        each indicator advances every symbol's state in one call (TA-Lib handles in one
        compiled loop, ``TalibCell.update_many``), the patterns of the newest bars are found
        in one frame. The same numbers as ``update`` a bar at a time."""
        names = self.plan.columns
        values = np.empty((len(block), len(names)), dtype=np.float64)
        parts: list[FoundRows] = []
        for rows in _distinct_rows(block):  # runs of consecutive rows: detections stay in order
            values[rows], found = self._update_rows(block, rows)
            parts.append(found)
        return BlockResult(names, values, FoundRows.concat(self._ps.names, parts), block)

    def _update_rows(self, block: Block, rows: IntArray) -> tuple[FloatArray, FoundRows]:
        """Commit the bars ``rows`` of ``block`` (no symbol and timeframe twice); their values
        and the detections on them (on their rows of ``block``)."""
        picked = rows.tolist()
        keys = list(zip([block.symbols[i] for i in picked], [block.timeframes[i] for i in picked],
                        strict=True))
        known = list(map(self._states.get, keys))  # a burst's states all exist but new ones'
        states = cast(list[SymbolState], known) if None not in known else [
            state or self._state(*key) for state, key in zip(known, keys, strict=True)]
        ts = block.ts[rows]
        for state, t in zip(states, ts.tolist(), strict=True):
            if state.last_ts is not None and t <= state.last_ts:
                raise DataValidationError(
                    f"{state.symbol}/{state.timeframe}: bar at {t} is not after the last "
                    f"committed bar at {state.last_ts}"
                )
        cols: dict[str, FloatArray | IntArray] = {
            TS: ts, OPEN: block.open[rows], HIGH: block.high[rows], LOW: block.low[rows],
            CLOSE: block.close[rows], VOLUME: block.volume[rows], DAILY_TREND: block.daily_trend[rows],
        }
        if block.session is not None:
            cols[SESSION] = block.session[rows]
        handles = self._handles[np.fromiter((s.slot for s in states), np.int64, len(states))]
        fallback: set[int] = set()  # rows a buffering cell answered: their handles may change
        for j, spec in enumerate(self.plan.indicators):
            column = self._cell_of[j]
            if column is None:
                outputs = _update_streams([state.streams[j] for state in states], cols)
            else:
                stream = states[0].streams[j]
                assert isinstance(stream, TalibStream)
                answer = _update_cells(states, column, handles[:, column],
                                       [np.asarray(cols[name], dtype=np.float64) for name in stream.inputs],
                                       fallback)
                outputs = tuple(answer[:, k] for k in range(answer.shape[1]))
            cols.update(zip(spec.columns, outputs, strict=True))
        prices = [np.asarray(cols[name], dtype=np.float64) for name in CANDLE_INPUTS]
        first = handles.shape[1] - len(self._ps.candles)
        raw = np.column_stack(
            [_update_cells(states, first + k, handles[:, first + k], prices, fallback)[:, 0]
             for k in range(len(self._ps.candles))]
        ) if self._ps.candles else np.zeros((len(states), 0))
        for i in fallback:
            self._sync(states[i])
        values = np.column_stack([np.asarray(cols[name], dtype=np.float64) for name in self.plan.columns])
        window_rows = np.column_stack(
            [np.asarray(cols[name], dtype=np.float64) for name in states[0].columns])
        segments, frame, last = _frame(states, window_rows)
        reported = np.zeros(frame.pos.shape[0], dtype=np.bool_)
        reported[last] = True
        hits = _newest_candles(raw, last)
        found, scores = detect_frame(self._ps, frame, hits, reported)
        owner = np.searchsorted(last, found.index)  # each detection's segment: its bar
        for state, segment, t in zip(states, segments, ts.tolist(), strict=True):
            state.window = segment[-state.keep :] if state.keep else state.window
            state.last_ts = t
        return values, FoundRows(self._ps.names, rows[owner], found, scores)

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
            det = Detections(bar.symbol, bar.timeframe, self._ps.names, ts, own, scores.take(rows))
            snaps[k] = Snapshot(bar.symbol, bar.timeframe, bar.ts, advanced[k][0], tuple(det))
        if commit:
            for bar, state, segment in zip(bars, states, segments, strict=True):
                state.commit(bar, segment)
                self._sync(state)
        return snaps

    def last_ts(self, symbol: str, timeframe: str) -> int | None:
        """The last committed bar time of a symbol, ``None`` if it has no state."""
        state = self._states.get((symbol, timeframe))
        return None if state is None else state.last_ts

    def forget(self, symbol: str, timeframe: str) -> None:
        """Drop a symbol's state (delisted, or to re-warm it); its row of the handle table
        goes to the next new state (its handles close with its cells)."""
        state = self._states.pop((symbol, timeframe), None)
        if state is not None:
            self._handles[state.slot] = 0
            self._freed.append(state.slot)

    @property
    def slots(self) -> int:
        """Rows of the handle table in use or held for a state (forgotten ones are reused)."""
        return self._free_slot - len(self._freed)


_NO_ROWS = np.zeros(0, dtype=np.int64)


def _frame(states: list[SymbolState], rows: list[list[float]] | FloatArray
           ) -> tuple[list[np.ndarray], Frame, np.ndarray]:
    """Each state's window with its new row under it (its segment), all segments as one
    detection frame, and the frame row of each new row. When every window is full -- every
    bar of a burst after the warm-up -- the segments are stacked in two numpy calls."""
    columns = states[0].columns
    new = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns))
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


def _newest_candles(raws: list[list[float]] | FloatArray, last: np.ndarray) -> CandleHits:
    """Candle hits of each segment's newest row (``last[k]``), by row then pattern."""
    raw = np.asarray(raws, dtype=np.float64)  # [segment, pattern]
    if raw.ndim != 2 or not raw.shape[1]:
        return CandleHits(_NO_ROWS, _NO_ROWS, np.zeros(0, dtype=np.float64))
    seg, pattern = np.nonzero((raw != 0) & ~np.isnan(raw))  # NaN: a bar a cell could not read
    return CandleHits(pattern.astype(np.int64), last[seg], raw[seg, pattern])


def _update_cells(states: list[SymbolState], column: int, handles: np.ndarray,
                  inputs: list[FloatArray], fallback: set[int]) -> FloatArray:
    """Cell ``column`` of each state updated with its row of ``inputs`` (``update_cells``);
    the rows a buffering cell answered join ``fallback``."""
    out, buffering = update_cells(states[0].cells[column].function, handles, inputs,
                                  lambda i: states[i].cells[column])
    fallback.update(buffering)
    return out


def _update_streams(streams: list[IndicatorStream], cols: Columns) -> tuple[FloatArray, ...]:
    """``update`` of ``streams[i]`` (one kernel's) with row ``i`` of ``cols``: in one call
    where the stream type has ``update_many``, else row by row."""
    many = getattr(type(streams[0]), "update_many", None)
    if many is not None:
        return tuple(many(streams, cols))
    lists = {name: np.asarray(col).tolist() for name, col in cols.items()}
    outs = [stream.update({name: col[i] for name, col in lists.items()})
            for i, stream in enumerate(streams)]
    return tuple(np.array(col, dtype=np.float64) for col in zip(*outs, strict=True))


def _session_runs(bars: list[Bar]) -> list[list[Bar]]:
    """``bars`` cut into consecutive runs that all have a session or all have none."""
    runs: list[list[Bar]] = []
    for bar in bars:
        if runs and (runs[-1][-1].session is None) == (bar.session is None):
            runs[-1].append(bar)
        else:
            runs.append([bar])
    return runs


def _distinct_rows(block: Block) -> list[IntArray]:
    """The rows of ``block`` cut into consecutive runs in which no symbol and timeframe
    repeats."""
    runs: list[IntArray] = []
    seen: set[tuple[str, str]] = set()
    start = 0
    for i, key in enumerate(zip(block.symbols, block.timeframes, strict=True)):
        if key in seen:
            runs.append(np.arange(start, i, dtype=np.int64))
            seen.clear()
            start = i
        seen.add(key)
    if len(block) > start:
        runs.append(np.arange(start, len(block), dtype=np.int64))
    return runs


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
