"""Minute bars built from per-second aggregates (``A`` events), for feeds run that way.

With ``bars_from="second"`` the stream subscribes the per-second channel instead of the
per-minute one and builds each symbol's minute itself: open of its first second, high and low
over its seconds, close of its last, volume summed, VWAP volume-weighted. A minute closes

- when a second of a later minute of the same symbol arrives, or
- when the feed's clock (the newest second seen for any symbol) is ``grace`` past its end — a
  symbol that stopped trading still gets its minute.

Until then ``forming`` shows it "so far". A minute that never closes (the connection dropped
inside it) is not guessed: the gap tracker finds it missing and the REST repair fetches the
provider's own bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tickstock.contracts.common import Timeframe
from tickstock.pipeline.stream.bars import MINUTE, LiveBar


@dataclass(slots=True)
class _Minute:
    bar: LiveBar
    pv: float  # sum of vwap * volume of the seconds with a VWAP


class MinuteBuilder:
    """Per-symbol forming minutes; ``add`` returns the minutes that closed (oldest first)."""

    def __init__(self, grace: timedelta = timedelta(seconds=2)) -> None:
        self.grace = grace
        self._forming: dict[str, _Minute] = {}
        self._clock: datetime | None = None

    def add(self, seconds: list[LiveBar]) -> list[LiveBar]:
        closed: list[LiveBar] = []
        for second in sorted(seconds, key=lambda b: b.start):
            start = second.start.replace(second=0, microsecond=0)
            current = self._forming.get(second.symbol)
            if current is not None and start > current.bar.start:
                closed.append(self._close(second.symbol))
                current = None
            if current is not None and start < current.bar.start:
                continue  # a straggler of a closed minute: that bar is already on its way
            if current is None:
                self._forming[second.symbol] = _open(second, start)
            else:
                _extend(current, second)
            if self._clock is None or second.end > self._clock:
                self._clock = second.end
        return closed + self._due()

    def forming(self, symbol: str) -> LiveBar | None:
        """The minute still forming for ``symbol`` (a copy)."""
        current = self._forming.get(symbol)
        return current.bar.copy() if current is not None else None

    def _due(self) -> list[LiveBar]:
        if self._clock is None:
            return []
        cutoff = self._clock - self.grace
        due = [s for s, m in self._forming.items() if m.bar.end <= cutoff]
        return sorted((self._close(s) for s in due), key=lambda b: (b.start, b.symbol))

    def _close(self, symbol: str) -> LiveBar:
        return self._forming.pop(symbol).bar


def _open(second: LiveBar, start: datetime) -> _Minute:
    bar = LiveBar(second.symbol, Timeframe.MIN1, start, start + MINUTE, second.open,
                  second.high, second.low, second.close, second.volume, second.vwap,
                  second.trades)
    return _Minute(bar, (second.vwap or 0.0) * second.volume)


def _extend(current: _Minute, second: LiveBar) -> None:
    bar = current.bar
    bar.high = max(bar.high, second.high)
    bar.low = min(bar.low, second.low)
    bar.close = second.close
    bar.volume += second.volume
    if second.trades is not None:
        bar.trades = (bar.trades or 0) + second.trades
    current.pv += (second.vwap or 0.0) * second.volume
    bar.vwap = current.pv / bar.volume if bar.volume > 0 else bar.vwap
