"""A small ``LiveEngine`` straight on TA-Lib's stream handles (RSI, SMA, EMA) plus session VWAP.

It is the light alternative to ``AnalysisLiveEngine`` (no patterns), and its indicator set is
the baseline of ``bench/stream.py`` (the bare stream updates). Values equal TA-Lib batch
output over the same bars: a handle is opened on the bars seen so far as soon as there are
enough of them, then carried forward one bar at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import talib
from talib import stream

from tickstock.contracts.common import Timeframe
from tickstock.core.timeutil import NEW_YORK
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.engine import BarAnalysis

#: name -> (TA-Lib stream function, period). All read the close.
DEFAULT_SET: dict[str, tuple[str, int]] = {
    "rsi_14": ("RSI", 14),
    "sma_20": ("SMA", 20),
    "ema_20": ("EMA", 20),
}
VWAP = "vwap.mid"  # the analysis catalogue's name of the session VWAP
_HISTORY_CAP = 400  # closes kept until every handle is open; far above any warm-up here


@dataclass
class _State:
    closes: list[float] = field(default_factory=list)
    handles: dict[str, Any] = field(default_factory=dict)
    day: date | None = None
    pv: float = 0.0
    volume: float = 0.0


class TalibLiveEngine:
    """RSI / SMA / EMA by TA-Lib stream handles and a session VWAP, per (symbol, timeframe)."""

    def __init__(self, indicators: dict[str, tuple[str, int]] | None = None) -> None:
        self.indicators = dict(DEFAULT_SET if indicators is None else indicators)
        self._states: dict[tuple[str, Timeframe], _State] = {}

    def warmup_bars(self, timeframe: Timeframe) -> int:
        return max((p for _, p in self.indicators.values()), default=1) * 5

    def warm(self, history: Sequence[LiveBar]) -> dict[str, float]:
        if not history:
            return {}
        first = history[0]
        self._states.pop((first.symbol, first.timeframe), None)
        values: dict[str, float] = {}
        for bar in history:
            values = self.update(bar).values
        return values

    def update(self, bar: LiveBar) -> BarAnalysis:
        state = self._states.get((bar.symbol, bar.timeframe))
        if state is None:
            state = self._states[(bar.symbol, bar.timeframe)] = _State()
        values: dict[str, float] = {}
        pending = len(state.handles) < len(self.indicators)
        if pending:
            state.closes.append(bar.close)
            del state.closes[:-_HISTORY_CAP]
        for name, (function, period) in self.indicators.items():
            handle = state.handles.get(name)
            if handle is None:
                handle = _open(function, period, state.closes)
                if handle is None:
                    continue
                state.handles[name] = handle
                value = float(handle.value)
            else:
                value = float(handle.update(bar.close))
            if not math.isnan(value):
                values[name] = value
        vwap = _vwap(state, bar, commit=True)
        if vwap is not None:
            values[VWAP] = vwap
        return BarAnalysis(values)

    def update_many(self, bars: Sequence[LiveBar]) -> list[BarAnalysis]:
        return [self.update(bar) for bar in bars]

    def peek(self, bar: LiveBar) -> BarAnalysis:
        state = self._states.get((bar.symbol, bar.timeframe)) or _State()
        values: dict[str, float] = {}
        for name, (function, period) in self.indicators.items():
            handle = state.handles.get(name)
            if handle is not None:
                value = float(handle.peek(bar.close))
            else:
                opened = _open(function, period, [*state.closes, bar.close])
                value = float(opened.value) if opened is not None else float("nan")
            if not math.isnan(value):
                values[name] = value
        vwap = _vwap(state, bar, commit=False)
        if vwap is not None:
            values[VWAP] = vwap
        return BarAnalysis(values)


def _open(function: str, period: int, closes: list[float]) -> Any:
    try:
        return getattr(stream, function)(np.asarray(closes, dtype=np.float64), timeperiod=period)
    except talib.InsufficientHistory:  # type: ignore[attr-defined]
        return None


def _vwap(state: _State, bar: LiveBar, *, commit: bool) -> float | None:
    """Session VWAP of the typical price; resets at each New York trading day."""
    day = bar.start.astimezone(NEW_YORK).date()
    pv, volume = (state.pv, state.volume) if day == state.day else (0.0, 0.0)
    pv += (bar.high + bar.low + bar.close) / 3.0 * bar.volume
    volume += bar.volume
    if commit:
        state.day, state.pv, state.volume = day, pv, volume
    return pv / volume if volume > 0 else None
