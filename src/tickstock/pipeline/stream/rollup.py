"""Session-aware roll-up of closed minute bars into 5-minute, 15-minute and hourly bars.

Buckets are anchored at the session open and clipped at its close, so an hourly bar covers
09:30-10:30, …, 15:30-16:00 (shorter), and on an early close (13:00) the last one is 12:30-13:00.
A derived bar is stamped with its bucket start and closes as soon as its last minute arrives,
or — when that minute never comes (a symbol with no trade in it) — when a later minute of the
symbol arrives or ``flush`` is called (the service does at each minute boundary and at the
close). Until then ``forming`` shows it "so far" without committing anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY_MINUTES
from tickstock.market.calendar import Session
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.sessions import SessionLookup

DERIVED: tuple[Timeframe, ...] = (Timeframe.MIN5, Timeframe.MIN15, Timeframe.HOUR)
_BUCKETS_KEPT = 4096  # (minute, timeframe) buckets remembered: a few days of minutes
_start = attrgetter("start")


def bucket(session: Session, minute: datetime, timeframe: Timeframe) -> tuple[datetime, datetime]:
    """``[start, end)`` of the ``timeframe`` bucket of ``session`` holding ``minute``."""
    length = timedelta(minutes=INTRADAY_MINUTES[timeframe])
    k = (minute - session.open) // length
    start = session.open + k * length
    return start, min(start + length, session.close)


@dataclass(slots=True)
class _Forming:
    bar: LiveBar
    pv: float  # sum of vwap * volume of the minutes, for the bar's VWAP
    pv_known: bool


class Rollup:
    """Roll-ups of every symbol into ``timeframes``; feed it each symbol's minutes in order."""

    def __init__(self, sessions: SessionLookup, timeframes: tuple[Timeframe, ...] = DERIVED) -> None:
        unknown = [tf for tf in timeframes if tf not in DERIVED]
        if unknown:
            raise ValueError(f"cannot roll minute bars up into {unknown}; use {list(DERIVED)}")
        self.sessions = sessions
        self.timeframes = timeframes
        self._forming: dict[tuple[str, Timeframe], _Forming] = {}
        self._buckets: dict[tuple[datetime, Timeframe], tuple[datetime, datetime]] = {}

    def add(self, minute: LiveBar) -> list[LiveBar]:
        """Add a closed minute bar; return the derived bars it closes (oldest first).

        Minutes outside regular hours are not rolled up.
        """
        session = self.sessions.session_of(minute.start)
        if session is None:
            return []
        # runs for every minute of a burst: locals, and one close list only when one closes
        closed: list[LiveBar] = []
        forming, symbol, start = self._forming, minute.symbol, minute.start
        for tf in self.timeframes:
            key = (symbol, tf)
            current = forming.get(key)
            if current is not None and start >= current.bar.end:
                closed.append(current.bar)
                current = None
            if current is None:
                current = forming[key] = self._open(minute, tf, *self._bucket(session, start, tf))
            else:
                _extend(current, minute)
            if minute.end >= current.bar.end:
                closed.append(current.bar)
                del forming[key]
        if len(closed) > 1:
            closed.sort(key=_start)
        return closed

    def forming(self, symbol: str, timeframe: Timeframe) -> LiveBar | None:
        """The bar still forming for ``symbol`` (a copy: changing it changes nothing)."""
        current = self._forming.get((symbol, timeframe))
        return current.bar.copy() if current is not None else None

    def flush(self, before: datetime, skip: frozenset[str] | set[str] = frozenset()) -> list[LiveBar]:
        """Close every forming bar whose end is at or before ``before`` (symbols in ``skip``
        excepted: their missing minutes are still coming, e.g. from a gap repair)."""
        due = [(k, f) for k, f in self._forming.items()
               if f.bar.end <= before and k[0] not in skip]
        return [self._close(k, f) for k, f in sorted(due, key=lambda kf: kf[1].bar.start)]

    def _bucket(self, session: Session, start: datetime, tf: Timeframe) -> tuple[datetime, datetime]:
        """``bucket``, remembered by minute and timeframe (a burst opens thousands of buckets
        at one minute)."""
        key = (start, tf)
        hit = self._buckets.get(key)
        if hit is None:
            if len(self._buckets) >= _BUCKETS_KEPT:
                self._buckets.clear()
            hit = self._buckets[key] = bucket(session, start, tf)
        return hit

    def _open(self, minute: LiveBar, tf: Timeframe, start: datetime, end: datetime) -> _Forming:
        bar = LiveBar(minute.symbol, tf, start, end, minute.open, minute.high, minute.low,
                      minute.close, minute.volume, minute.vwap, minute.trades)
        known = minute.vwap is not None
        return _Forming(bar, (minute.vwap or 0.0) * minute.volume, known)

    def _close(self, key: tuple[str, Timeframe], current: _Forming) -> LiveBar:
        del self._forming[key]
        return current.bar


def _extend(current: _Forming, minute: LiveBar) -> None:
    bar = current.bar
    bar.high = max(bar.high, minute.high)
    bar.low = min(bar.low, minute.low)
    bar.close = minute.close
    bar.volume += minute.volume
    if bar.trades is not None or minute.trades is not None:
        bar.trades = (bar.trades or 0) + (minute.trades or 0)
    if minute.vwap is None:
        current.pv_known = False
    else:
        current.pv += minute.vwap * minute.volume
    if current.pv_known and bar.volume > 0:
        bar.vwap = current.pv / bar.volume
    elif not current.pv_known or math.isclose(bar.volume, 0.0):
        bar.vwap = None
