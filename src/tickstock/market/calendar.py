"""The NYSE trading calendar: sessions, holidays, early closes, open/close times.

Built from ``exchange-calendars`` (XNYS); no holiday is written by hand here. The calendar is
immutable reference data: build it once with ``nyse()`` (cached per process) and pass it down.
Every time in and out is timezone-aware UTC; a session is named by its New York date.

Questions everyone asks, and the method that answers:

    is the market open at t?              is_open(t)
    which session is trading at t?        session_at(t)
    the session of a date                 session(day)
    last session whose close has passed   last_complete_session(t)
    next open / next close after t        next_open(t), next_close(t)
    sessions between two dates            sessions(first, last)
    early closes between two dates        early_closes(first, last)
    minute bar starts of a session        session_minutes(day)
    everything at once (web status)       status(t)

Each method that takes ``at`` accepts a datetime or a ``Clock`` (its ``now()`` is read once).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from tickstock.core.clock import Clock
from tickstock.core.errors import NotFoundError
from tickstock.core.timeutil import NEW_YORK, utc

# The range the calendar covers. exchange-calendars computes holidays from rules, so the far
# future is as good as the rules; data older than 1990 is not something TickStock loads.
DEFAULT_FIRST = date(1990, 1, 1)
DEFAULT_LAST = date(2035, 12, 31)
REGULAR_CLOSE = time(16, 0)
_NS_PER_DAY = 86_400_000_000_000
_NS_PER_MIN = 60_000_000_000

Instant = datetime | Clock


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session: its New York date and its open/close instants (UTC)."""

    day: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(NEW_YORK).time() < REGULAR_CLOSE

    @property
    def minutes(self) -> int:
        return int((self.close - self.open).total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """The market at one instant, as the web status badge and the scheduler need it."""

    at: datetime
    is_open: bool
    session: Session | None  # the session trading at ``at``, if open
    next_open: datetime
    next_close: datetime
    last_complete_session: Session


def _instant(at: Instant) -> datetime:
    if isinstance(at, datetime):
        return utc(at)
    return utc(at.now())


def _ns(dt: datetime) -> int:
    dt = utc(dt)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC) + timedelta(
        microseconds=(ns % 1_000_000_000) // 1000
    )


