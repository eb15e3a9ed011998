"""Live alerts: conditions on consecutive bars of one symbol and timeframe.

- RSI crossing its levels (default 30 and 70), both ways: entering and leaving overbought or
  oversold.
- Price crossing the session VWAP, both ways (close against VWAP, bar over bar).
- Volume surge: a bar's volume at least ``surge_factor`` times the mean of the previous
  ``surge_window`` bars (the window must be full; bars with zero volume count).

Each rule compares the bar with the previous one of the same (symbol, timeframe), so the state
is one small record per pair, warmed from stored history at start-up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import IndicatorAlert
from tickstock.pipeline.stream.bars import LiveBar

CROSS_ABOVE = "cross_above"
CROSS_BELOW = "cross_below"
PRICE_CROSS_ABOVE = "price_cross_above"
PRICE_CROSS_BELOW = "price_cross_below"
SURGE = "surge"
VOLUME = "volume"


@dataclass(frozen=True)
class AlertConfig:
    """Which indicator values the rules read (canonical analysis names) and their thresholds."""

    rsi: str = "rsi_14"
    rsi_levels: tuple[float, ...] = (30.0, 70.0)
    vwap: str = "vwap.mid"
    surge_factor: float = 3.0
    surge_window: int = 20


@dataclass
class _Last:
    close: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    volumes: deque[float] = field(default_factory=deque)


class AlertRules:
    """Evaluates the rules bar by bar; ``check`` returns the alerts a closed bar raises."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self._last: dict[tuple[str, Timeframe], _Last] = {}

    def warm(self, history: Sequence[LiveBar], values: dict[str, float] | None) -> None:
        """Seed from stored bars (oldest first) and the indicator values of the last one."""
        if not history:
            return
        last = history[-1]
        state = self._state(last.symbol, last.timeframe)
        state.volumes.clear()
        state.volumes.extend(b.volume for b in history[-self.config.surge_window:])
        state.close = last.close
        state.values = dict(values or {})

    def check(self, bar: LiveBar, values: dict[str, float]) -> list[IndicatorAlert]:
        state = self._state(bar.symbol, bar.timeframe)
        alerts = self._rsi(bar, state, values) + self._vwap(bar, state, values)
        surge = self._surge(bar, state)
        if surge is not None:
            alerts.append(surge)
        state.close = bar.close
        state.values = values
        state.volumes.append(bar.volume)
        return alerts

    def _state(self, symbol: str, timeframe: Timeframe) -> _Last:
        key = (symbol, timeframe)
        state = self._last.get(key)
        if state is None:
            state = self._last[key] = _Last(volumes=deque(maxlen=self.config.surge_window))
        return state

    def _rsi(self, bar: LiveBar, state: _Last, values: dict[str, float]) -> list[IndicatorAlert]:
        name = self.config.rsi
        now, before = values.get(name), state.values.get(name)
        if now is None or before is None:
            return []
        alerts = []
        for level in self.config.rsi_levels:
            if before <= level < now:
                alerts.append(_alert(bar, name, now, CROSS_ABOVE, threshold=level,
                           message=f"{name} crossed above {level:g} ({now:.1f})"))
            elif before >= level > now:
                alerts.append(_alert(bar, name, now, CROSS_BELOW, threshold=level,
                           message=f"{name} crossed below {level:g} ({now:.1f})"))
        return alerts

    def _vwap(self, bar: LiveBar, state: _Last, values: dict[str, float]) -> list[IndicatorAlert]:
        name = self.config.vwap
        now, before = values.get(name), state.values.get(name)
        if now is None or before is None or state.close is None:
            return []
        if state.close <= before and bar.close > now:
            return [_alert(bar, name, bar.close, PRICE_CROSS_ABOVE, threshold=now,
                           message=f"price {bar.close:g} crossed above VWAP {now:.4g}")]
        if state.close >= before and bar.close < now:
            return [_alert(bar, name, bar.close, PRICE_CROSS_BELOW, threshold=now,
                           message=f"price {bar.close:g} crossed below VWAP {now:.4g}")]
        return []

    def _surge(self, bar: LiveBar, state: _Last) -> IndicatorAlert | None:
        window = state.volumes
        if len(window) < self.config.surge_window:
            return None
        mean = sum(window) / len(window)
        threshold = self.config.surge_factor * mean
        if mean <= 0 or bar.volume < threshold:
            return None
        return _alert(bar, VOLUME, bar.volume, SURGE, threshold=threshold,
                           message=f"volume {bar.volume:g} is {bar.volume / mean:.1f}x the "
                      f"{len(window)}-bar average")


def _alert(bar: LiveBar, indicator: str, value: float, condition: str, *, threshold: float,
           message: str) -> IndicatorAlert:
    return IndicatorAlert(symbol=bar.symbol, timeframe=bar.timeframe, ts=bar.start,
                          indicator=indicator, value=value, condition=condition,
                          threshold=threshold, message=message)
