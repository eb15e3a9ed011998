"""Commands: requests to the pipeline, on ``names.COMMANDS_STREAM``.

A command is durable (stream + consumer group) and answered by a ``command.accepted`` or
``command.rejected`` event carrying the command envelope's id as ``command_id``.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from tickstock.contracts.common import (
    ALL_PHASES,
    Identifier,
    Payload,
    Phase,
    Requester,
    Symbol,
    Timeframe,
    UniverseName,
)

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Command(Payload):
    """Base of commands."""

    kind: ClassVar[Literal["command"]] = "command"

    requested_by: Requester | None = None


class TriggerDailyProcessing(Command):
    """Start a daily processing run now (the scheduler sends the same command on schedule)."""

    message_type: ClassVar[str] = "command.trigger_daily_processing"

    run_id: Identifier | None = Field(
        default=None, description="Pre-assigned run id so the requester can follow it; "
        "generated when absent.")
    skip_market_check: bool = Field(
        default=False, description="Run even when the market was closed on the session day.")
    phases: tuple[Phase, ...] = Field(default=ALL_PHASES, min_length=1)
    universes: tuple[UniverseName, ...] = Field(
        default=(), description="Universes to process; empty means the schedule's universes.")
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)
    queue_if_busy: bool = Field(
        default=False,
        description="When a run is active: queue behind it (true) or reject (false).")


class _Selection(Command):
    """Symbols and/or universes to work on; both empty means 'the scheduled universes'."""

    symbols: tuple[Symbol, ...] = ()
    universes: tuple[UniverseName, ...] = ()
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)


class TriggerDataImport(_Selection):
    """Run only the data-import phase (top up bars) for a selection."""

    message_type: ClassVar[str] = "command.trigger_data_import"

    run_id: Identifier | None = None


class TriggerIndicatorProcessing(_Selection):
    """Recompute indicators for a selection; ``indicators`` empty means every registered one."""

    message_type: ClassVar[str] = "command.trigger_indicator_processing"

    run_id: Identifier | None = None
    indicators: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...] = ()


class TriggerPatternDetection(_Selection):
    """Re-run pattern detection for a selection; ``patterns`` empty means every registered one."""

    message_type: ClassVar[str] = "command.trigger_pattern_detection"

    run_id: Identifier | None = None
    patterns: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...] = ()


class Cancel(Command):
    """Cancel a daily run or a job: exactly one of ``run_id`` and ``job_id``. Work stops at the
    next symbol boundary; stored data stays consistent."""

    message_type: ClassVar[str] = "command.cancel"

    run_id: Identifier | None = None
    job_id: Identifier | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.run_id is None) == (self.job_id is None):
            raise ValueError("give exactly one of run_id and job_id")
        return self


class RetryFailedImports(Command):
    """Re-import the open entries of ``import_failures`` (all, or those of one job/run, or of
    some symbols)."""

    message_type: ClassVar[str] = "command.retry_failed_imports"

    source_id: Identifier | None = Field(
        default=None, description="Only failures recorded by this job or run.")
    symbols: tuple[Symbol, ...] = ()


class UpdateSchedule(Command):
    """Change the daily schedule; a field left out (null) keeps its current value."""

    message_type: ClassVar[str] = "command.update_schedule"

    enabled: bool | None = None
    run_at: str | None = Field(
        default=None, description="New York wall-clock time 'HH:MM' (24 h).", examples=["16:10"])
    universes: tuple[UniverseName, ...] | None = None
    timeframes: tuple[Timeframe, ...] | None = Field(default=None, min_length=1)
    phases: tuple[Phase, ...] | None = Field(default=None, min_length=1)

    @field_validator("run_at")
    @classmethod
    def _hh_mm(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError(f"run_at {value!r} is not 'HH:MM' (00:00-23:59)")
        return value


COMMANDS: tuple[type[Command], ...] = (
    TriggerDailyProcessing,
    TriggerDataImport,
    TriggerIndicatorProcessing,
    TriggerPatternDetection,
    Cancel,
    RetryFailedImports,
    UpdateSchedule,
)
