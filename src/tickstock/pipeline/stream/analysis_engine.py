"""The stream's ``LiveEngine`` on ``tickstock.analysis``'s incremental engine.

The same specs, kernels and pattern detectors as the nightly batch run, one bar at a time: a
closed bar's values and detections equal ``analysis.batch.compute`` over the same stored bars.
The live set (``LIVE_SPECS``) is a subset of the catalogue chosen for a minute-boundary burst
of thousands of symbols: the indicators the dashboard and the alert rules read, and patterns
whose inputs need no daily context. Analysis knows no calendar, so the session each bar belongs
to (for the session VWAP and intraday relative volume) is looked up here.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import datetime
from math import isfinite
from operator import attrgetter

import numpy as np

from tickstock.analysis import Bar, Bars, Snapshot, Spec, get
from tickstock.analysis.bars import datetime_to_ns, ns_to_datetime
from tickstock.analysis.incremental import Block, Engine
from tickstock.analysis.plan import Plan
from tickstock.analysis.results import Detection as AnalysisDetection
from tickstock.analysis.results import FoundRows
from tickstock.contracts.common import Timeframe
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.engine import BarAnalysis, ChunkAnalysis, Detection, detection_of
from tickstock.pipeline.stream.sessions import SessionLookup

#: Canonical names (``tickstock.analysis.registry``) of what the stream computes live.
LIVE_SPEC_NAMES: tuple[str, ...] = (
    "rsi_14", "sma_20", "ema_20", "vwap", "macd_12_26_9", "bbands_20_2",
    "cdl_engulfing", "cdl_hammer", "cdl_shootingstar", "cdl_morningstar", "cdl_eveningstar",
    "volume_surge", "rsi_oversold_entry", "rsi_overbought_entry",
    "bb_break_upper", "bb_break_lower", "cross_above_sma_50", "cross_below_sma_50",
)


def live_specs(names: Iterable[str] = LIVE_SPEC_NAMES) -> tuple[Spec, ...]:
    """Specs by canonical name; an unknown name is a NotFoundError naming it."""
    return tuple(get(name) for name in names)


_SYMBOL, _TIMEFRAME, _START = attrgetter("symbol"), attrgetter("timeframe"), attrgetter("start")
_PRICES = attrgetter("open", "high", "low", "close", "volume", "daily_trend")


def bar_columns(bars: Sequence[LiveBar]) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """What the analysis reads of ``bars``, as columns: symbols, timeframes, start times
    (epoch ns) and a ``[bars, 6]`` array of open, high, low, close, volume and daily trend.
    (Read with ``attrgetter`` and ``map``: a burst is thousands of bars with a handful of
    start times, each converted once.)"""
    starts = list(map(_START, bars))
    ns = {start: datetime_to_ns(start) for start in set(starts)}
    prices = np.array(list(map(_PRICES, bars)), dtype=np.float64).reshape(len(bars), 6)
    return (list(map(_SYMBOL, bars)), [tf.value for tf in map(_TIMEFRAME, bars)],
            np.array(list(map(ns.__getitem__, starts)), dtype=np.int64), prices)


def warmup_bars(p: Plan) -> int:
    """Stored bars a (symbol, timeframe) is warmed from: recursive indicators (EMA, RSI, MACD)
    converge over a few times their period."""
    return max(p.warmup * 3, 60)


class AnalysisLiveEngine:
    """``LiveEngine`` over ``analysis.incremental.Engine`` for ``specs``."""

    def __init__(self, sessions: SessionLookup, specs: Sequence[Spec] | None = None) -> None:
        self.sessions = sessions
        self.engine = Engine(live_specs() if specs is None else specs)
        # a burst is thousands of bars with one start time: convert each time once
        self._times: dict[datetime, tuple[int, int]] = {}
        self._sessions: dict[int, int] = {}  # a bar's start -> its session's open, epoch ns

    def warmup_bars(self, timeframe: Timeframe) -> int:
        return warmup_bars(self.engine.plan)

    def warm(self, history: Sequence[LiveBar]) -> dict[str, float]:
        if not history:
            return {}
        first = history[0]
        bars = Bars(
            first.symbol, first.timeframe.value,
            np.array([datetime_to_ns(b.start) for b in history], dtype=np.int64),
            np.array([b.open for b in history]), np.array([b.high for b in history]),
            np.array([b.low for b in history]), np.array([b.close for b in history]),
            np.array([b.volume for b in history]),
            session=np.array([self._ns(b.start)[1] for b in history], dtype=np.int64),
            daily_trend=np.array([b.daily_trend for b in history]),
        )
        return self.engine.warm_up(bars).latest()

    def warm_many(self, histories: Sequence[Sequence[LiveBar]]) -> list[dict[str, float]]:
        return [self.warm(history) for history in histories]

    def update(self, bar: LiveBar) -> BarAnalysis:
        return _analysis(self.engine.update(self._bar(bar)))

    def update_many(self, bars: Sequence[LiveBar]) -> list[BarAnalysis]:
        # one detection pass over every symbol's newest bar: what makes a burst affordable
        return [_analysis(s) for s in self.engine.update_many([self._bar(b) for b in bars])]

    def update_packed(self, bars: Sequence[LiveBar]) -> tuple[tuple[str, ...], np.ndarray, FoundRows]:
        """``update_many`` as columns: the value columns' names, one row of values a bar
        (non-finite where a value is not defined) and the detections as columns -- no dict
        and no object a bar (the engine advances the whole chunk column by column,
        ``Engine.update_block``)."""
        return self.update_columns(*bar_columns(bars))

    def update_columns(self, symbols: list[str], timeframes: list[str], ts: np.ndarray,
                       prices: np.ndarray) -> tuple[tuple[str, ...], np.ndarray, FoundRows]:
        """``update_packed`` of bars given as columns (``bar_columns``): how an analysis
        process receives them -- arrays pickle in one piece, bar objects with their
        datetimes one field at a time."""
        sessions = self._sessions
        for t in set(ts.tolist()) - sessions.keys():
            if len(sessions) > 4096:
                sessions.clear()
            session = self.sessions.session_of(ns_to_datetime(t))
            sessions[t] = datetime_to_ns(session.open) if session else t
        columns = [np.ascontiguousarray(prices[:, k]) for k in range(6)]
        block = Block(symbols, timeframes, ts, columns[0], columns[1], columns[2], columns[3],
                      columns[4], columns[5],
                      session=np.array([sessions[t] for t in ts.tolist()], dtype=np.int64))
        result = self.engine.update_block(block)
        return result.names, result.values, result.found

    def update_chunks(self, chunks: Sequence[Sequence[LiveBar]]
                      ) -> Generator[ChunkAnalysis, None, None]:
        for chunk in chunks:
            yield ChunkAnalysis.of(*self.update_packed(chunk))

    def peek(self, bar: LiveBar) -> BarAnalysis:
        return _analysis(self.engine.peek(self._bar(bar)))

    def close(self) -> None:
        """Nothing to release: the state is this process's memory."""

    def _bar(self, bar: LiveBar) -> Bar:
        ts, session = self._ns(bar.start)
        return Bar(bar.symbol, bar.timeframe.value, ts, bar.open, bar.high, bar.low, bar.close,
                   bar.volume, session, bar.daily_trend)

    def _ns(self, start: datetime) -> tuple[int, int]:
        """``start`` and the open of its session in epoch ns (a stored bar outside regular
        hours, an imported extended-hours minute, opens no session: its own start)."""
        hit = self._times.get(start)
        if hit is None:
            if len(self._times) > 4096:
                self._times.clear()
            session = self.sessions.session_of(start)
            ts = datetime_to_ns(start)
            hit = self._times[start] = (ts, datetime_to_ns(session.open) if session else ts)
        return hit


def _analysis(snapshot: Snapshot) -> BarAnalysis:
    values = {k: v for k, v in snapshot.values.items() if isfinite(v)}
    if not snapshot.detections:
        return BarAnalysis(values)
    return BarAnalysis(values, tuple(_detection(d) for d in snapshot.detections))


def _detection(d: AnalysisDetection) -> Detection:
    return detection_of((d.pattern, d.direction, d.strength, d.confidence, d.levels,
                         d.evidence, d.daily_agrees))
