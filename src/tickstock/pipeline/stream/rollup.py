"""Session-aware roll-up of closed minute bars into 5-minute, 15-minute and hourly bars.

Buckets are anchored at the session open and clipped at its close, so an hourly bar covers
09:30-10:30, …, 15:30-16:00 (shorter), and on an early close (13:00) the last one is 12:30-13:00.
A derived bar is stamped with its bucket start and closes as soon as its last minute arrives,
or — when that minute never comes (a symbol with no trade in it) — when a later minute of the
symbol arrives or ``flush`` is called (the service does at each minute boundary and at the
close). Until then ``forming`` shows it "so far" without committing anything.

The forming bars are columns, a row per symbol and a table per timeframe, so that a
minute-boundary burst (one minute of each of thousands of symbols) is rolled up with a few
array operations (``add_many``) rather than a Python call per minute and timeframe; ``add`` is
the same roll-up for one minute and the reference ``add_many`` is held to. Only a closing bar
becomes a ``LiveBar``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

import numpy as np

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY_MINUTES, datetime_to_ns
from tickstock.market.calendar import Session
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.sessions import SessionLookup

DERIVED: tuple[Timeframe, ...] = (Timeframe.MIN5, Timeframe.MIN15, Timeframe.HOUR)
_BUCKETS_KEPT = 4096  # (minute, timeframe) buckets remembered: a few days of minutes
#: Below this many minutes of one start time a Python loop beats the array operations' overhead.
_VECTOR_MIN = 32
_start = attrgetter("start")
_end = attrgetter("end")
_symbol = attrgetter("symbol")
_OHLCV = tuple(map(attrgetter, ("open", "high", "low", "close", "volume")))
_vwap = attrgetter("vwap")
_trades = attrgetter("trades")

# the columns of a table's float rows (``num``) and integer rows (``ints``); a None vwap or
# trades is whatever number with its ``*_KNOWN`` flag clear
OPEN, HIGH, LOW, CLOSE, VOLUME, VWAP, PV = range(7)
START, END, TRADES, ACTIVE, VWAP_KNOWN, PV_KNOWN, TRADES_KNOWN = range(7)


def bucket(session: Session, minute: datetime, timeframe: Timeframe) -> tuple[datetime, datetime]:
    """``[start, end)`` of the ``timeframe`` bucket of ``session`` holding ``minute``."""
    length = timedelta(minutes=INTRADAY_MINUTES[timeframe])
    k = (minute - session.open) // length
    start = session.open + k * length
    return start, min(start + length, session.close)


class _Table:
    """The forming bars of one timeframe, a row per symbol slot: prices, volume, vwap and
    ``pv`` (the sum of vwap * volume of the minutes, for the VWAP) in ``num``; bucket start
    and end (epoch ns), trades and the flags in ``ints``."""

    def __init__(self, timeframe: Timeframe, capacity: int) -> None:
        self.timeframe = timeframe
        self.num = np.zeros((capacity, 7), dtype=np.float64)
        self.ints = np.zeros((capacity, 7), dtype=np.int64)

    def grow(self, capacity: int) -> None:
        num = np.zeros((capacity, 7), dtype=np.float64)
        ints = np.zeros((capacity, 7), dtype=np.int64)
        num[:len(self.num)] = self.num
        ints[:len(self.ints)] = self.ints
        self.num, self.ints = num, ints


class _Minutes:
    """A run of minutes of one start and end time, one per symbol, as columns (an attribute
    at a time: ``fromiter`` over an ``attrgetter`` is the cheapest way out of 5,000 objects)."""

    def __init__(self, minutes: Sequence[LiveBar], slots: np.ndarray) -> None:
        n = len(minutes)
        self.slots = slots
        self.start = datetime_to_ns(minutes[0].start)
        self.end = datetime_to_ns(minutes[0].end)
        self.open, self.high, self.low, self.close, self.volume = (
            np.fromiter(map(get, minutes), np.float64, n) for get in _OHLCV)
        self.vwap, self.vwap_known = _column(minutes, _vwap, np.float64)
        self.trades, self.trades_known = _column(minutes, _trades, np.int64)


def _column(minutes: Sequence[LiveBar], get: attrgetter[Any], dtype: type[np.generic]
            ) -> tuple[np.ndarray, np.ndarray]:
    """An optional attribute of ``minutes`` and where it is known (not None): None is 0."""
    n = len(minutes)
    try:
        column = np.fromiter(map(get, minutes), dtype, n)
    except TypeError:  # an integer column refuses a None
        column = None
    # a float column reads a None as NaN: a NaN sends it the long way (a NaN vwap is known)
    if column is not None and not (column.dtype.kind == "f" and np.isnan(column).any()):
        return column, np.ones(n, dtype=bool)
    values = list(map(get, minutes))
    known = np.fromiter((v is not None for v in values), bool, n)
    return np.array([0 if v is None else v for v in values], dtype=dtype), known


class Rollup:
    """Roll-ups of every symbol into ``timeframes``; feed it each symbol's minutes in order.

    ``add_many`` rolls a run of at least ``batch_min`` minutes of one start time with array
    operations (a test sets 1 to hold them to ``add`` on a few symbols).
    """

    def __init__(self, sessions: SessionLookup, timeframes: tuple[Timeframe, ...] = DERIVED,
                 *, batch_min: int = _VECTOR_MIN) -> None:
        unknown = [tf for tf in timeframes if tf not in DERIVED]
        if unknown:
            raise ValueError(f"cannot roll minute bars up into {unknown}; use {list(DERIVED)}")
        self.sessions = sessions
        self.timeframes = timeframes
        self.batch_min = batch_min
        self._slot: dict[str, int] = {}
        self._symbols: list[str] = []
        self._tables = {tf: _Table(tf, 1024) for tf in timeframes}
        # (minute start, timeframe) -> bucket start, end and their epoch ns
        self._buckets: dict[tuple[datetime, Timeframe], tuple[int, int]] = {}
        self._times: dict[int, datetime] = {}  # epoch ns -> the datetime, of bucket bounds
        self._ns: dict[datetime, int] = {}  # a minute's start or end -> epoch ns

    def add(self, minute: LiveBar) -> list[LiveBar]:
        """Add a closed minute bar; return the derived bars it closes (oldest first).

        Minutes outside regular hours are not rolled up.
        """
        session = self.sessions.session_of(minute.start)
        if session is None:
            return []
        # runs for every minute of a replay or a warm-up: one close list only when one closes
        closed: list[LiveBar] = []
        slot = self._slot.get(minute.symbol)
        if slot is None:
            slot = self._new_slot(minute.symbol)
        start, end = self._minute_ns(minute.start), self._minute_ns(minute.end)
        for tf, table in self._tables.items():
            ints = table.ints[slot].tolist()
            if ints[ACTIVE] and start >= ints[END]:
                closed.append(self._bar(tf, slot, table.num[slot].tolist(), ints))
                ints[ACTIVE] = 0
            if ints[ACTIVE]:
                num = table.num[slot].tolist()
                _extend(num, ints, minute)
            else:
                num, ints = _open(minute, self._bucket(session, minute.start, tf))
            if end >= ints[END]:
                closed.append(self._bar(tf, slot, num, ints))
                ints[ACTIVE] = 0
            table.num[slot] = num
            table.ints[slot] = ints
        if len(closed) > 1:
            closed.sort(key=_start)
        return closed

    def add_many(self, minutes: Sequence[LiveBar]) -> list[LiveBar]:
        """``add`` each minute in order; return the derived bars they close: the same bars and
        forming state as ``add`` one at a time, a symbol's bars of a timeframe oldest first.

        A run of minutes of one start time, one per symbol (a burst), is rolled up with array
        operations; anything else (a symbol twice, a short run) goes through ``add``.
        """
        if not minutes or not self._tables:
            return []
        starts = list(map(_start, minutes))
        if starts.count(starts[0]) == len(starts):
            return self._add_run(minutes)
        closed: list[LiveBar] = []
        for _, run in itertools.groupby(minutes, key=_start):
            closed.extend(self._add_run(list(run)))
        return closed

    def forming(self, symbol: str, timeframe: Timeframe) -> LiveBar | None:
        """The bar still forming for ``symbol`` (a copy: changing it changes nothing)."""
        slot, table = self._slot.get(symbol), self._tables.get(timeframe)
        if slot is None or table is None:
            return None
        ints = table.ints[slot].tolist()
        if not ints[ACTIVE]:
            return None
        return self._bar(timeframe, slot, table.num[slot].tolist(), ints)

    def flush(self, before: datetime, skip: frozenset[str] | set[str] = frozenset()) -> list[LiveBar]:
        """Close every forming bar whose end is at or before ``before`` (symbols in ``skip``
        excepted: their missing minutes are still coming, e.g. from a gap repair); oldest
        first."""
        cutoff, n = datetime_to_ns(before), len(self._symbols)
        held = [self._slot[s] for s in skip if s in self._slot]
        closed: list[LiveBar] = []
        for tf, table in self._tables.items():
            ints = table.ints[:n]
            due = (ints[:, ACTIVE] != 0) & (ints[:, END] <= cutoff)
            due[held] = False
            slots = np.flatnonzero(due)
            if len(slots):
                closed.extend(self._bars(tf, slots, table.num[slots], table.ints[slots]))
                table.ints[slots, ACTIVE] = 0
        closed.sort(key=_start)
        return closed

    # -- a burst ---------------------------------------------------------------------------------

    def _add_run(self, run: Sequence[LiveBar]) -> list[LiveBar]:
        """Minutes of one start time: with array operations when they are one per symbol and
        enough of them, else one at a time."""
        symbols = list(map(_symbol, run))
        ends = list(map(_end, run))
        if (len(run) < self.batch_min or len(set(symbols)) < len(run)
                or ends.count(ends[0]) < len(ends)):
            return [bar for minute in run for bar in self.add(minute)]
        session = self.sessions.session_of(run[0].start)
        if session is None:
            return []
        batch = _Minutes(run, self._slots(symbols))
        closed: list[LiveBar] = []
        for tf, table in self._tables.items():
            closed.extend(self._advance(table, batch, self._bucket(session, run[0].start, tf)))
        return closed

    def _advance(self, table: _Table, batch: _Minutes, bounds: tuple[int, int]) -> list[LiveBar]:
        """``add`` of a batch's minutes to one timeframe: the bars a gap closes (before the
        minute), then the bars the minutes complete."""
        slots, tf = batch.slots, table.timeframe
        num, ints = table.num[slots], table.ints[slots]
        active = ints[:, ACTIVE] != 0
        gap = active & (batch.start >= ints[:, END])
        closed = self._bars(tf, slots[gap], num[gap], ints[gap]) if gap.any() else []
        fresh = ~active | gap
        # float arithmetic as Python's: inf and NaN without warnings (the rows of fresh bars
        # are extended too, then overwritten)
        with np.errstate(all="ignore"):
            _extend_rows(num, ints, batch)
            if fresh.any():
                num[fresh], ints[fresh] = _open_rows(batch, bounds, fresh)
        done = batch.end >= ints[:, END]
        if done.any():
            closed.extend(self._bars(tf, slots[done], num[done], ints[done]))
            ints[done, ACTIVE] = 0
        table.num[slots], table.ints[slots] = num, ints
        return closed

    # -- slots, buckets, times -------------------------------------------------------------------

    def _slots(self, symbols: list[str]) -> np.ndarray:
        try:
            return np.fromiter(map(self._slot.__getitem__, symbols), np.intp, len(symbols))
        except KeyError:  # new symbols
            get = self._slot.get
            return np.array([self._new_slot(s) if get(s) is None else get(s) for s in symbols],
                            dtype=np.intp)

    def _new_slot(self, symbol: str) -> int:
        slot = self._slot[symbol] = len(self._symbols)
        self._symbols.append(symbol)
        for table in self._tables.values():
            if slot >= len(table.num):
                table.grow(2 * len(table.num))
        return slot

    def _bucket(self, session: Session, start: datetime, tf: Timeframe) -> tuple[int, int]:
        """``bucket`` in epoch ns, remembered by minute and timeframe (a burst opens thousands
        of buckets at one minute); ``_times`` keeps the datetimes of the forming bars' bounds."""
        key = (start, tf)
        hit = self._buckets.get(key)
        if hit is None:
            if len(self._buckets) >= _BUCKETS_KEPT:
                self._buckets.clear()
                self._ns.clear()
                self._times = {ns: self._times[ns] for ns in self._forming_times()}
            bounds = bucket(session, start, tf)
            hit = self._buckets[key] = (datetime_to_ns(bounds[0]), datetime_to_ns(bounds[1]))
            self._times[hit[0]], self._times[hit[1]] = bounds
        return hit

    def _forming_times(self) -> set[int]:
        n = len(self._symbols)
        times: set[int] = set()
        for table in self._tables.values():
            ints = table.ints[:n][table.ints[:n, ACTIVE] != 0]
            times.update(ints[:, START].tolist(), ints[:, END].tolist())
        return times

    def _minute_ns(self, at: datetime) -> int:
        ns = self._ns.get(at)
        if ns is None:
            ns = self._ns[at] = datetime_to_ns(at)
        return ns

    def _bar(self, tf: Timeframe, slot: int, num: list[float], ints: list[int]) -> LiveBar:
        return LiveBar(self._symbols[slot], tf, self._times[ints[START]], self._times[ints[END]],
                       num[OPEN], num[HIGH], num[LOW], num[CLOSE], num[VOLUME],
                       num[VWAP] if ints[VWAP_KNOWN] else None,
                       ints[TRADES] if ints[TRADES_KNOWN] else None)

    def _bars(self, tf: Timeframe, slots: np.ndarray, num: np.ndarray, ints: np.ndarray
              ) -> list[LiveBar]:
        """``_bar`` of each row, a column at a time (a boundary closes thousands)."""
        symbols = map(self._symbols.__getitem__, slots.tolist())
        time = self._times.__getitem__
        vwap = num[:, VWAP].astype(object)  # Python floats, None where unknown
        vwap[ints[:, VWAP_KNOWN] == 0] = None
        trades = ints[:, TRADES].astype(object)
        trades[ints[:, TRADES_KNOWN] == 0] = None
        return list(map(LiveBar, symbols, itertools.repeat(tf, len(slots)),
                        map(time, ints[:, START].tolist()), map(time, ints[:, END].tolist()),
                        *num[:, :VWAP].T.tolist(), vwap.tolist(), trades.tolist()))


