"""The NYSE calendar against published facts and against exchange-calendars' own answers."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from tickstock.core.clock import FrozenClock
from tickstock.core.errors import NotFoundError
from tickstock.market.calendar import exchange_calendar, nyse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_holidays_weekends_and_early_closes() -> None:
    cal = nyse()
    assert not cal.is_session(date(2024, 12, 25))  # Christmas
    assert not cal.is_session(date(2024, 7, 6))  # Saturday
    assert not cal.is_session(date(2025, 1, 9))  # national day of mourning (ad hoc closure)
    assert cal.is_session(date(2024, 7, 3))
    early = cal.early_closes(date(2024, 1, 1), date(2024, 12, 31))
    assert [s.day for s in early] == [date(2024, 7, 3), date(2024, 11, 29), date(2024, 12, 24)]
    assert early[0].close == at("2024-07-03 17:00")  # 13:00 New York (EDT)
    assert early[2].close == at("2024-12-24 18:00")  # 13:00 New York (EST)
    with pytest.raises(NotFoundError, match="not a XNYS session"):
        cal.session(date(2024, 12, 25))


def test_open_close_follow_daylight_saving() -> None:
    cal = nyse()
    assert cal.session(date(2024, 3, 8)).open == at("2024-03-08 14:30")
    assert cal.session(date(2024, 3, 11)).open == at("2024-03-11 13:30")
    assert cal.session(date(2024, 3, 11)).minutes == 390


def test_instants_open_close_boundaries() -> None:
    cal = nyse()
    assert cal.is_open(at("2024-07-03 13:30"))  # open is inclusive
    assert not cal.is_open(at("2024-07-03 17:00"))  # close is exclusive (early close)
    assert not cal.is_open(at("2024-07-03 13:29:59"))
    # Friday evening: next open is Monday, last complete session is Friday
    friday_night = at("2024-07-05 23:00")
    assert cal.next_open(friday_night) == at("2024-07-08 13:30")
    assert cal.next_close(friday_night) == at("2024-07-08 20:00")
    assert cal.last_complete_session(friday_night).day == date(2024, 7, 5)
    # during a session: next close is today's, last complete is yesterday's
    midday = at("2024-07-08 16:00")
    assert cal.next_close(midday) == at("2024-07-08 20:00")
    assert cal.last_complete_session(midday).day == date(2024, 7, 5)
    assert cal.session_at(midday) is not None
    assert cal.session_at(midday).day == date(2024, 7, 8)  # type: ignore[union-attr]


def test_clock_accepted_and_status() -> None:
    cal = nyse()
    clock = FrozenClock(at("2024-12-24 17:59"))
    status = cal.status(clock)
    assert status.is_open
    assert status.next_close == at("2024-12-24 18:00")
    clock.advance(timedelta(minutes=1))
    status = cal.status(clock)
    assert not status.is_open
    assert status.last_complete_session.day == date(2024, 12, 24)
    assert status.next_open == at("2024-12-26 14:30")


def test_agrees_with_exchange_calendars_over_years() -> None:
    cal = nyse()
    oracle = exchange_calendar("XNYS", date(2015, 1, 1), date(2026, 12, 31))
    ours = cal.sessions(date(2015, 1, 1), date(2026, 12, 31))
    assert [s.day for s in ours] == [ts.date() for ts in oracle.sessions]
    assert [s.open for s in ours] == [ts.to_pydatetime() for ts in oracle.opens]
    assert [s.close for s in ours] == [ts.to_pydatetime() for ts in oracle.closes]
    with warnings.catch_warnings():  # exchange-calendars reads .values (pandas 3.1 deprecation)
        warnings.filterwarnings("ignore", message=".*values returning an ndarray")
        for probe in pd.date_range("2020-03-01", "2020-03-20", freq="37min", tz="UTC"):
            assert cal.is_open(probe.to_pydatetime()) == oracle.is_open_on_minute(probe)


def test_session_minutes() -> None:
    cal = nyse()
    minutes = cal.session_minutes(date(2024, 11, 29))  # early close at 13:00
    assert len(minutes) == 210
    assert minutes[0] == at("2024-11-29 14:30") and minutes[-1] == at("2024-11-29 17:59")
    ns = cal.session_minutes_ns(date(2024, 11, 27), date(2024, 11, 29))
    assert len(ns) == 390 + 210  # the 28th is Thanksgiving
    assert (ns[1:] > ns[:-1]).all()


def test_outside_range_is_an_error() -> None:
    with pytest.raises(NotFoundError, match="outside"):
        nyse().is_session(date(1950, 1, 3))
