"""Which session a bar belongs to, answered from the NYSE calendar with a per-day cache.

A live burst asks this once per bar, so the calendar's binary search is memoised by New York
date (a day is either a session, with its open and close, or not).
"""

from __future__ import annotations

from datetime import date, datetime

from tickstock.core.errors import NotFoundError
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import MarketCalendar, Session


class SessionLookup:
    """``session_of(t)``: the session whose regular hours ``[open, close)`` contain ``t``."""

    def __init__(self, calendar: MarketCalendar) -> None:
        self.calendar = calendar
        self._by_day: dict[date, Session | None] = {}

    def day(self, day: date) -> Session | None:
        if day not in self._by_day:
            try:
                self._by_day[day] = self.calendar.session(day)
            except NotFoundError:
                self._by_day[day] = None
        return self._by_day[day]

    def session_of(self, at: datetime) -> Session | None:
        session = self.day(at.astimezone(NEW_YORK).date())
        if session is None or not session.open <= at < session.close:
            return None
        return session
