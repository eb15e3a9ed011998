"""Progress of a run as readers see it: per-phase percent and ETA, overall percent.

Computed from the stored counters (``processing_runs`` / ``processing_run_phases``), so the API,
the CLI and the events all show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tickstock.contracts import percent
from tickstock.store.runs import PhaseRecord, RunRecord


@dataclass(frozen=True)
class PhaseProgress:
    phase: str
    status: str
    total: int
    processed: int
    failed: int
    percent: float
    started_at: datetime | None
    completed_at: datetime | None
    eta_seconds: float | None


@dataclass(frozen=True)
class RunProgressView:
    """A run with its phases, everything the status endpoint and the CLI show."""

    run_id: str
    status: str
    trigger_type: str
    phase: str | None
    phases: tuple[PhaseProgress, ...]
    planned_phases: tuple[str, ...]
    percent: float
    session_date: date | None
    created_at: datetime
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
    universes: tuple[str, ...]
    timeframes: tuple[str, ...]
    requested_by: str | None
    error_message: str | None
    cancel_requested: bool
    eta_seconds: float | None


def eta(done: int, total: int, started_at: datetime | None, now: datetime) -> float | None:
    """Seconds left at the rate so far; None before the first unit or after the last."""
    if started_at is None or done <= 0 or done >= total:
        return None
    elapsed = (now - started_at).total_seconds()
    return round(elapsed / done * (total - done), 1)


def phase_progress(phase: PhaseRecord, now: datetime) -> PhaseProgress:
    done = phase.processed + phase.failed
    finished = phase.status in ("completed", "skipped")
    return PhaseProgress(
        phase=phase.phase, status=phase.status, total=phase.total, processed=phase.processed,
        failed=phase.failed,
        percent=100.0 if finished else percent(done, phase.total),
        started_at=phase.started_at, completed_at=phase.completed_at,
        eta_seconds=None if phase.status != "running" else eta(done, phase.total,
                                                                phase.started_at, now),
    )


def run_view(run: RunRecord, phases: list[PhaseRecord], now: datetime) -> RunProgressView:
    """The run, its phases and the overall percent (each planned phase weighs the same)."""
    shown = tuple(phase_progress(p, now) for p in sorted(
        phases, key=lambda p: run.phases.index(p.phase) if p.phase in run.phases else 99))
    if run.status == "completed":
        overall = 100.0
    elif run.phases:
        overall = round(sum(p.percent for p in shown) / len(run.phases), 2)
    else:
        overall = 0.0
    current = next((p for p in shown if p.status == "running"), None)
    remaining = None
    if current is not None and current.eta_seconds is not None and run.started_at is not None:
        # Current phase's ETA plus the later phases at the average phase duration so far.
        later = len(run.phases) - run.phases.index(current.phase) - 1 if current.phase in \
            run.phases else 0
        finished = [p for p in shown if p.completed_at is not None and p.started_at is not None]
        avg = (sum((p.completed_at - p.started_at for p in finished), timedelta())  # type: ignore[operator]
               / len(finished)).total_seconds() if finished else 0.0
        remaining = round(current.eta_seconds + later * avg, 1)
    return RunProgressView(
        run_id=run.run_id, status=run.status, trigger_type=run.trigger_type, phase=run.phase,
        phases=shown, planned_phases=run.phases, percent=overall, session_date=run.session_date,
        created_at=run.created_at, started_at=run.started_at, completed_at=run.completed_at,
        duration_seconds=run.duration_seconds, symbols_total=run.symbols_total,
        symbols_processed=run.symbols_processed, symbols_failed=run.symbols_failed,
        indicators_total=run.indicators_total, indicators_processed=run.indicators_processed,
        indicators_failed=run.indicators_failed, patterns_detected=run.patterns_detected,
        universes=run.universes, timeframes=run.timeframes, requested_by=run.requested_by,
        error_message=run.error_message, cancel_requested=run.cancel_requested,
        eta_seconds=remaining,
    )
