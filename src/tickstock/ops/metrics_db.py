"""Metrics read from PostgreSQL at scrape time: jobs, daily runs, the schedule.

PostgreSQL is the source of truth for job and run state (DESIGN.md §2), so these numbers are
the same whichever role is scraped; every role exports them, and dashboards and alert rules
take ``max without (instance, job)`` so any one live role is enough. Everything is read in one
short transaction per scrape on the collector's own connection (never the role's pool, so a
busy role still answers scrapes and its pool metrics are not distorted).

Durations are histograms over every finished job / run phase still in the database: they only
grow while rows are kept, which is what Prometheus counters need.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from prometheus_client.metrics_core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from psycopg import Connection
from psycopg_pool import ConnectionPool

from tickstock.contracts import JobStatus, RunStatus
from tickstock.core.clock import Clock
from tickstock.market.calendar import MarketCalendar
from tickstock.ops.metrics_live import live_families
from tickstock.pipeline.daily.progress import run_view
from tickstock.pipeline.scheduler import latest_due_session, run_time
from tickstock.store.runs import RunRepository
from tickstock.store.schedule import DEFAULT_SCHEDULE, ScheduleRecord, ScheduleRepository

# Job durations: from a one-symbol recompute (seconds) to a full-universe history load (hours).
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
PHASE_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
_ACTIVE_RUN = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
_ITEM_STATES = ("total", "processed", "failed")


def _jobs(conn: Connection[Any]) -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        "tickstock_jobs", "Jobs in the database by type and status.", labels=["job_type", "status"]
    )
    # One pass over the table for the counts and the duration histogram (s is NULL until a
    # job has finished): the table grows with every job, and every role scrapes it.
    durations, rows = _histogram(
        conn,
        "tickstock_jobs_duration_seconds",
        "Duration (start to finish) of every finished job in the database, by type and outcome.",
        ["job_type", "status"],
        source="SELECT job_type, status, date_part('epoch', finished_at - started_at) AS s"
        " FROM jobs",
        buckets=JOB_BUCKETS,
    )
    seen: dict[str, dict[str, int]] = {}
    for (job_type, status), n in rows.items():
        seen.setdefault(job_type, {})[status] = n
    for job_type, by_status in sorted(seen.items()):
        for status in JobStatus:  # every status, zeros included, so rates and ratios work
            counts.add_metric([job_type, status.value], by_status.get(status.value, 0))
    yield counts

    oldest = GaugeMetricFamily(
        "tickstock_jobs_oldest_age_seconds",
        "Age of the oldest job still waiting (submitted, since submission) or running "
        "(since start), by type.",
        labels=["job_type", "status"],
    )
    for job_type, status, age in conn.execute(
        "SELECT job_type, status, extract(epoch FROM now() - min("
        "  CASE WHEN status = 'running' THEN coalesce(started_at, submitted_at)"
        "  ELSE submitted_at END))::float8"
        " FROM jobs WHERE status IN ('submitted', 'running') GROUP BY 1, 2"
    ):
        oldest.add_metric([job_type, status], max(0.0, age))
    yield oldest
    yield durations


def _histogram(
    conn: Connection[Any], name: str, documentation: str, labels: list[str], *, source: str,
    buckets: tuple[float, ...],
) -> tuple[HistogramMetricFamily, dict[tuple[str, ...], int]]:
    """A histogram over the rows of ``source`` (label columns, then seconds ``s``; rows whose
    ``s`` is NULL are not observed), and every key's row count, in one pass: a ``FILTER`` count
    per bucket (a join with the buckets costs a row per bucket)."""
    keys = ", ".join(f"d.{label}" for label in labels)
    n = len(labels)
    per_bucket = ", ".join("count(*) FILTER (WHERE d.s <= %s)" for _ in buckets)
    family = HistogramMetricFamily(name, documentation, labels=labels)
    rows: dict[tuple[str, ...], int] = {}
    for row in conn.execute(
        f"SELECT {keys}, {per_bucket}, count(d.s), coalesce(sum(d.s), 0)::float8, count(*)"
        f" FROM ({source}) d GROUP BY {keys}",
        list(buckets),
    ):
        key = tuple(str(v) for v in row[:n])
        rows[key] = int(row[-1])
        if row[-3]:
            counts = row[n:n + len(buckets)]
            family.add_metric(
                list(key),
                [(repr(b), float(c)) for b, c in zip(buckets, counts, strict=True)]
                + [("+Inf", float(row[-3]))],
                sum_value=row[-2],
            )
    return family, rows


@dataclass(frozen=True)
class _Run:
    run_id: str
    trigger_type: str
    status: str
    phase: str | None
    session: str
    started_at: datetime | None
    completed_at: datetime | None
    symbols: tuple[int, int, int]


def _latest_run(conn: Connection[Any]) -> _Run | None:
    row = conn.execute(
        "SELECT run_id, trigger_type, status, phase, session_date, started_at, completed_at,"
        " symbols_total, symbols_processed, symbols_failed"
        " FROM processing_runs ORDER BY (status IN ('pending', 'running')) DESC, created_at DESC"
        " LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return _Run(row[0], row[1], row[2], row[3], row[4].isoformat() if row[4] else "",
                row[5], row[6], (row[7], row[8], row[9]))


def _runs(conn: Connection[Any], now: datetime) -> Iterator[Metric]:
    by_status = GaugeMetricFamily("tickstock_runs", "Daily-processing runs by status.",
                                  labels=["status"])
    counts = dict(conn.execute("SELECT status, count(*) FROM processing_runs GROUP BY 1").fetchall())
    for status in RunStatus:
        by_status.add_metric([status.value], counts.get(status.value, 0))
    yield by_status

    run = _latest_run(conn)
    active = GaugeMetricFamily("tickstock_run_active",
                               "1 while a daily run is pending or running, else 0.")
    active.add_metric([], 1 if run is not None and run.status in _ACTIVE_RUN else 0)
    yield active
    if run is None:
        return
    yield from _run_detail(conn, run, now)
    phase_durations, _ = _histogram(
        conn,
        "tickstock_run_phase_duration_seconds",
        "Duration of every finished daily-run phase in the database, by phase and outcome.",
        ["phase", "status"],
        source="SELECT phase, status, date_part('epoch', completed_at - started_at) AS s"
        " FROM processing_run_phases WHERE completed_at IS NOT NULL AND started_at IS NOT NULL",
        buckets=PHASE_BUCKETS,
    )
    yield phase_durations


def _run_detail(conn: Connection[Any], run: _Run, now: datetime) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "tickstock_run_info", "The current (or else the latest) daily run; value 1.",
        labels=["run_id", "trigger_type", "status", "phase", "session"],
    )
    info.add_metric([run.run_id, run.trigger_type, run.status, run.phase or "", run.session], 1)
    yield info
    symbols = GaugeMetricFamily("tickstock_run_symbols",
                                "Symbols of the current (or latest) daily run.", labels=["state"])
    for state, value in zip(_ITEM_STATES, run.symbols, strict=True):
        symbols.add_metric([state], value)
    yield symbols

    items = GaugeMetricFamily(
        "tickstock_run_phase_items",
        "Work items of each phase of the current (or latest) daily run.", labels=["phase", "state"],
    )
    status = GaugeMetricFamily(
        "tickstock_run_phase_info", "Status of each phase of the current (or latest) run; value 1.",
        labels=["phase", "status"],
    )
    for phase, phase_status, p_total, p_done, p_failed in conn.execute(
        "SELECT phase, status, total, processed, failed FROM processing_run_phases"
        " WHERE run_id = %s ORDER BY phase", (run.run_id,)
    ):
        for state, value in zip(_ITEM_STATES, (p_total, p_done, p_failed), strict=True):
            items.add_metric([phase, state], value)
        status.add_metric([phase, phase_status], 1)
    yield items
    yield status

    batches = GaugeMetricFamily(
        "tickstock_run_batches", "Symbol batches of the current (or latest) run by phase and status.",
        labels=["phase", "status"],
    )
    for phase, batch_status, n in conn.execute(
        "SELECT phase, status, count(*) FROM processing_batches WHERE run_id = %s GROUP BY 1, 2",
        (run.run_id,),
    ):
        batches.add_metric([phase, batch_status], n)
    yield batches

    if run.started_at is not None:
        started = GaugeMetricFamily("tickstock_run_started_timestamp_seconds",
                                    "When the current (or latest) run started (Unix time).")
        started.add_metric([], run.started_at.timestamp())
        yield started
        elapsed = GaugeMetricFamily(
            "tickstock_run_elapsed_seconds",
            "Seconds the current run has been going, or the latest run's duration.",
        )
        end = run.completed_at or now
        elapsed.add_metric([], max(0.0, (end - run.started_at).total_seconds()))
        yield elapsed


def _import_failures(conn: Connection[Any]) -> Iterator[Metric]:
    open_failures = GaugeMetricFamily(
        "tickstock_import_failures_open",
        "Per-symbol import failures not yet resolved by a retry.",
    )
    row = conn.execute("SELECT count(*) FROM import_failures WHERE resolved_at IS NULL").fetchone()
    open_failures.add_metric([], row[0] if row else 0)
    yield open_failures


def _schedule(
    conn: Connection[Any], schedule: ScheduleRecord | None, calendar: MarketCalendar, now: datetime
) -> Iterator[Metric]:
    enabled = GaugeMetricFamily("tickstock_schedule_enabled",
                                "1 when the daily schedule is enabled, else 0.")
    enabled.add_metric([], 1 if schedule is not None and schedule.enabled else 0)
    yield enabled
    last = conn.execute(
        "SELECT max(completed_at) FROM processing_runs WHERE status = 'completed'"
    ).fetchone()
    if last is not None and last[0] is not None:
        completed = GaugeMetricFamily(
            "tickstock_daily_run_last_completed_timestamp_seconds",
            "When the last daily run completed (Unix time).",
        )
        completed.add_metric([], last[0].timestamp())
        yield completed
    state = daily_run_due(conn, schedule, calendar, now)
    if state is None:
        return
    due = GaugeMetricFamily(
        "tickstock_daily_run_due_timestamp_seconds",
        "When the run of the latest session that is due was scheduled (Unix time).",
    )
    due.add_metric([], state.due_at.timestamp())
    yield due
    overdue = GaugeMetricFamily(
        "tickstock_daily_run_overdue_seconds",
        "Seconds since the latest due session's scheduled run time while that session has no "
        "completed run; 0 once it has.",
    )
    overdue.add_metric([], state.overdue_s)
    yield overdue


@dataclass(frozen=True)
class DailyRunDue:
    """The latest session whose scheduled run time has passed, and how late its run is."""

    session: date
    due_at: datetime
    overdue_s: float


def daily_run_due(
    conn: Connection[Any], schedule: ScheduleRecord | None, calendar: MarketCalendar, now: datetime
) -> DailyRunDue | None:
    """None when the schedule is missing or disabled, or no session is due yet."""
    if schedule is None or not schedule.enabled:
        return None
    session = latest_due_session(schedule, calendar, now)
    if session is None:
        return None
    due_at = run_time(session, schedule, calendar)
    return DailyRunDue(session, due_at, _overdue_seconds(conn, schedule, session, due_at, now))


def _overdue_seconds(
    conn: Connection[Any], schedule: ScheduleRecord, session: date, due_at: datetime, now: datetime
) -> float:
    row = conn.execute(
        "SELECT status FROM processing_runs"
        " WHERE session_date >= %s OR (session_date IS NULL AND created_at >= %s)"
        " ORDER BY (status = 'completed') DESC, created_at DESC LIMIT 1",
        (session, due_at),
    ).fetchone()
    if row is not None and row[0] == RunStatus.COMPLETED.value:
        return 0.0
    if row is None and schedule.last_session_run is not None and schedule.last_session_run >= session:
        return 0.0  # the session the schedule started from: nothing was ever due for it
    return max(0.0, (now - due_at).total_seconds())


def describe_families() -> Iterable[Metric]:
    """The families these functions yield, without values (for registration)."""
    gauges = {
        "tickstock_jobs": ["job_type", "status"],
        "tickstock_jobs_oldest_age_seconds": ["job_type", "status"],
        "tickstock_runs": ["status"],
        "tickstock_run_active": [],
        "tickstock_run_info": ["run_id", "trigger_type", "status", "phase", "session"],
        "tickstock_run_symbols": ["state"],
        "tickstock_run_phase_items": ["phase", "state"],
        "tickstock_run_phase_info": ["phase", "status"],
        "tickstock_run_batches": ["phase", "status"],
        "tickstock_run_progress_ratio": [],
        "tickstock_run_started_timestamp_seconds": [],
        "tickstock_run_elapsed_seconds": [],
        "tickstock_import_failures_open": [],
        "tickstock_schedule_enabled": [],
        "tickstock_daily_run_last_completed_timestamp_seconds": [],
        "tickstock_daily_run_due_timestamp_seconds": [],
        "tickstock_daily_run_overdue_seconds": [],
    }
    for name, labels in gauges.items():
        yield GaugeMetricFamily(name, name, labels=labels)
    yield HistogramMetricFamily("tickstock_jobs_duration_seconds", "",
                                labels=["job_type", "status"])
    yield HistogramMetricFamily("tickstock_run_phase_duration_seconds", "",
                                labels=["phase", "status"])


def _progress(runs: RunRepository, run_id: str, now: datetime) -> Metric:
    """The run's overall progress as the API and CLI show it (``pipeline.daily.progress``:
    every planned phase weighs the same, so it only grows while the run goes on)."""
    run = runs.get_run(run_id)
    progress = GaugeMetricFamily(
        "tickstock_run_progress_ratio",
        "Progress of the current (or latest) daily run, 0..1; each planned phase weighs the "
        "same.",
    )
    progress.add_metric([], run_view(run, runs.phases(run_id), now).percent / 100.0)
    return progress


def database_families(
    pool: ConnectionPool[Any], clock: Clock, calendar: MarketCalendar, timeout_s: float
) -> list[Metric]:
    """Every PostgreSQL-derived family, read in one transaction (the run's progress and the
    schedule through their repositories, beside it)."""
    now = clock.now()
    schedule = ScheduleRepository(pool).get(DEFAULT_SCHEDULE)
    with pool.connection(timeout=timeout_s) as conn, conn.transaction():
        families = [
            *_jobs(conn),
            *_runs(conn, now),
            *_import_failures(conn),
            *_schedule(conn, schedule, calendar, now),
            *live_families(conn, calendar, now),
        ]
    info = next((f for f in families if f.name == "tickstock_run_info"), None)
    if info is not None and info.samples:
        families.append(_progress(RunRepository(pool), info.samples[0].labels["run_id"], now))
    return families