def _day_ns(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _NS_PER_DAY


class MarketCalendar:
    """Sessions of one exchange as sorted numpy arrays (nanoseconds since the epoch, UTC)."""

    def __init__(
        self,
        name: str,
        session_days: npt.NDArray[np.int64],
        opens: npt.NDArray[np.int64],
        closes: npt.NDArray[np.int64],
    ) -> None:
        self.name = name
        self._days = session_days  # midnight UTC of each session's date, ns
        self._opens = opens
        self._closes = closes
        self.first_day = _dt(int(session_days[0])).date()
        self.last_day = _dt(int(session_days[-1])).date()

    # -- arrays for vectorised callers (synthetic market, derivation) -------------------------

    def session_arrays(
        self, first: date, last: date
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(session days, opens, closes) in ns UTC for sessions dated first..last inclusive."""
        lo, hi = self._index_range(first, last)
        return self._days[lo:hi].copy(), self._opens[lo:hi].copy(), self._closes[lo:hi].copy()

    def _index_range(self, first: date, last: date) -> tuple[int, int]:
        self._check_covered(first)
        self._check_covered(last)
        lo = int(np.searchsorted(self._days, _day_ns(first), side="left"))
        hi = int(np.searchsorted(self._days, _day_ns(last), side="right"))
        return lo, hi

    def _check_covered(self, day: date) -> None:
        if not self.first_day - timedelta(days=7) <= day <= self.last_day + timedelta(days=7):
            raise NotFoundError(
                f"{day} is outside the {self.name} calendar ({self.first_day}..{self.last_day})"
            )

    def _session(self, index: int) -> Session:
        return Session(
            day=_dt(int(self._days[index])).date(),
            open=_dt(int(self._opens[index])),
            close=_dt(int(self._closes[index])),
        )

    # -- dates ---------------------------------------------------------------------------------

    def is_session(self, day: date) -> bool:
        """True when the exchange trades on ``day`` (a New York date)."""
        self._check_covered(day)
        i = int(np.searchsorted(self._days, _day_ns(day)))
        return i < len(self._days) and int(self._days[i]) == _day_ns(day)

    def session(self, day: date) -> Session:
        """The session dated ``day``; NotFoundError on weekends and holidays."""
        self._check_covered(day)
        i = int(np.searchsorted(self._days, _day_ns(day)))
        if i >= len(self._days) or int(self._days[i]) != _day_ns(day):
            raise NotFoundError(f"{day} is not a {self.name} session (weekend or holiday)")
        return self._session(i)

    def sessions(self, first: date, last: date) -> list[Session]:
        """Sessions dated ``first`` through ``last``, both inclusive, oldest first."""
        lo, hi = self._index_range(first, last)
        return [self._session(i) for i in range(lo, hi)]

    def session_days(self, first: date, last: date) -> list[date]:
        """Dates of the sessions ``first`` through ``last`` inclusive."""
        lo, hi = self._index_range(first, last)
        return [_dt(int(d)).date() for d in self._days[lo:hi]]

    def previous_session(self, day: date) -> Session:
        """The last session dated strictly before ``day``."""
        self._check_covered(day)
        i = int(np.searchsorted(self._days, _day_ns(day), side="left")) - 1
        if i < 0:
            raise NotFoundError(f"no {self.name} session before {day}")
        return self._session(i)

    def next_session(self, day: date) -> Session:
        """The first session dated strictly after ``day``."""
        self._check_covered(day)
        i = int(np.searchsorted(self._days, _day_ns(day), side="right"))
        if i >= len(self._days):
            raise NotFoundError(f"no {self.name} session after {day}")
        return self._session(i)

    def early_closes(self, first: date, last: date) -> list[Session]:
        """Sessions between ``first`` and ``last`` (inclusive) that close before 16:00 New York."""
        return [s for s in self.sessions(first, last) if s.early_close]

    def session_minutes(self, day: date) -> list[datetime]:
        """Start times of every one-minute bar of the session: open, open+1m, ..., close-1m."""
        s = self.session(day)
        return [s.open + timedelta(minutes=m) for m in range(s.minutes)]

    def session_minutes_ns(self, first: date, last: date) -> npt.NDArray[np.int64]:
        """Minute bar starts (ns UTC) of every session first..last inclusive, ascending."""
        lo, hi = self._index_range(first, last)
        opens, closes = self._opens[lo:hi], self._closes[lo:hi]
        counts = (closes - opens) // _NS_PER_MIN
        if counts.size == 0:
            return np.empty(0, dtype=np.int64)
        starts = np.repeat(opens, counts)
        offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(counts) - counts, counts
        )
        result: npt.NDArray[np.int64] = starts + offsets * _NS_PER_MIN
        return result

    # -- instants ------------------------------------------------------------------------------

    def session_at(self, at: Instant) -> Session | None:
        """The session whose [open, close) contains ``at``, or None when the market is closed."""
        t = _ns(_instant(at))
        i = int(np.searchsorted(self._opens, t, side="right")) - 1
        if i >= 0 and t < int(self._closes[i]):
            return self._session(i)
        return None

    def is_open(self, at: Instant) -> bool:
        """True during regular trading hours (open inclusive, close exclusive)."""
        return self.session_at(at) is not None

    def last_complete_session(self, at: Instant) -> Session:
        """The latest session whose close is at or before ``at``."""
        moment = _instant(at)
        self._check_covered(moment.date())
        i = int(np.searchsorted(self._closes, _ns(moment), side="right")) - 1
        if i < 0:
            raise NotFoundError(f"no complete {self.name} session before {moment.isoformat()}")
        return self._session(i)

    def next_open(self, at: Instant) -> datetime:
        """The first session open strictly after ``at``."""
        moment = _instant(at)
        self._check_covered(moment.date())
        i = int(np.searchsorted(self._opens, _ns(moment), side="right"))
        if i >= len(self._opens):
            raise NotFoundError(f"no {self.name} open after {moment.isoformat()}")
        return _dt(int(self._opens[i]))

    def next_close(self, at: Instant) -> datetime:
        """The first session close strictly after ``at`` (today's close while open)."""
        moment = _instant(at)
        self._check_covered(moment.date())
        i = int(np.searchsorted(self._closes, _ns(moment), side="right"))
        if i >= len(self._closes):
            raise NotFoundError(f"no {self.name} close after {moment.isoformat()}")
        return _dt(int(self._closes[i]))

    def status(self, at: Instant) -> MarketStatus:
        """Open or closed at ``at``, with the session, next open/close and last complete one."""
        moment = _instant(at)
        session = self.session_at(moment)
        return MarketStatus(
            at=moment,
            is_open=session is not None,
            session=session,
            next_open=self.next_open(moment),
            next_close=self.next_close(moment),
            last_complete_session=self.last_complete_session(moment),
        )


def exchange_calendar(name: str, first: date, last: date) -> Any:
    """The ``exchange_calendars`` object itself (for tests and rare callers needing more)."""
    import exchange_calendars as xcals  # heavy (pandas); imported on first use only

    with warnings.catch_warnings():
        # exchange-calendars 4.13 reads Series.values, which pandas 3.1 deprecates; harmless.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return xcals.get_calendar(name, start=first.isoformat(), end=last.isoformat())


def _build(name: str, first: date, last: date) -> MarketCalendar:
    cal = exchange_calendar(name, first, last)
    days = np.asarray(cal.sessions_nanos, dtype=np.int64)
    opens = np.asarray(cal.opens_nanos, dtype=np.int64)
    closes = np.asarray(cal.closes_nanos, dtype=np.int64)
    return MarketCalendar(name, days, opens, closes)


@cache
def nyse(first: date = DEFAULT_FIRST, last: date = DEFAULT_LAST) -> MarketCalendar:
    """The NYSE (XNYS) calendar for ``first``..``last``; built once per process and range."""
    return _build("XNYS", first, last)
