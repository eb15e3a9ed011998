"""Daily processing as the admin page shows it: runs with their phases, schedule, failures.

The scheduler and workers write these tables; the web only reads them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from tickstock.contracts.common import ALL_PHASES
from tickstock.core.timeutil import NEW_YORK
from tickstock.web.config import Pool

if TYPE_CHECKING:
    from tickstock.market.calendar import MarketCalendar

ACTIVE = ("pending", "running")
_RUN_COLUMNS = (
    "run_id, trigger_type, status, phase, started_at, completed_at, duration_seconds, "
    "symbols_total, symbols_processed, symbols_failed, indicators_total, indicators_processed, "
    "indicators_failed, patterns_detected, error_message, requested_by, session_date, phases, "
    "universes, timeframes, cancel_requested, created_at")


def _phases(db: Any, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = db.execute(
        "SELECT run_id, phase, status, started_at, completed_at, total, processed, failed "
        "FROM processing_run_phases WHERE run_id = ANY(%s)", (run_ids,)).fetchall()
    by_run: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_run.setdefault(r["run_id"], []).append(dict(r))
    return by_run


def _with_phases(run: dict[str, Any], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with one entry per planned phase, in run order, with percent done."""
    known = {p["phase"]: p for p in phases}
    order = [p for p in ALL_PHASES if p.value in (run["phases"] or [])]
    out = []
    for phase in order:
        p = known.get(phase.value, {"phase": phase.value, "status": "pending", "total": 0,
                                    "processed": 0, "failed": 0, "started_at": None,
                                    "completed_at": None})
        total, done = p["total"], p["processed"]
        pct = 100.0 if p["status"] in ("completed", "skipped") else (
            min(100.0, round(100.0 * done / total, 1)) if total else 0.0)
        out.append({**{k: v for k, v in p.items() if k != "run_id"}, "percent": pct})
    return {**run, "phase_details": out}


def run(pool: Pool, run_id: str) -> dict[str, Any] | None:
    with pool.connection() as db:
        row = db.execute(f"SELECT {_RUN_COLUMNS} FROM processing_runs WHERE run_id = %s",
                         (run_id,)).fetchone()
        if row is None:
            return None
        return _with_phases(dict(row), _phases(db, [run_id]).get(run_id, []))


def current_run(pool: Pool) -> dict[str, Any] | None:
    """The active run, else the most recent one; None when there never was a run."""
    with pool.connection() as db:
        return _current_run(db)


def _current_run(db: Any) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {_RUN_COLUMNS} FROM processing_runs ORDER BY (status = ANY(%s)) DESC, "
        "created_at DESC LIMIT 1", (list(ACTIVE),)).fetchone()
    if row is None:
        return None
    return _with_phases(dict(row), _phases(db, [row["run_id"]]).get(row["run_id"], []))


def status(pool: Pool) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
    """(current run, schedule, open import failures) from one connection: the status
    endpoint is the most polled read of the admin API."""
    with pool.connection() as db:
        return _current_run(db), _schedule(db), _count_open_failures(db)


def history(pool: Pool, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    with pool.connection() as db:
        rows = db.execute(
            f"SELECT {_RUN_COLUMNS} FROM processing_runs ORDER BY created_at DESC "
            "LIMIT %s OFFSET %s", (limit, offset)).fetchall()
        phases = _phases(db, [r["run_id"] for r in rows])
    return [_with_phases(dict(r), phases.get(r["run_id"], [])) for r in rows]


def schedule(pool: Pool) -> dict[str, Any] | None:
    with pool.connection() as db:
        return _schedule(db)


def _schedule(db: Any) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT name, enabled, run_at, minutes_after_close, timezone, universes, timeframes, "
        "phases, last_session_run, updated_at, updated_by FROM processing_schedule "
        "WHERE name = 'daily'").fetchone()
    return None if row is None else dict(row)


def next_run_at(sched: dict[str, Any], calendar: MarketCalendar, now: datetime) -> datetime | None:
    """When the schedule fires next: on the next session whose run time is still ahead."""
    if not sched["enabled"]:
        return None
    day = now.astimezone(NEW_YORK).date() - timedelta(days=1)
    for _ in range(15):
        session = calendar.next_session(day)
        if sched["minutes_after_close"] is not None:
            at = session.close + timedelta(minutes=int(sched["minutes_after_close"]))
        else:
            run_at: time = sched["run_at"]
            at = datetime.combine(session.day, run_at, tzinfo=NEW_YORK).astimezone(now.tzinfo)
        last = sched["last_session_run"]
        if at > now and (last is None or session.day > last):
            return at
        day = session.day
    return None


def open_failures(pool: Pool, source_id: str | None = None,
                  limit: int = 200) -> list[dict[str, Any]]:
    """Unresolved per-symbol import failures, newest first."""
    with pool.connection() as db:
        rows = db.execute(
            "SELECT source_id, symbol, timeframe, reason, failed_at FROM import_failures "
            "WHERE resolved_at IS NULL AND (%s::text IS NULL OR source_id = %s) "
            "ORDER BY failed_at DESC LIMIT %s", (source_id, source_id, limit)).fetchall()
    return [dict(r) for r in rows]


def count_open_failures(pool: Pool) -> int:
    with pool.connection() as db:
        return _count_open_failures(db)


def _count_open_failures(db: Any) -> int:
    row = db.execute(
        "SELECT count(*) AS n FROM import_failures WHERE resolved_at IS NULL").fetchone()
    return int(row["n"]) if row else 0
