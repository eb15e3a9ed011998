"""Daily processing runs, their phases and symbol batches, and per-symbol import failures.

Tables: ``processing_runs`` (one row per run, the seeds' columns), ``processing_run_phases``
(progress per phase), ``processing_batches`` (the unit of work a worker claims), and
``import_failures`` (the input of "retry failed imports"). PostgreSQL is the source of truth
for run state; only the executing side (workers, command handlers) writes here.

Concurrency rules the orchestrator relies on:

- at most one run is ``pending`` or ``running`` (a unique partial index); ``create_run`` turns
  the violation into ``RunAlreadyActive`` naming the active run;
- a batch is completed once: ``complete_batch`` updates counters only when it flips the
  batch to a final status, and exactly one completer learns that the phase is finished (the
  phase row is locked while the remaining batches are counted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from tickstock.core.errors import NotFoundError, StoreError
from tickstock.core.timeutil import utc

ACTIVE_STATUSES = ("pending", "running")
FINAL_STATUSES = ("completed", "failed", "cancelled")
# Run-level counters a batch may add to (the seeds' columns).
RUN_COUNTERS = (
    "symbols_processed", "symbols_failed", "indicators_processed", "indicators_failed",
    "patterns_detected",
)


class RunAlreadyActive(StoreError):
    """A run is pending or running; ``active`` is it."""

    def __init__(self, active: RunRecord) -> None:
        super().__init__(
            f"run {active.run_id} is already {active.status} "
            f"(phase {active.phase or '-'}, started {active.started_at or active.created_at})"
        )
        self.active = active


@dataclass(frozen=True)
class NewRun:
    """What a trigger asks for."""

    run_id: str
    trigger_type: str
    phases: tuple[str, ...]
    universes: tuple[str, ...]
    timeframes: tuple[str, ...]
    requested_by: str | None = None
    session_date: date | None = None
    symbols_total: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRecord:
    """One row of ``processing_runs``."""

    run_id: str
    trigger_type: str
    status: str
    phase: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    symbols_total: int
    symbols_processed: int
    symbols_failed: int
    indicators_total: int
    indicators_processed: int
    indicators_failed: int
    patterns_detected: int
    error_message: str | None
    metadata: dict[str, Any]
    requested_by: str | None
    session_date: date | None
    phases: tuple[str, ...]
    universes: tuple[str, ...]
    timeframes: tuple[str, ...]
    cancel_requested: bool
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class PhaseRecord:
    """One row of ``processing_run_phases``; counts are symbols."""

    run_id: str
    phase: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    total: int
    processed: int
    failed: int


@dataclass(frozen=True)
class BatchRecord:
    """One row of ``processing_batches``."""

    run_id: str
    phase: str
    batch_no: int
    symbols: tuple[str, ...]
    status: str
    worker: str | None
    attempts: int
    processed: int
    failed: int
    completed_at: datetime | None
    published_at: datetime | None
    claimed_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class BatchCompletion:
    """Result of ``complete_batch``: did this call finish the batch, and the phase?"""

    counted: bool  # False when the batch was already final (a redelivery)
    phase_finished: bool
    phase: PhaseRecord


@dataclass(frozen=True)
class ImportFailure:
    source_id: str
    symbol: str
    timeframe: str
    reason: str
    failed_at: datetime


def _run(row: dict[str, Any]) -> RunRecord:
    return RunRecord(
        **{k: row[k] for k in RunRecord.__dataclass_fields__ if k not in
           ("phases", "universes", "timeframes")},
        phases=tuple(row["phases"]), universes=tuple(row["universes"]),
        timeframes=tuple(row["timeframes"]),
    )


def _phase(row: dict[str, Any]) -> PhaseRecord:
    return PhaseRecord(**{k: row[k] for k in PhaseRecord.__dataclass_fields__})


def _batch(row: dict[str, Any]) -> BatchRecord:
    values = {k: row[k] for k in BatchRecord.__dataclass_fields__ if k != "symbols"}
    return BatchRecord(symbols=tuple(row["symbols"]), **values)


class RunRepository:
    """Runs, phases, batches and import failures."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # -- runs -----------------------------------------------------------------------------------

    def create_run(self, new: NewRun, now: datetime) -> RunRecord:
        """Insert a ``pending`` run; RunAlreadyActive when another run is pending or running."""
        try:
            with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    """
                    INSERT INTO processing_runs (run_id, trigger_type, status, requested_by,
                        session_date, phases, universes, timeframes, symbols_total, metadata,
                        created_at)
                    VALUES (%s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING *
                    """,
                    (new.run_id, new.trigger_type, new.requested_by, new.session_date,
                     list(new.phases), list(new.universes), list(new.timeframes),
                     new.symbols_total, Jsonb(dict(new.metadata)), utc(now)),
                ).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "processing_runs_pkey":
                raise StoreError(f"run id {new.run_id} already exists") from None
            active = self.active_run()
            if active is None:  # it finished in between: try once more
                return self.create_run(new, now)
            raise RunAlreadyActive(active) from None
        assert row is not None
        return _run(row)

    def get_run(self, run_id: str) -> RunRecord:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM processing_runs WHERE run_id = %s", (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"processing run {run_id!r} does not exist")
        return _run(row)

    def find_run(self, run_id: str) -> RunRecord | None:
        try:
            return self.get_run(run_id)
        except NotFoundError:
            return None

    def active_run(self) -> RunRecord | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT * FROM processing_runs WHERE status IN ('pending', 'running')"
            ).fetchone()
        return None if row is None else _run(row)

    def latest_run(self) -> RunRecord | None:
        runs, _ = self.list_runs(limit=1)
        return runs[0] if runs else None

    def list_runs(
        self, *, limit: int = 20, offset: int = 0, status: str | None = None
    ) -> tuple[list[RunRecord], int]:
        """Newest first, one page, and the total count (for paging)."""
        where, params = ("WHERE status = %s", [status]) if status else ("", [])
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            total_row = cur.execute(f"SELECT count(*) AS n FROM processing_runs {where}",
                                    params).fetchone()
            rows = cur.execute(
                f"SELECT * FROM processing_runs {where} ORDER BY created_at DESC, run_id "
                "LIMIT %s OFFSET %s", [*params, limit, offset],
            ).fetchall()
        return [_run(r) for r in rows], int(total_row["n"]) if total_row else 0

    def completed_for_session(self, session: date, phases: Sequence[str]) -> RunRecord | None:
        """The latest completed run for ``session`` that covered every phase of ``phases``."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT * FROM processing_runs WHERE session_date = %s AND status = 'completed'"
                " AND phases @> %s ORDER BY completed_at DESC LIMIT 1",
                (session, list(phases)),
            ).fetchone()
        return None if row is None else _run(row)

    def update_run(self, run_id: str, **values: Any) -> RunRecord:
        """Set columns of a run (status, phase, started_at, indicators_total, metadata, ...)."""
        if not values:
            return self.get_run(run_id)
        sets = ", ".join(f"{column} = %({column})s" for column in values)
        params = {k: Jsonb(v) if k == "metadata" else v for k, v in values.items()}
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"UPDATE processing_runs SET {sets} WHERE run_id = %(run_id)s RETURNING *",
                dict(params, run_id=run_id),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"processing run {run_id!r} does not exist")
        return _run(row)

    def merge_metadata(self, run_id: str, values: Mapping[str, Any]) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE processing_runs SET metadata = metadata || %s WHERE run_id = %s",
                (Jsonb(dict(values)), run_id),
            )

    def enqueue(self, run_id: str, request: Mapping[str, Any], limit: int = 1) -> bool:
        """Queue a trigger behind active run ``run_id``; False when the queue is full or the
        run is no longer active."""
        with self._pool.connection() as conn:
            cur = conn.execute(
                """
                UPDATE processing_runs
                SET metadata = jsonb_set(metadata, '{queue}',
                                         coalesce(metadata->'queue', '[]'::jsonb) || %s)
                WHERE run_id = %s AND status IN ('pending', 'running')
                  AND jsonb_array_length(coalesce(metadata->'queue', '[]'::jsonb)) < %s
                """,
                (Jsonb([dict(request)]), run_id, limit),
            )
            return cur.rowcount == 1

    def finish_run(
        self, run_id: str, status: str, now: datetime, error: str | None = None
    ) -> RunRecord | None:
        """Move an active run to a final status; None if it already was final."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"{status!r} is not a final run status")
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """
                UPDATE processing_runs SET status = %(status)s, completed_at = %(now)s,
                    duration_seconds = extract(epoch FROM %(now)s - coalesce(started_at, created_at)),
                    error_message = coalesce(%(error)s, error_message)
                WHERE run_id = %(run_id)s AND status IN ('pending', 'running')
                RETURNING *
                """,
                {"status": status, "now": utc(now), "error": error, "run_id": run_id},
            ).fetchone()
            if row is not None and status != "completed":
                cur.execute(
                    "UPDATE processing_run_phases SET status = %s, completed_at = %s"
                    " WHERE run_id = %s AND status IN ('pending', 'running')",
                    ("cancelled" if status == "cancelled" else "failed", utc(now), run_id),
                )
        return None if row is None else _run(row)

    def request_cancel(self, run_id: str) -> RunRecord | None:
        """Flag an active run for cancellation; None if it is not active."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "UPDATE processing_runs SET cancel_requested = true"
                " WHERE run_id = %s AND status IN ('pending', 'running') RETURNING *",
                (run_id,),
            ).fetchone()
        return None if row is None else _run(row)

    # -- phases and batches ---------------------------------------------------------------------

    def start_phase(
        self, run_id: str, phase: str, batches: Sequence[Sequence[str]], now: datetime,
        *, total: int | None = None,
    ) -> list[BatchRecord]:
        """Make ``phase`` the run's current phase with these symbol batches (idempotent).

        Returns the batches of the phase that are not completed yet (all of them the first time).
        """
        now = utc(now)
        total = sum(len(b) for b in batches) if total is None else total
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "UPDATE processing_runs SET status = 'running', phase = %s,"
                " started_at = coalesce(started_at, %s) WHERE run_id = %s",
                (phase, now, run_id),
            )
            cur.execute(
                "INSERT INTO processing_run_phases (run_id, phase, status, started_at, total)"
                " VALUES (%s, %s, 'running', %s, %s) ON CONFLICT (run_id, phase) DO NOTHING",
                (run_id, phase, now, total),
            )
            cur.executemany(
                "INSERT INTO processing_batches (run_id, phase, batch_no, symbols, status)"
                " VALUES (%s, %s, %s, %s, 'pending') ON CONFLICT DO NOTHING",
                [(run_id, phase, no, list(symbols)) for no, symbols in enumerate(batches)],
            )
            rows = cur.execute(
                "SELECT * FROM processing_batches WHERE run_id = %s AND phase = %s"
                " AND status NOT IN ('completed', 'failed') ORDER BY batch_no",
                (run_id, phase),
            ).fetchall()
        return [_batch(r) for r in rows]

    def skip_phase(self, run_id: str, phase: str, now: datetime) -> None:
        """Record a phase that had nothing to do."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO processing_run_phases (run_id, phase, status, started_at,"
                " completed_at) VALUES (%s, %s, 'skipped', %s, %s)"
                " ON CONFLICT (run_id, phase) DO NOTHING",
                (run_id, phase, utc(now), utc(now)),
            )

    def phases(self, run_id: str) -> list[PhaseRecord]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT * FROM processing_run_phases WHERE run_id = %s"
                " ORDER BY started_at NULLS LAST, phase",
                (run_id,),
            ).fetchall()
        return [_phase(r) for r in rows]

    def get_phase(self, run_id: str, phase: str) -> PhaseRecord | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT * FROM processing_run_phases WHERE run_id = %s AND phase = %s",
                (run_id, phase),
            ).fetchone()
        return None if row is None else _phase(row)

    def batches(self, run_id: str, phase: str | None = None) -> list[BatchRecord]:
        query = "SELECT * FROM processing_batches WHERE run_id = %s"
        params: list[Any] = [run_id]
        if phase is not None:
            query += " AND phase = %s"
            params.append(phase)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query + " ORDER BY phase, batch_no", params).fetchall()
        return [_batch(r) for r in rows]

    def mark_published(self, run_id: str, phase: str, batch_nos: Iterable[int], now: datetime) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE processing_batches SET published_at = %s WHERE run_id = %s"
                " AND phase = %s AND batch_no = ANY(%s)",
                (utc(now), run_id, phase, list(batch_nos)),
            )

    def claim_batch(
        self, run_id: str, phase: str, batch_no: int, worker: str, now: datetime,
        *, stale_before: datetime,
    ) -> BatchRecord | None:
        """Take a batch of a running run to work on.

        None when the batch is final (a redelivered message), its run is not running any more
        (cancelled, failed), or another worker claimed it after ``stale_before`` (it is alive
        and busy with it). A claim older than that is taken over: its worker stopped, and the
        work is idempotent.
        """
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """
                UPDATE processing_batches b SET status = 'running', worker = %(worker)s,
                    attempts = b.attempts + 1, claimed_at = %(now)s
                FROM processing_runs r
                WHERE b.run_id = %(run_id)s AND b.phase = %(phase)s AND b.batch_no = %(no)s
                  AND r.run_id = b.run_id AND r.status = 'running' AND NOT r.cancel_requested
                  AND (b.status = 'pending' OR (b.status = 'running' AND (
                       b.worker = %(worker)s OR b.claimed_at IS NULL
                       OR b.claimed_at < %(stale)s)))
                RETURNING b.*
                """,
                {"worker": worker, "now": utc(now), "run_id": run_id, "phase": phase,
                 "no": batch_no, "stale": utc(stale_before)},
            ).fetchone()
        return None if row is None else _batch(row)

    def complete_batch(
        self, run_id: str, phase: str, batch_no: int, now: datetime, *,
        processed: int, failed: int, run_counters: Mapping[str, int] | None = None,
        status: str = "completed", error: str | None = None,
    ) -> BatchCompletion:
        """Finish a batch and add its counts to its phase and run, in one transaction."""
        counters = dict(run_counters or {})
        unknown = set(counters) - set(RUN_COUNTERS)
        if unknown:
            raise ValueError(f"unknown run counters: {', '.join(sorted(unknown))}")
        now = utc(now)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            flipped = cur.execute(
                "UPDATE processing_batches SET status = %s, processed = %s, failed = %s,"
                " completed_at = %s, error = %s WHERE run_id = %s AND phase = %s"
                " AND batch_no = %s AND status NOT IN ('completed', 'failed') RETURNING batch_no",
                (status, processed, failed, now, error, run_id, phase, batch_no),
            ).fetchone()
            # Locking the phase row serialises completers: the last one sees nothing remaining.
            phase_row = cur.execute(
                "UPDATE processing_run_phases SET processed = processed + %s,"
                " failed = failed + %s WHERE run_id = %s AND phase = %s RETURNING *",
                (processed if flipped else 0, failed if flipped else 0, run_id, phase),
            ).fetchone()
            if phase_row is None:
                raise NotFoundError(f"run {run_id} has no phase {phase!r}")
            if flipped and counters:
                sets = ", ".join(f"{c} = {c} + %({c})s" for c in counters)
                cur.execute(f"UPDATE processing_runs SET {sets} WHERE run_id = %(run_id)s",
                            dict(counters, run_id=run_id))
            remaining = cur.execute(
                "SELECT count(*) AS n FROM processing_batches WHERE run_id = %s AND phase = %s"
                " AND status NOT IN ('completed', 'failed')",
                (run_id, phase),
            ).fetchone()
            finished = False
            if remaining is not None and remaining["n"] == 0 and phase_row["status"] == "running":
                phase_row = cur.execute(
                    "UPDATE processing_run_phases SET status = 'completed', completed_at = %s"
                    " WHERE run_id = %s AND phase = %s RETURNING *",
                    (now, run_id, phase),
                ).fetchone()
                finished = True
        assert phase_row is not None
        return BatchCompletion(counted=flipped is not None, phase_finished=finished,
                               phase=_phase(phase_row))

    def open_batches(self, run_id: str, phase: str) -> list[BatchRecord]:
        """Batches of a phase that are not final yet."""
        return [b for b in self.batches(run_id, phase) if b.status not in ("completed", "failed")]

    # -- import failures ------------------------------------------------------------------------

    def record_import_failures(
        self, source_id: str, failures: Iterable[tuple[str, str, str]], now: datetime
    ) -> int:
        """Record ``(symbol, timeframe, reason)`` failures of job/run ``source_id``; older open
        failures of the same symbol and timeframe are closed as retried by ``source_id``."""
        rows = [(source_id, s, tf, reason[:2000], utc(now)) for s, tf, reason in failures]
        if not rows:
            return 0
        with self._pool.connection() as conn, conn.cursor() as cur:
            # One open failure per (symbol, timeframe): a later failure supersedes older ones.
            cur.execute(
                "UPDATE import_failures SET resolved_at = %s, retried_by = %s"
                " WHERE resolved_at IS NULL AND source_id <> %s AND (symbol, timeframe) IN"
                " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (utc(now), source_id, source_id, [r[1] for r in rows], [r[2] for r in rows]))
            cur.executemany(
                "INSERT INTO import_failures (source_id, symbol, timeframe, reason, failed_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (source_id, symbol, timeframe)"
                " DO UPDATE SET reason = EXCLUDED.reason, failed_at = EXCLUDED.failed_at,"
                " resolved_at = NULL",
                rows,
            )
        return len(rows)

    def open_import_failures(
        self, *, source_id: str | None = None, symbols: Sequence[str] = ()
    ) -> list[ImportFailure]:
        query = "SELECT * FROM import_failures WHERE resolved_at IS NULL"
        params: list[Any] = []
        if source_id is not None:
            query += " AND source_id = %s"
            params.append(source_id)
        if symbols:
            query += " AND symbol = ANY(%s)"
            params.append(list(symbols))
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query + " ORDER BY symbol, timeframe", params).fetchall()
        return [ImportFailure(r["source_id"], r["symbol"], r["timeframe"], r["reason"],
                              r["failed_at"]) for r in rows]

    def resolve_import_failures(
        self, pairs: Iterable[tuple[str, str]], retried_by: str, now: datetime
    ) -> int:
        """Close open failures of ``(symbol, timeframe)`` pairs that a later import fixed."""
        items = list(pairs)
        if not items:
            return 0
        with self._pool.connection() as conn:
            cur = conn.execute(
                "UPDATE import_failures SET resolved_at = %s, retried_by = %s"
                " WHERE resolved_at IS NULL AND (symbol, timeframe) IN"
                " (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (utc(now), retried_by, [s for s, _ in items], [t for _, t in items]),
            )
            return cur.rowcount

    # -- what a run works on ---------------------------------------------------------------------

    def resolve_symbols(self, universes: Sequence[str]) -> tuple[list[str], list[str]]:
        """``(symbols, unknown universes)``: the active members of ``universes`` (every active
        symbol when ``universes`` is empty), sorted."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if not universes:
                rows = cur.execute(
                    "SELECT symbol FROM symbols WHERE active ORDER BY symbol").fetchall()
                return [r["symbol"] for r in rows], []
            known = {r["name"] for r in cur.execute(
                "SELECT name FROM universes WHERE name = ANY(%s)", (list(universes),))}
            rows = cur.execute(
                "SELECT DISTINCT m.symbol FROM universe_members m JOIN symbols s USING (symbol)"
                " WHERE m.universe = ANY(%s) AND s.active ORDER BY m.symbol",
                (list(universes),),
            ).fetchall()
        return [r["symbol"] for r in rows], [u for u in universes if u not in known]

    def known_symbols(self, symbols: Sequence[str]) -> list[str]:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute("SELECT symbol FROM symbols WHERE symbol = ANY(%s)",
                               (list(symbols),)).fetchall()
        return sorted(r["symbol"] for r in rows)
