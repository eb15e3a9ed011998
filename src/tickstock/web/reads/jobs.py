"""Jobs as the historical-data page shows them (table ``jobs`` and its per-symbol results)."""

from __future__ import annotations

from typing import Any

from tickstock.web.config import Pool

_JOB_COLUMNS = (
    "job_id, job_type, status, params, requested_by, correlation_id, submitted_at, started_at, "
    "finished_at, total, processed, failed, cancel_requested, worker, attempts, error")
ACTIVE = ("submitted", "running")


def _percent(job: dict[str, Any]) -> dict[str, Any]:
    total = job["total"]
    pct = 100.0 if job["status"] == "completed" else (
        min(100.0, round(100.0 * job["processed"] / total, 1)) if total else 0.0)
    return {**job, "percent": pct}


def list_jobs(pool: Pool, *, active: bool | None = None, limit: int = 50,
              job_type_prefix: str | None = None) -> list[dict[str, Any]]:
    where: list[str] = []
    args: list[Any] = []
    if active is True:
        where.append("status = ANY(%s)")
        args.append(list(ACTIVE))
    elif active is False:
        where.append("NOT (status = ANY(%s))")
        args.append(list(ACTIVE))
    if job_type_prefix:
        where.append("job_type LIKE %s")
        args.append(job_type_prefix + "%")
    sql = (f"SELECT {_JOB_COLUMNS} FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY submitted_at DESC LIMIT %s")
    with pool.connection() as db:
        rows = db.execute(sql, [*args, limit]).fetchall()
    return [_percent(dict(r)) for r in rows]


def get_job(pool: Pool, job_id: str) -> dict[str, Any] | None:
    """The job with its failed symbols."""
    with pool.connection() as db:
        row = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = %s",
                         (job_id,)).fetchone()
        if row is None:
            return None
        failures = db.execute(
            "SELECT symbol, timeframe, error, updated_at FROM job_symbol_results "
            "WHERE job_id = %s AND status = 'failed' ORDER BY symbol LIMIT 500",
            (job_id,)).fetchall()
    return {**_percent(dict(row)), "failures": [dict(f) for f in failures]}