def _open(minute: LiveBar, bounds: tuple[int, int]) -> tuple[list[float], list[int]]:
    """A bar's rows from its first minute."""
    known = minute.vwap is not None
    vwap = math.nan if minute.vwap is None else minute.vwap
    num = [minute.open, minute.high, minute.low, minute.close, minute.volume, vwap,
           (minute.vwap or 0.0) * minute.volume]
    trades = minute.trades
    ints = [bounds[0], bounds[1], trades or 0, 1, known, known, trades is not None]
    return num, ints


def _extend(num: list[float], ints: list[int], minute: LiveBar) -> None:
    """Add ``minute`` to a forming bar's rows (``_extend_rows`` is the same for a batch)."""
    num[HIGH] = max(num[HIGH], minute.high)
    num[LOW] = min(num[LOW], minute.low)
    num[CLOSE] = minute.close
    num[VOLUME] += minute.volume
    if ints[TRADES_KNOWN] or minute.trades is not None:
        ints[TRADES] += minute.trades or 0
        ints[TRADES_KNOWN] = 1
    if minute.vwap is None:
        ints[PV_KNOWN] = 0
    else:
        num[PV] += minute.vwap * minute.volume
    if ints[PV_KNOWN] and num[VOLUME] > 0:
        num[VWAP], ints[VWAP_KNOWN] = num[PV] / num[VOLUME], 1
    elif not ints[PV_KNOWN] or num[VOLUME] == 0:
        num[VWAP], ints[VWAP_KNOWN] = math.nan, 0


