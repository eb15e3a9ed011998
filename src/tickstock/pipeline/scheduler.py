"""The calendar-aware daily scheduler: when the post-close run is due, and submitting it once.

Rules (DESIGN.md §1, issue 6):

- A session's run time is ``run_at`` New York time on the session day (default 16:10), or
  ``minutes_after_close`` after the actual close when that is set. On an early-close day (13:00
  close) the run moves with the close: close + (run_at - 16:00), so 16:10 becomes 13:10.
- Only sessions of the exchange calendar are scheduled: never a weekend or a holiday.
- A session is submitted once: ``processing_schedule.last_session_run`` is advanced by
  compare-and-set before the trigger is sent (and put back if sending fails).
- Catch-up: when the scheduler was down at a run time, the latest missed session is submitted
  once on return (older missed sessions are covered by the same run, whose import tops up to the
  last complete session). A schedule that never ran starts from the current session and does not
  catch up what happened before it existed.
- Exactly one active scheduler: the leader holds the ``scheduler`` lease, renewed every tick and
  expiring after ``lease_ttl`` so a crashed leader is replaced within one TTL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tickstock.core.clock import Clock
from tickstock.market.calendar import MarketCalendar
from tickstock.store.leases import LeaseRepository
from tickstock.store.schedule import DEFAULT_SCHEDULE, ScheduleRecord, ScheduleRepository

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
REGULAR_CLOSE = time(16, 0)  # New York; the reference for the early-close offset
# How far to look for sessions: longer than any exchange closure (9/11 closed NYSE 4 days).
_LOOKBACK = timedelta(days=14)
_LOOKAHEAD = timedelta(days=21)

TriggerType = Literal["scheduled", "catch_up"]


@dataclass(frozen=True)
class ScheduledRun:
    """A run the scheduler submits: the session it brings data to and the schedule's scope."""

    session: date
    trigger_type: TriggerType
    due_at: datetime
    universes: tuple[str, ...]
    timeframes: tuple[str, ...]
    phases: tuple[str, ...]


@dataclass(frozen=True)
class TickResult:
    """What one scheduler tick found and did."""

    leader: bool
    enabled: bool
    next_run_at: datetime | None
    submitted: ScheduledRun | None = None


def run_time(session: date, schedule: ScheduleRecord, calendar: MarketCalendar) -> datetime:
    """When the run for ``session`` is due (aware UTC)."""
    close = calendar.session(session).close
    if schedule.minutes_after_close is not None:
        return close + timedelta(minutes=schedule.minutes_after_close)
    zone = ZoneInfo(schedule.timezone)
    planned = datetime.combine(session, schedule.run_at, tzinfo=zone)
    regular_close = datetime.combine(session, REGULAR_CLOSE, tzinfo=zone)
    if close < regular_close:
        # Early close: keep the configured distance from the close, never before it.
        return close + max(planned - regular_close, timedelta(0))
    return planned.astimezone(close.tzinfo)


def latest_due_session(
    schedule: ScheduleRecord, calendar: MarketCalendar, now: datetime
) -> date | None:
    """The most recent session whose run time is at or before ``now``."""
    today = now.date()
    sessions = calendar.session_days(today - _LOOKBACK, today + timedelta(days=1))
    for session in reversed(sessions):
        if run_time(session, schedule, calendar) <= now:
            return session
    return None


def next_run_at(
    schedule: ScheduleRecord, calendar: MarketCalendar, now: datetime
) -> datetime | None:
    """When the scheduler will next submit a run; ``now`` if a missed run is waiting.

    None when the schedule is disabled.
    """
    if not schedule.enabled:
        return None
    due = latest_due_session(schedule, calendar, now)
    if due is not None and schedule.last_session_run is not None and due > schedule.last_session_run:
        return now
    today = now.date()
    for session in calendar.session_days(today, today + _LOOKAHEAD):
        at = run_time(session, schedule, calendar)
        if at > now:
            return at
    return None


Submit = Callable[[ScheduledRun], None]


class Scheduler:
    """One scheduler instance; only the lease holder submits runs.

    ``submit`` sends the trigger (the role wires it to the bus). ``catch_up_after`` is how late a
    submission may be and still count as ``scheduled`` rather than ``catch_up``.
    """

    def __init__(
        self,
        *,
        schedules: ScheduleRepository,
        leases: LeaseRepository,
        calendar: MarketCalendar,
        clock: Clock,
        submit: Submit,
        instance: str,
        lease_ttl: timedelta = timedelta(seconds=15),
        tick_interval: timedelta = timedelta(seconds=5),
        catch_up_after: timedelta = timedelta(minutes=5),
        schedule_name: str = DEFAULT_SCHEDULE,
    ) -> None:
        if tick_interval >= lease_ttl:
            raise ValueError("tick_interval must be shorter than lease_ttl to keep the lease")
        self._schedules = schedules
        self._leases = leases
        self._calendar = calendar
        self._clock = clock
        self._submit = submit
        self.instance = instance
        self._lease_ttl = lease_ttl
        self.tick_interval = tick_interval
        self._catch_up_after = catch_up_after
        self._name = schedule_name

    def tick(self) -> TickResult:
        """Renew the lease; if leader and a session is due and unsubmitted, submit it."""
        now = self._clock.now()
        leader = self._leases.acquire(LEASE_NAME, self.instance, now, self._lease_ttl)
        schedule = self._schedules.get(self._name) or self._schedules.ensure(now, None, self._name)
        if not leader or not schedule.enabled:
            return TickResult(leader, schedule.enabled, next_run_at(schedule, self._calendar, now))
        due = latest_due_session(schedule, self._calendar, now)
        submitted = None
        if due is not None and schedule.last_session_run is None:
            # A schedule that never ran: nothing was missed; start counting from here.
            self._schedules.claim_session(due, self._name)
            log.info("schedule baseline set", extra={"session": due.isoformat()})
        elif due is not None and due > schedule.last_session_run:  # type: ignore[operator]
            submitted = self._submit_once(schedule, due, now)
        fresh = self._schedules.get(self._name) or schedule
        return TickResult(True, True, next_run_at(fresh, self._calendar, now), submitted)

    def _submit_once(self, schedule: ScheduleRecord, session: date, now: datetime) -> ScheduledRun | None:
        if not self._schedules.claim_session(session, self._name):
            return None  # another scheduler got there first
        due_at = run_time(session, schedule, self._calendar)
        late = now - due_at > self._catch_up_after
        run = ScheduledRun(
            session=session,
            trigger_type="catch_up" if late else "scheduled",
            due_at=due_at,
            universes=schedule.universes,
            timeframes=schedule.timeframes,
            phases=schedule.phases,
        )
        try:
            self._submit(run)
        except Exception:
            self._schedules.unclaim_session(session, schedule.last_session_run, self._name)
            raise
        log.info("daily run submitted", extra={"session": session.isoformat(),
                                               "trigger_type": run.trigger_type})
        return run

    def run_forever(self, stop: threading.Event, on_tick: Callable[[TickResult], None] | None = None) -> None:
        """Tick every ``tick_interval`` until ``stop`` is set; release the lease on the way out."""
        try:
            while not stop.is_set():
                try:
                    result = self.tick()
                    if on_tick is not None:
                        on_tick(result)
                except Exception:
                    log.exception("scheduler tick failed; retrying next tick")
                stop.wait(self.tick_interval.total_seconds())
        finally:
            self._leases.release(LEASE_NAME, self.instance)
