"""Composition root of the scheduler role: build its clients, tick the calendar-aware
``Scheduler`` (``tickstock.pipeline.scheduler``) until SIGTERM/SIGINT, release the leader lease
on the way out.

A due session is submitted as ``command.trigger_daily_processing`` on the commands stream —
the same command a user sends — so the workers execute it and answer it like any trigger. Its
run id is derived from the session (``daily-<session>``), so a redelivered or re-sent trigger
for one session never starts a second run. The heartbeat's state says whether this instance
leads (``running``) or stands by (``idle``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import redis

from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.bus.submit import send_command
from tickstock.contracts.commands import TriggerDailyProcessing
from tickstock.contracts.common import Phase, Timeframe
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.ops import infra, metrics
from tickstock.ops.roles.signals import stop_on_signals
from tickstock.ops.settings import Settings
from tickstock.pipeline.commands import CATCH_UP_REQUESTER, SCHEDULER_REQUESTER
from tickstock.pipeline.scheduler import ScheduledRun, Scheduler, Submit, TickResult
from tickstock.store.db import create_pool
from tickstock.store.leases import LeaseRepository
from tickstock.store.schedule import ScheduleRepository

log = logging.getLogger(__name__)


def trigger_for(run: ScheduledRun) -> TriggerDailyProcessing:
    """The command that starts the run of ``run.session``.

    The market check is skipped because the scheduler already chose a complete session; a run
    still active at the due time (a late manual one) gets this one queued behind it.
    """
    return TriggerDailyProcessing(
        run_id=f"daily-{run.session.isoformat()}",
        requested_by=CATCH_UP_REQUESTER if run.trigger_type == "catch_up" else SCHEDULER_REQUESTER,
        skip_market_check=True, queue_if_busy=True,
        phases=tuple(Phase(p) for p in run.phases), universes=run.universes,
        timeframes=tuple(Timeframe(t) for t in run.timeframes))


def bus_submit(client: redis.Redis, source: str) -> Submit:
    def submit(run: ScheduledRun) -> None:
        send_command(client, trigger_for(run), source=source)

    return submit


def run(settings: Settings, instance: str, **options: object) -> None:
    """Tick the schedule until SIGTERM/SIGINT (``tick_s``: seconds between ticks, default 5)."""
    endpoints = infra.resolve(settings, start=False)
    clock = LiveClock()
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=3, name=instance)
    client = connect(endpoints.redis.url, name=instance)
    heartbeat = HeartbeatThread(client, role="scheduler", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s)
    exporter = None
    tick = timedelta(seconds=float(options.get("tick_s", 5.0)))  # type: ignore[arg-type]
    try:
        scheduler = Scheduler(
            schedules=ScheduleRepository(pool), leases=LeaseRepository(pool), calendar=nyse(),
            clock=clock, submit=bus_submit(client, instance), instance=instance,
            tick_interval=tick, lease_ttl=max(tick * 3, timedelta(seconds=15)))
        exporter = metrics.start_role_metrics(
            settings, "scheduler", instance, database_url=endpoints.postgres.url,
            redis_url=endpoints.redis.url, pool=pool, redis=client)
        heartbeat.start()
        stop = threading.Event()
        stop_on_signals(stop.set)
        log.info("scheduler %s ticking every %.1fs", instance, tick.total_seconds())
        scheduler.run_forever(stop, on_tick=_reporter(heartbeat))
    finally:
        heartbeat.stop()
        if exporter is not None:
            exporter.close()
        client.close()
        pool.close()
        log.info("scheduler %s stopped", instance)


def _reporter(heartbeat: HeartbeatThread) -> Callable[[TickResult], None]:
    """Heartbeat state per tick, and one log line whenever leadership or the next run changes."""
    last: list[tuple[bool, object]] = []

    def report(result: TickResult) -> None:
        heartbeat.state = "running" if result.leader else "idle"
        seen = (result.leader, result.next_run_at)
        if not last or last[0] != seen:
            log.info("scheduler %s; next run at %s",
                     "leads" if result.leader else "stands by (another instance leads)",
                     result.next_run_at.isoformat() if result.next_run_at else "never (disabled)")
            last[:] = [seen]

    return report