def _extend_rows(num: np.ndarray, ints: np.ndarray, m: _Minutes) -> None:
    """``_extend`` of every row of ``num``/``ints`` by its minute of ``m``, in place; high and
    low as ``max`` and ``min`` pick them (the first unless the second is greater/less: NaN
    included)."""
    num[:, HIGH] = np.where(m.high > num[:, HIGH], m.high, num[:, HIGH])
    num[:, LOW] = np.where(m.low < num[:, LOW], m.low, num[:, LOW])
    num[:, CLOSE] = m.close
    num[:, VOLUME] += m.volume
    ints[:, TRADES] += m.trades  # 0 where unknown
    ints[:, TRADES_KNOWN] |= m.trades_known
    num[:, PV] = np.where(m.vwap_known, num[:, PV] + m.vwap * m.volume, num[:, PV])
    ints[:, PV_KNOWN] &= m.vwap_known
    pv_known, volume = ints[:, PV_KNOWN] != 0, num[:, VOLUME]
    ratio = pv_known & (volume > 0)
    unknown = ~ratio & (~pv_known | (volume == 0))
    num[:, VWAP] = np.where(ratio, num[:, PV] / volume, num[:, VWAP])
    num[unknown, VWAP] = np.nan
    ints[:, VWAP_KNOWN] = np.where(ratio, 1, np.where(unknown, 0, ints[:, VWAP_KNOWN]))


def _open_rows(m: _Minutes, bounds: tuple[int, int], rows: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``_open`` of the minutes of ``m`` at ``rows`` (a mask)."""
    known = m.vwap_known[rows]
    pv = np.where(known, m.vwap[rows], 0.0) * m.volume[rows]
    num = np.column_stack((m.open[rows], m.high[rows], m.low[rows], m.close[rows],
                           m.volume[rows], m.vwap[rows], pv))
    ones = np.ones(len(pv), dtype=np.int64)
    ints = np.column_stack((bounds[0] * ones, bounds[1] * ones, m.trades[rows], ones, known,
                            known, m.trades_known[rows])).astype(np.int64)
    return num, ints
