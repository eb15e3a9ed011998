"""The job lifecycle in PostgreSQL, the source of truth (tables ``jobs``, ``job_events``,
``job_symbol_results``, ``import_failures``).

    submitted ──▶ running ──▶ completed | failed | cancelled
        └──────────────────▶ cancelled   (cancel requested before a worker started it)

Written only by the executing side (the worker). Every transition and every symbol result is an
event kept in ``job_events``; the methods return the contract event payloads they stored, so
the worker publishes exactly what was recorded. Idempotent by job id: a redelivered job that is
already finished is skipped, one that was running on a dead worker is started again (data
writes are upserts, per-symbol results are keyed by (job, symbol, timeframe), and the counters
are recounted from those results rather than incremented).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection, Cursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Payload, percent
from tickstock.contracts.events import (
    TERMINAL_JOB_STATUSES,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobStarted,
    JobStatus,
    JobSubmitted,
    JobSymbolDone,
    SymbolStatus,
)
from tickstock.core.clock import Clock

_COLUMNS = ("job_id, job_type, status, params, requested_by, correlation_id, submitted_at, "
            "started_at, finished_at, total, processed, failed, cancel_requested, worker, "
            "attempts, error, result")
#: job_type of a row created by a cancel that arrived before its job (filled in on arrival).
UNKNOWN_TYPE = ""


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs``."""

    job_id: str
    job_type: str
    status: JobStatus
    params: dict[str, Any]
    requested_by: str | None
    correlation_id: str | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total: int
    processed: int
    failed: int
    cancel_requested: bool
    worker: str | None
    attempts: int
    error: str | None
    result: dict[str, Any]

    @property
    def percent(self) -> float:
        return percent(self.processed, self.total)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES


@dataclass(frozen=True)
class JobEventRecord:
    job_id: str
    seq: int
    ts: datetime
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Start:
    """What ``begin`` decided: run the handler, skip a finished job, or it was cancelled
    before it started. ``events`` were stored and are to be published."""

    action: Literal["run", "skip", "cancelled"]
    job: JobRecord
    events: tuple[Payload, ...]


def _cur(conn: Connection[Any]) -> Cursor[dict[str, Any]]:
    """A dict-row cursor, whatever the pool's row factory."""
    return conn.cursor(row_factory=dict_row)


def _record(row: dict[str, Any]) -> JobRecord:
    return JobRecord(**{**row, "status": JobStatus(row["status"])})


