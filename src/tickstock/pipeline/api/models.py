"""Response shapes of the pipeline API (request bodies are the contract's command models)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from tickstock.pipeline.daily.progress import PhaseProgress, RunProgressView
from tickstock.pipeline.daily.service import CommandReceipt, ScheduleView
from tickstock.store.runs import ImportFailure


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PhaseOut(_Out):
    phase: str
    status: str
    total: int
    processed: int
    failed: int
    percent: float
    started_at: datetime | None
    completed_at: datetime | None
    eta_seconds: float | None

    @classmethod
    def of(cls, p: PhaseProgress) -> PhaseOut:
        return cls(**p.__dict__)


class RunOut(_Out):
    """A processing run: the seeds' ``processing_runs`` columns plus per-phase progress."""

    run_id: str
    status: str
    trigger_type: str
    phase: str | None
    planned_phases: list[str]
    phases: list[PhaseOut]
    percent: float
    eta_seconds: float | None
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
    universes: list[str]
    timeframes: list[str]
    requested_by: str | None
    error_message: str | None
    cancel_requested: bool

    @classmethod
    def of(cls, v: RunProgressView) -> RunOut:
        values = dict(v.__dict__)
        values["phases"] = [PhaseOut.of(p) for p in v.phases]
        values["planned_phases"] = list(v.planned_phases)
        values["universes"] = list(v.universes)
        values["timeframes"] = list(v.timeframes)
        return cls(**values)


class RunPage(_Out):
    items: list[RunOut]
    page: int
    page_size: int
    total: int


class ScheduleOut(_Out):
    enabled: bool
    run_at: str  # New York 'HH:MM'
    minutes_after_close: int | None
    timezone: str
    universes: list[str]
    timeframes: list[str]
    phases: list[str]
    last_session_run: date | None
    next_run_at: datetime | None
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, view: ScheduleView) -> ScheduleOut:
        s = view.schedule
        return cls(enabled=s.enabled, run_at=s.run_at.strftime("%H:%M"),
                   minutes_after_close=s.minutes_after_close, timezone=s.timezone,
                   universes=list(s.universes), timeframes=list(s.timeframes),
                   phases=list(s.phases), last_session_run=s.last_session_run,
                   next_run_at=view.next_run_at, updated_at=s.updated_at, updated_by=s.updated_by)


class CommandOut(_Out):
    """What became of a command: ``accepted`` (with the run/job it started), ``rejected`` (with
    the reason), or ``submitted`` (no answer within the wait: no worker is consuming)."""

    command_id: str
    command_type: str
    status: Literal["accepted", "rejected", "submitted"]
    reason: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    note: str | None = None

    @classmethod
    def of(cls, r: CommandReceipt) -> CommandOut:
        return cls(**r.__dict__)


class ImportFailureOut(_Out):
    source_id: str
    symbol: str
    timeframe: str
    reason: str
    failed_at: datetime

    @classmethod
    def of(cls, f: ImportFailure) -> ImportFailureOut:
        return cls(**f.__dict__)


class HealthOut(_Out):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str]
    active_run_id: str | None = None
