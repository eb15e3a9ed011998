"""The persisted daily-processing schedule (``processing_schedule``).

Written by the scheduler role (first start, submissions) and by the update-schedule command
handler; read by the pipeline API. ``last_session_run`` is advanced by compare-and-set so a
session is submitted once even if two schedulers race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from tickstock.core.errors import NotFoundError
from tickstock.core.timeutil import utc

DEFAULT_SCHEDULE = "daily"
# Columns an update may change; everything else is owned by the scheduler itself.
UPDATABLE = ("enabled", "run_at", "minutes_after_close", "universes", "timeframes", "phases")


@dataclass(frozen=True)
class ScheduleRecord:
    """One row of ``processing_schedule``. ``run_at`` is New York wall-clock time."""

    name: str
    enabled: bool
    run_at: time
    minutes_after_close: int | None
    timezone: str
    universes: tuple[str, ...]
    timeframes: tuple[str, ...]
    phases: tuple[str, ...]
    last_session_run: date | None
    updated_at: datetime
    updated_by: str | None


def _record(row: dict[str, Any]) -> ScheduleRecord:
    return ScheduleRecord(
        name=row["name"],
        enabled=row["enabled"],
        run_at=row["run_at"],
        minutes_after_close=row["minutes_after_close"],
        timezone=row["timezone"],
        universes=tuple(row["universes"]),
        timeframes=tuple(row["timeframes"]),
        phases=tuple(row["phases"]),
        last_session_run=row["last_session_run"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )


class ScheduleRepository:
    """Read, create and change the schedule."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def get(self, name: str = DEFAULT_SCHEDULE) -> ScheduleRecord | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM processing_schedule WHERE name = %s", (name,)).fetchone()
        return None if row is None else _record(row)

    def ensure(
        self, now: datetime, baseline_session: date | None, name: str = DEFAULT_SCHEDULE
    ) -> ScheduleRecord:
        """The schedule, created with defaults if missing.

        A new schedule starts with ``last_session_run = baseline_session`` (the last session
        already due when it was created): sessions before the schedule existed were never
        missed, so they are not caught up.
        """
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "INSERT INTO processing_schedule (name, last_session_run, updated_at, updated_by)"
                " VALUES (%s, %s, %s, 'scheduler') ON CONFLICT (name) DO NOTHING",
                (name, baseline_session, utc(now)),
            )
            row = cur.execute("SELECT * FROM processing_schedule WHERE name = %s", (name,)).fetchone()
        assert row is not None
        return _record(row)

    def update(
        self, changes: dict[str, Any], *, now: datetime, updated_by: str,
        name: str = DEFAULT_SCHEDULE,
    ) -> ScheduleRecord:
        """Apply ``changes`` (keys from ``UPDATABLE``) and return the new schedule.

        A missing schedule row is created with defaults first, so the first update works before
        any scheduler ever started.
        """
        unknown = set(changes) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"schedule fields not updatable: {', '.join(sorted(unknown))}")
        sets = ", ".join(f"{column} = %({column})s" for column in changes)
        params = dict(changes, name=name, now=utc(now), by=updated_by)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "INSERT INTO processing_schedule (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            row = cur.execute(
                f"UPDATE processing_schedule SET {sets}{', ' if sets else ''}"
                "updated_at = %(now)s, updated_by = %(by)s WHERE name = %(name)s RETURNING *",
                params,
            ).fetchone()
        if row is None:
            raise NotFoundError(f"schedule {name!r} does not exist")
        return _record(row)

    def claim_session(self, session: date, name: str = DEFAULT_SCHEDULE) -> bool:
        """Record that the run for ``session`` is being submitted; False if it already was.

        Compare-and-set: of two schedulers that race for one session, exactly one gets True.
        """
        with self._pool.connection() as conn:
            cur = conn.execute(
                "UPDATE processing_schedule SET last_session_run = %s WHERE name = %s"
                " AND (last_session_run IS NULL OR last_session_run < %s)",
                (session, name, session),
            )
            return cur.rowcount == 1

    def unclaim_session(
        self, session: date, previous: date | None, name: str = DEFAULT_SCHEDULE
    ) -> None:
        """Undo ``claim_session`` after the trigger could not be sent, so the next tick retries."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE processing_schedule SET last_session_run = %s"
                " WHERE name = %s AND last_session_run = %s",
                (previous, name, session),
            )
