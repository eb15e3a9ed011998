"""SessionLookup answers from its caches exactly what the calendar says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import nyse
from tickstock.pipeline.stream.sessions import SessionLookup

CALENDAR = nyse()


def _oracle(at: datetime) -> date | None:
    """The session day holding ``at`` in regular hours, straight from the calendar."""
    calendar = CALENDAR
    day = at.astimezone(NEW_YORK).date()
    session = calendar.session_at(at)
    return session.day if session is not None and session.day == day else None


def test_session_of_matches_the_calendar_over_days_of_minutes_and_repeated_times() -> None:
    lookup = SessionLookup(CALENDAR)
    # 2024-11-27..12-02: a full day, Thanksgiving (closed), the early close (13:00), a weekend
    start = datetime(2024, 11, 27, 13, 0, tzinfo=UTC)
    times = [start + timedelta(minutes=2 * k) for k in range(5000)]  # more than it keeps
    for at in [*times, *reversed(times)]:
        session = lookup.session_of(at)
        assert (session.day if session is not None else None) == _oracle(at), at
    # the same instant in another zone is the same bar time
    at = datetime(2024, 11, 29, 17, 59, tzinfo=UTC)
    same = lookup.session_of(at.astimezone(NEW_YORK))
    assert same is not None and same.day == date(2024, 11, 29)
    assert lookup.session_of(datetime(2024, 11, 29, 18, 0, tzinfo=UTC)) is None  # after 13:00
