"""Which session a bar belongs to, answered from the NYSE calendar with a per-day cache.

A live burst asks this for every bar, so the calendar's binary search is memoised by New York
date (a day is either a session, with its open and close, or not) and the answer by bar time.
"""

from __future__ import annotations

from datetime import date, datetime

from tickstock.core.errors import NotFoundError
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import MarketCalendar, Session

_TIMES_KEPT = 4096  # bar start times remembered: a few days of minutes and their buckets


class SessionLookup:
    """``session_of(t)``: the session whose regular hours ``[open, close)`` contain ``t``."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar
        self._by_day: dict[date, Session | None] = {}
        self._by_time: dict[datetime, Session | None] = {}

    def day(self, day: date) -> Session | None:
        if day not in self._by_day:
            try:
                self._by_day[day] = self.calendar.session(day)
            except NotFoundError:
                self._by_day[day] = None
        return self._by_day[day]

    def session_of(self, at: datetime) -> Session | None:
        # a burst is thousands of bars with one start time, each looked up more than once:
        # the time zone conversion is what costs, so each time is converted once
        try:
            return self._by_time[at]
        except KeyError:
            pass
        if len(self._by_time) >= _TIMES_KEPT:
            self._by_time.clear()
        session = self.day(at.astimezone(NEW_YORK).date())
        if session is None or not session.open <= at < session.close:
            session = None
        self._by_time[at] = session
        return session
