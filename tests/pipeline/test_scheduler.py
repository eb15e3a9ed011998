"""The scheduler over a frozen clock and the real XNYS calendar, against real PostgreSQL.

Expected times come from the exchange calendar (the oracle for closes and holidays): 16:10 New
York on a regular session, close + 10 minutes on an early close, nothing on holidays/weekends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from psycopg_pool import ConnectionPool

from tickstock.core.clock import FrozenClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.pipeline.scheduler import (
    ScheduledRun,
    Scheduler,
    next_run_at,
    run_time,
)
from tickstock.store.db import create_pool
from tickstock.store.leases import LeaseRepository
from tickstock.store.schedule import ScheduleRepository


def ny(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=NEW_YORK)


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    pool = create_pool(db_dsn, max_size=4)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return nyse()


class Harness:
    def __init__(self, pool: ConnectionPool, calendar: MarketCalendar, start: datetime) -> None:
        self.clock = FrozenClock(start)
        self.schedules = ScheduleRepository(pool)
        self.leases = LeaseRepository(pool)
        self.calendar = calendar
        self.submitted: list[ScheduledRun] = []

    def scheduler(self, instance: str = "s1") -> Scheduler:
        return Scheduler(schedules=self.schedules, leases=self.leases, calendar=self.calendar,
                         clock=self.clock, submit=self.submitted.append, instance=instance)

    def start_from(self, last_session: date) -> None:
        """A schedule whose last submitted session is ``last_session``."""
        self.schedules.ensure(self.clock.now(), last_session)


def test_normal_day_runs_at_1610_new_york_once(pool: ConnectionPool, calendar: MarketCalendar) -> None:
    day = date(2024, 11, 26)  # a Tuesday, regular session
    h = Harness(pool, calendar, ny(day, 16, 9))
    h.start_from(date(2024, 11, 25))
    scheduler = h.scheduler()
    result = scheduler.tick()
    assert result.leader and result.submitted is None
    assert result.next_run_at == ny(day, 16, 10)
    h.clock.set(ny(day, 16, 10))
    result = scheduler.tick()
    assert result.submitted is not None
    assert result.submitted.session == day
    assert result.submitted.trigger_type == "scheduled"
    assert h.submitted == [result.submitted]
    # Same session is never submitted twice.
    h.clock.advance(timedelta(minutes=30))
    assert scheduler.tick().submitted is None
    assert len(h.submitted) == 1
    assert h.schedules.get() is not None and h.schedules.get().last_session_run == day  # type: ignore[union-attr]
    # Next run is the following session at 16:10 (Wednesday before Thanksgiving).
    assert scheduler.tick().next_run_at == ny(date(2024, 11, 27), 16, 10)


def test_early_close_day_after_thanksgiving_runs_ten_minutes_after_the_close(
    pool: ConnectionPool, calendar: MarketCalendar
) -> None:
    friday = date(2024, 11, 29)
    close = calendar.session(friday).close
    assert close.astimezone(NEW_YORK).time() == time(13, 0)  # the oracle: an early close
    h = Harness(pool, calendar, ny(date(2024, 11, 28), 9))
    h.start_from(date(2024, 11, 27))
    scheduler = h.scheduler()
    assert scheduler.tick().next_run_at == close + timedelta(minutes=10)
    h.clock.set(close + timedelta(minutes=9))
    assert scheduler.tick().submitted is None
    h.clock.set(close + timedelta(minutes=10))
    result = scheduler.tick()
    assert result.submitted is not None and result.submitted.session == friday
    assert result.submitted.due_at == ny(friday, 13, 10)
    # A configured minutes_after_close wins over run_at, on early and regular days.
    h.schedules.update({"minutes_after_close": 45}, now=h.clock.now(), updated_by="test")
    schedule = h.schedules.get()
    assert schedule is not None
    assert run_time(friday, schedule, calendar) == ny(friday, 13, 45)
    assert run_time(date(2024, 12, 2), schedule, calendar) == ny(date(2024, 12, 2), 16, 45)


def test_holiday_is_never_scheduled(pool: ConnectionPool, calendar: MarketCalendar) -> None:
    thanksgiving = date(2024, 11, 28)
    assert not calendar.is_session(thanksgiving)
    h = Harness(pool, calendar, ny(thanksgiving, 16, 0))
    h.start_from(date(2024, 11, 27))
    scheduler = h.scheduler()
    for _ in range(8):  # through the evening, every 30 minutes
        result = scheduler.tick()
        assert result.submitted is None
        h.clock.advance(timedelta(minutes=30))
    assert h.submitted == []
    assert result.next_run_at == ny(date(2024, 11, 29), 13, 10)


def test_weekend_is_never_scheduled(pool: ConnectionPool, calendar: MarketCalendar) -> None:
    saturday = date(2024, 11, 30)
    h = Harness(pool, calendar, ny(saturday, 8))
    h.start_from(date(2024, 11, 29))
    scheduler = h.scheduler()
    for _ in range(2 * 24):  # the whole weekend, every hour
        assert scheduler.tick().submitted is None
        h.clock.advance(timedelta(hours=1))
    assert h.submitted == []
    assert scheduler.tick().next_run_at == ny(date(2024, 12, 2), 16, 10)


def test_missed_runs_are_caught_up_once_after_downtime(
    pool: ConnectionPool, calendar: MarketCalendar
) -> None:
    # Last run Monday 2024-11-25; scheduler down Tuesday and Wednesday evenings.
    h = Harness(pool, calendar, ny(date(2024, 11, 28), 9, 30))
    h.start_from(date(2024, 11, 25))
    scheduler = h.scheduler()
    assert next_run_at(h.schedules.get(), calendar, h.clock.now()) == h.clock.now()  # type: ignore[arg-type]
    result = scheduler.tick()
    assert result.submitted is not None
    assert result.submitted.session == date(2024, 11, 27)  # the latest missed session only
    assert result.submitted.trigger_type == "catch_up"
    for _ in range(5):
        h.clock.advance(timedelta(minutes=10))
        assert scheduler.tick().submitted is None
    assert len(h.submitted) == 1
    assert result.next_run_at == ny(date(2024, 11, 29), 13, 10)


def test_new_schedule_does_not_catch_up_what_happened_before_it(
    pool: ConnectionPool, calendar: MarketCalendar
) -> None:
    h = Harness(pool, calendar, ny(date(2024, 11, 27), 9))
    scheduler = h.scheduler()
    result = scheduler.tick()
    assert result.submitted is None and h.submitted == []
    assert result.next_run_at == ny(date(2024, 11, 27), 16, 10)
    h.clock.set(ny(date(2024, 11, 27), 16, 11))
    assert scheduler.tick().submitted is not None


def test_only_the_lease_holder_submits_and_a_dead_leader_is_replaced(
    pool: ConnectionPool, calendar: MarketCalendar
) -> None:
    day = date(2024, 12, 3)
    h = Harness(pool, calendar, ny(day, 16, 10) - timedelta(seconds=5))
    h.start_from(date(2024, 12, 2))
    first, second = h.scheduler("s1"), h.scheduler("s2")
    assert first.tick().leader
    assert not second.tick().leader
    h.clock.set(ny(day, 16, 10))  # 5 s later: s1's lease is still valid
    results = [second.tick(), first.tick()]
    assert [r.leader for r in results] == [False, True]
    assert len(h.submitted) == 1
    # s1 stops renewing (crashed): within the TTL s2 still waits, after it s2 takes over.
    h.clock.advance(timedelta(seconds=10))
    assert not second.tick().leader
    h.clock.advance(timedelta(seconds=6))
    assert second.tick().leader
    assert not first.tick().leader  # a returning s1 does not steal it back
    h.clock.set(ny(day + timedelta(days=1), 16, 10))
    assert second.tick().submitted is not None
    assert [run.session for run in h.submitted] == [day, day + timedelta(days=1)]


def test_submit_failure_is_retried_next_tick(pool: ConnectionPool, calendar: MarketCalendar) -> None:
    day = date(2024, 12, 3)
    h = Harness(pool, calendar, ny(day, 16, 10))
    h.start_from(date(2024, 12, 2))
    calls: list[ScheduledRun] = []

    def flaky(run: ScheduledRun) -> None:
        calls.append(run)
        if len(calls) == 1:
            raise ConnectionError("redis down")

    scheduler = Scheduler(schedules=h.schedules, leases=h.leases, calendar=calendar,
                          clock=h.clock, submit=flaky, instance="s1")
    with pytest.raises(ConnectionError):
        scheduler.tick()
    assert h.schedules.get().last_session_run == date(2024, 12, 2)  # type: ignore[union-attr]
    assert scheduler.tick().submitted is not None
    assert [c.session for c in calls] == [day, day]