class JobStore:
    """Repository of the job lifecycle. ``pool`` gives dict-row connections."""

    def __init__(self, pool: ConnectionPool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock

    # -- lifecycle (the executing worker) --------------------------------------------------
    def begin(self, *, job_id: str, job_type: str, params: dict[str, Any], worker: str,
              submitted_at: datetime, requested_by: str | None = None,
              correlation_id: str | None = None) -> Start:
        """Record a delivery of job ``job_id`` and decide what to do with it."""
        now = self._clock.now()
        events: list[Payload] = []
        with self._pool.connection() as conn, conn.transaction():
            inserted = _cur(conn).execute(
                "INSERT INTO jobs (job_id, job_type, status, params, requested_by, "
                "correlation_id, submitted_at) VALUES (%s, %s, 'submitted', %s, %s, %s, %s) "
                "ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
                (job_id, job_type, Jsonb(params), requested_by, correlation_id, submitted_at),
            ).fetchone()
            if inserted is None:  # a placeholder made by an early cancel: fill it in
                _cur(conn).execute(
                    "UPDATE jobs SET job_type = %s, params = %s, requested_by = %s, "
                    "correlation_id = %s, submitted_at = %s WHERE job_id = %s AND job_type = %s",
                    (job_type, Jsonb(params), requested_by, correlation_id, submitted_at, job_id,
                     UNKNOWN_TYPE))
            if inserted is not None or self._event_count(conn, job_id, JobSubmitted) == 0:
                events.append(self._add_event(conn, job_id, JobSubmitted(
                    job_id=job_id, job_type=job_type, params=params, requested_by=requested_by),
                    ts=submitted_at))
            job = self._lock(conn, job_id)
            if job.finished:
                return Start("skip", job, tuple(events))
            if job.cancel_requested:
                job, event = self._finish(conn, job, JobStatus.CANCELLED, now=now)
                return Start("cancelled", job, (*events, event))
            row = _cur(conn).execute(
                f"UPDATE jobs SET status = 'running', worker = %s, attempts = attempts + 1, "
                f"started_at = coalesce(started_at, %s) WHERE job_id = %s RETURNING {_COLUMNS}",
                (worker, now, job_id)).fetchone()
            assert row is not None
            job = _record(row)
            events.append(self._add_event(conn, job_id, JobStarted(
                job_id=job_id, job_type=job_type, worker=worker, attempt=job.attempts), ts=now))
        return Start("run", job, tuple(events))

    def set_total(self, job_id: str, total: int) -> JobProgress:
        if total < 0:
            raise ValueError(f"total {total} of job {job_id} must be >= 0")
        with self._pool.connection() as conn:
            row = _cur(conn).execute(
                "UPDATE jobs SET total = %s WHERE job_id = %s RETURNING processed, failed",
                (total, job_id)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return JobProgress(job_id=job_id, total=total, processed=row["processed"],
                           failed=row["failed"], percent=percent(row["processed"], total))

    def record_symbol(self, job_id: str, symbol: str, *, timeframe: str = "",
                      status: SymbolStatus = SymbolStatus.OK, bars: int = 0,
                      error: str | None = None) -> tuple[JobSymbolDone, JobProgress]:
        """Upsert one symbol's result (a failure also goes to ``import_failures``) and recount
        the job's progress from the results, so a rerun never double-counts."""
        done = JobSymbolDone(job_id=job_id, symbol=symbol, timeframe=timeframe, status=status,
                             bars=bars, error=error)
        now = self._clock.now()
        with self._pool.connection() as conn, conn.transaction():
            _cur(conn).execute(
                "INSERT INTO job_symbol_results (job_id, symbol, timeframe, status, bars, error, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (job_id, symbol, timeframe) DO UPDATE SET status = EXCLUDED.status, "
                "bars = EXCLUDED.bars, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
                (job_id, done.symbol, timeframe, status.value, bars, error, now))
            if status is SymbolStatus.FAILED:
                _cur(conn).execute(
                    "INSERT INTO import_failures (source_id, symbol, timeframe, reason, "
                    "failed_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT "
                    "(source_id, symbol, timeframe) DO UPDATE SET reason = EXCLUDED.reason, "
                    "failed_at = EXCLUDED.failed_at, resolved_at = NULL",
                    (job_id, done.symbol, timeframe, error or "failed", now))
            else:
                _cur(conn).execute(
                    "UPDATE import_failures SET resolved_at = %s WHERE source_id = %s "
                    "AND symbol = %s AND timeframe = %s AND resolved_at IS NULL",
                    (now, job_id, done.symbol, timeframe))
            self._add_event(conn, job_id, done, ts=now)
            row = _cur(conn).execute(
                "UPDATE jobs SET processed = s.n, failed = s.f FROM (SELECT count(*) AS n, "
                "count(*) FILTER (WHERE status = 'failed') AS f FROM job_symbol_results "
                "WHERE job_id = %s) s WHERE jobs.job_id = %s "
                "RETURNING jobs.total, jobs.processed, jobs.failed",
                (job_id, job_id)).fetchone()
        assert row is not None
        return done, JobProgress(job_id=job_id, total=row["total"], processed=row["processed"],
                                 failed=row["failed"],
                                 percent=percent(row["processed"], row["total"]))

    def finish(self, job_id: str, status: JobStatus, *, worker: str, error: str | None = None,
               result: dict[str, Any] | None = None) -> tuple[JobRecord, Payload] | None:
        """Move a job this worker runs to a final status; None if it is not (any longer)
        running on ``worker`` — then someone else owns the outcome."""
        with self._pool.connection() as conn, conn.transaction():
            job = self._lock(conn, job_id)
            if job.status is not JobStatus.RUNNING or job.worker != worker:
                return None
            return self._finish(conn, job, status, now=self._clock.now(), error=error,
                                result=result)

    def fail_undeliverable(self, job_id: str, reason: str) -> tuple[JobRecord, Payload] | None:
        """Mark a job failed whose message was dead-lettered (e.g. it crashed every worker it
        ran on); None when the job is unknown or already finished."""
        with self._pool.connection() as conn, conn.transaction():
            row = _cur(conn).execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = %s FOR UPDATE",
                               (job_id,)).fetchone()
            if row is None or _record(row).finished:
                return None
            return self._finish(conn, _record(row), JobStatus.FAILED, now=self._clock.now(),
                                error=reason)

    # -- cancellation (any side may ask; the worker carries it out) -------------------------
    def request_cancel(self, job_id: str) -> JobRecord:
        """Ask job ``job_id`` to stop at its next symbol boundary. A job not seen yet gets a
        placeholder row so it is cancelled on arrival."""
        with self._pool.connection() as conn:
            row = _cur(conn).execute(
                f"INSERT INTO jobs (job_id, job_type, status, cancel_requested, submitted_at) "
                f"VALUES (%s, %s, 'submitted', true, %s) ON CONFLICT (job_id) DO UPDATE SET "
                f"cancel_requested = true RETURNING {_COLUMNS}",
                (job_id, UNKNOWN_TYPE, self._clock.now())).fetchone()
        assert row is not None
        return _record(row)

    def cancel_requested(self, job_id: str) -> bool:
        with self._pool.connection() as conn:
            row = _cur(conn).execute("SELECT cancel_requested FROM jobs WHERE job_id = %s",
                               (job_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    # -- reads ------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        with self._pool.connection() as conn:
            row = _cur(conn).execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = %s",
                               (job_id,)).fetchone()
        return _record(row) if row else None

    def recent(self, *, status: JobStatus | None = None, limit: int = 50) -> list[JobRecord]:
        """Newest first."""
        with self._pool.connection() as conn:
            rows = _cur(conn).execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE (%s::text IS NULL OR status = %s) "
                f"ORDER BY submitted_at DESC, job_id LIMIT %s",
                (status, status, limit)).fetchall()
        return [_record(r) for r in rows]

    def events(self, job_id: str) -> list[JobEventRecord]:
        with self._pool.connection() as conn:
            rows = _cur(conn).execute(
                "SELECT job_id, seq, ts, type, data FROM job_events WHERE job_id = %s "
                "ORDER BY seq", (job_id,)).fetchall()
        return [JobEventRecord(**r) for r in rows]

    def symbol_results(self, job_id: str) -> list[dict[str, Any]]:
        with self._pool.connection() as conn:
            return _cur(conn).execute(
                "SELECT symbol, timeframe, status, bars, error, updated_at FROM "
                "job_symbol_results WHERE job_id = %s ORDER BY symbol, timeframe",
                (job_id,)).fetchall()

    def open_import_failures(self, *, source_id: str | None = None,
                             limit: int = 10_000) -> list[dict[str, Any]]:
        """Unresolved per-symbol import failures, newest first: the input of a retry."""
        with self._pool.connection() as conn:
            return _cur(conn).execute(
                "SELECT source_id, symbol, timeframe, reason, failed_at FROM import_failures "
                "WHERE resolved_at IS NULL AND (%s::text IS NULL OR source_id = %s) "
                "ORDER BY failed_at DESC LIMIT %s", (source_id, source_id, limit)).fetchall()

    # -- internals --------------------------------------------------------------------------
    def _lock(self, conn: Connection[Any], job_id: str) -> JobRecord:
        row = _cur(conn).execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = %s FOR UPDATE",
                           (job_id,)).fetchone()
        assert row is not None, job_id
        return _record(row)

    def _finish(self, conn: Connection[Any], job: JobRecord, status: JobStatus, *,
                now: datetime, error: str | None = None,
                result: dict[str, Any] | None = None) -> tuple[JobRecord, Payload]:
        row = _cur(conn).execute(
            f"UPDATE jobs SET status = %s, finished_at = %s, error = %s, "
            f"result = coalesce(%s, result) WHERE job_id = %s RETURNING {_COLUMNS}",
            (status.value, now, error, Jsonb(result) if result is not None else None,
             job.job_id)).fetchone()
        assert row is not None
        done = _record(row)
        counts = {"job_id": done.job_id, "total": done.total, "processed": done.processed,
                  "failed": done.failed}
        event: Payload
        if status is JobStatus.COMPLETED:
            started = done.started_at or now
            event = JobCompleted(**counts, duration_s=max(0.0, (now - started).total_seconds()),
                                 result=done.result)
        elif status is JobStatus.FAILED:
            event = JobFailed(**counts, error=(error or "failed")[:4000])
        elif status is JobStatus.CANCELLED:
            event = JobCancelled(**counts)
        else:
            raise ValueError(f"{status} is not a final job status")
        return done, self._add_event(conn, done.job_id, event, ts=now)

    @staticmethod
    def _add_event(conn: Connection[Any], job_id: str, event: Payload, *,
                   ts: datetime) -> Payload:
        _cur(conn).execute("INSERT INTO job_events (job_id, ts, type, data) VALUES (%s, %s, %s, %s)",
                     (job_id, ts, event.message_type, Jsonb(event.model_dump(mode="json"))))
        return event

    @staticmethod
    def _event_count(conn: Connection[Any], job_id: str, model: type[Payload]) -> int:
        row = _cur(conn).execute("SELECT count(*) AS n FROM job_events WHERE job_id = %s AND type = %s",
                           (job_id, model.message_type)).fetchone()
        return int(row["n"]) if row else 0
