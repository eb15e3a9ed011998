"""Events: facts that happened, on the capped ``names.EVENTS_STREAM`` (mirrored on
``names.EVENTS_CHANNEL``). Best effort and for live views: the state they describe is kept in
PostgreSQL by the side that executes. The envelope's ``correlation_id`` is the job or run id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import Field, TypeAdapter, model_validator

from tickstock.contracts.common import (
    Count,
    Identifier,
    Payload,
    Percent,
    Phase,
    Requester,
    Symbol,
    Timeframe,
    UniverseName,
    UtcDatetime,
)

Text = Annotated[str, Field(max_length=4000)]


class JobStatus(StrEnum):
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Event(Payload):
    """Base of events."""

    kind: ClassVar[Literal["event"]] = "event"


# -- jobs -------------------------------------------------------------------------------------
class _JobEvent(Event):
    job_id: Identifier


class _JobCounts(_JobEvent):
    total: Count = 0
    processed: Count = 0
    failed: Count = 0


class JobSubmitted(_JobEvent):
    """A job was accepted onto the jobs stream."""

    message_type: ClassVar[str] = "job.submitted"

    job_type: str
    params: dict[str, Any] = Field(default_factory=dict)
    requested_by: Requester | None = None


class JobStarted(_JobEvent):
    """A worker began (or, after a crash, resumed) a job."""

    message_type: ClassVar[str] = "job.started"

    job_type: str
    worker: str
    attempt: Annotated[int, Field(ge=1)] = 1


class JobProgress(_JobCounts):
    """Progress of a running job; ``processed`` includes ``failed``."""

    message_type: ClassVar[str] = "job.progress"

    percent: Percent = 0.0


class SymbolStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class JobSymbolDone(_JobEvent):
    """One symbol (and timeframe) of a job is finished, well or not."""

    message_type: ClassVar[str] = "job.symbol_done"

    symbol: Symbol
    timeframe: Timeframe | Literal[""] = ""
    status: SymbolStatus = SymbolStatus.OK
    bars: Count = 0
    error: Text | None = None


class JobCompleted(_JobCounts):
    """A job finished (some symbols may have failed; see ``failed``)."""

    message_type: ClassVar[str] = "job.completed"

    duration_s: Annotated[float, Field(ge=0)] = 0.0
    result: dict[str, Any] = Field(default_factory=dict)


class JobFailed(_JobCounts):
    """A job stopped on an error."""

    message_type: ClassVar[str] = "job.failed"

    error: Text


class JobCancelled(_JobCounts):
    """A job stopped at a symbol boundary because it was cancelled."""

    message_type: ClassVar[str] = "job.cancelled"

    requested_by: Requester | None = None


# -- daily processing runs --------------------------------------------------------------------
class _RunEvent(Event):
    run_id: Identifier


class RunStarted(_RunEvent):
    """A daily processing run started."""

    message_type: ClassVar[str] = "run.started"

    trigger_type: Literal["scheduled", "manual", "catch_up", "api"]
    phases: tuple[Phase, ...]
    universes: tuple[UniverseName, ...] = ()
    timeframes: tuple[Timeframe, ...] = (Timeframe.DAY,)
    session_date: str | None = Field(default=None, description="Market session, 'YYYY-MM-DD'.",
                                     pattern=r"^\d{4}-\d{2}-\d{2}$")
    requested_by: Requester | None = None


class RunProgress(_RunEvent):
    """Overall progress of a run (symbols over all phases)."""

    message_type: ClassVar[str] = "run.progress"

    phase: Phase | None = None
    total: Count = 0
    processed: Count = 0
    failed: Count = 0
    percent: Percent = 0.0


class RunCompleted(_RunEvent):
    """A run finished."""

    message_type: ClassVar[str] = "run.completed"

    duration_s: Annotated[float, Field(ge=0)] = 0.0
    symbols_processed: Count = 0
    symbols_failed: Count = 0
    indicators_processed: Count = 0
    patterns_detected: Count = 0


class RunFailed(_RunEvent):
    """A run stopped on an error."""

    message_type: ClassVar[str] = "run.failed"

    phase: Phase | None = None
    error: Text


class RunCancelled(_RunEvent):
    """A run stopped because it was cancelled."""

    message_type: ClassVar[str] = "run.cancelled"

    phase: Phase | None = None
    requested_by: Requester | None = None


class _PhaseEvent(_RunEvent):
    phase: Phase


class RunPhaseStarted(_PhaseEvent):
    message_type: ClassVar[str] = "run.phase_started"

    total: Count = 0


class RunPhaseProgress(_PhaseEvent):
    message_type: ClassVar[str] = "run.phase_progress"

    total: Count = 0
    processed: Count = 0
    failed: Count = 0
    percent: Percent = 0.0


class RunPhaseCompleted(_PhaseEvent):
    message_type: ClassVar[str] = "run.phase_completed"

    processed: Count = 0
    failed: Count = 0
    duration_s: Annotated[float, Field(ge=0)] = 0.0


class RunPhaseFailed(_PhaseEvent):
    message_type: ClassVar[str] = "run.phase_failed"

    error: Text


# -- schedule ---------------------------------------------------------------------------------
class ScheduleChanged(Event):
    """The daily schedule now reads like this."""

    message_type: ClassVar[str] = "schedule.changed"

    enabled: bool
    run_at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="New York 'HH:MM'.")
    universes: tuple[UniverseName, ...] = ()
    timeframes: tuple[Timeframe, ...] = (Timeframe.DAY,)
    phases: tuple[Phase, ...] = ()
    next_run_at: UtcDatetime | None = None
    updated_by: Requester | None = None


# -- analysis and live market data -------------------------------------------------------------
class Direction(StrEnum):
    BULLISH = "bullish"
    BEARISH = "bearish"
    NEUTRAL = "neutral"


class PatternDetected(Event):
    """A pattern was detected on a bar (nightly batch or live). Field names match the
    ``pattern_detections`` table."""

    message_type: ClassVar[str] = "pattern.detected"

    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime = Field(description="Start time of the bar the pattern completes on.")
    pattern: Annotated[str, Field(min_length=1, max_length=128)]
    direction: Direction
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    strength: float | None = None
    price: float | None = Field(default=None, description="Close of the bar.")
    levels: dict[str, float] = Field(default_factory=dict)
    daily_agrees: bool | None = None
    source: Literal["batch", "live"] = "batch"


class IndicatorAlert(Event):
    """An indicator crossed a configured condition."""

    message_type: ClassVar[str] = "indicator.alert"

    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime
    indicator: Annotated[str, Field(min_length=1, max_length=128)]
    value: float
    condition: Annotated[str, Field(min_length=1, max_length=256)]
    threshold: float | None = None
    message: Text | None = None


class BarLive(Event):
    """A live bar: updated while it forms (``final`` false), once more when it closes."""

    message_type: ClassVar[str] = "bar.live"

    symbol: Symbol
    timeframe: Timeframe
    ts: UtcDatetime = Field(description="Bar start time.")
    open: float
    high: float
    low: float
    close: float
    volume: Annotated[float, Field(ge=0)]
    vwap: float | None = None
    trades: Count | None = None
    final: bool = False
    indicators: dict[str, float] = Field(
        default_factory=dict,
        description="Live indicator values of the bar (canonical analysis names), on final bars.")


Price = Annotated[float, Field(allow_inf_nan=False)]
_TIME: TypeAdapter[UtcDatetime] = TypeAdapter(UtcDatetime)


class EventBatch(Event):
    """Base of the events that stand for many events of one type, as columns: entry ``i`` of
    ``symbols`` and of every other column is the ``i``-th event (the fields the events share
    are given once). The stream role publishes a minute boundary's bars and detections so;
    ``split`` gives back the single events (the web role's live push sends browsers those).
    """

    symbols: tuple[Symbol, ...] = Field(min_length=1)

    #: Columns beside ``symbols`` (each as long as it).
    columns: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _columns_match_symbols(self) -> EventBatch:
        n = len(self.symbols)
        for name in self.columns:
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} symbols")
        return self

    def split(self) -> list[Event]:
        """The single events, in order."""
        raise NotImplementedError

    @classmethod
    def payload_json(cls, **fields: Any) -> bytes:
        """The ``data`` JSON of the batch ``fields`` (every field, by name) make, written as
        the model serialises it -- its fields in its order, times as ``UtcDatetime``, floats
        by orjson (shortest round trip, like pydantic-core), a non-finite float as ``null`` --
        without validating or building the model: the stream role's hot path (its tests check
        the bytes against the model's). A missing field is a KeyError naming it."""
        return orjson.dumps(
            {name: _TIME.dump_python(_TIME.validate_python(fields[name]), mode="json")
             if isinstance(fields[name], datetime) else fields[name] for name in cls.model_fields},
            default=float)  # numpy float scalars


class BarLiveBatch(EventBatch):
    """Live bars of many symbols with one timeframe, start time and ``final``: what the stream
    role publishes at a minute boundary instead of thousands of ``bar.live`` events.
    ``indicators`` has a column per indicator name, ``null`` where that bar has no value.
    """

    message_type: ClassVar[str] = "bar.live_batch"
    columns: ClassVar[tuple[str, ...]] = ("open", "high", "low", "close", "volume", "vwap",
                                          "trades")

    timeframe: Timeframe
    ts: UtcDatetime = Field(description="Start time of every bar of the batch.")
    final: bool = False
    open: tuple[Price, ...]
    high: tuple[Price, ...]
    low: tuple[Price, ...]
    close: tuple[Price, ...]
    volume: tuple[Annotated[float, Field(ge=0)], ...]
    vwap: tuple[Price | None, ...]
    trades: tuple[Count | None, ...]
    indicators: dict[str, tuple[Price | None, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _indicators_match_symbols(self) -> BarLiveBatch:
        for name, column in self.indicators.items():
            if len(column) != len(self.symbols):
                raise ValueError(f"indicators.{name} has {len(column)} entries for "
                                 f"{len(self.symbols)} symbols")
        return self

    def split(self) -> list[Event]:
        return list(self.bars())

    def bars(self) -> list[BarLive]:
        """The ``bar.live`` event of each symbol, in order (values without ``null``s)."""
        names = list(self.indicators)
        rows = (list(zip(*self.indicators.values(), strict=True)) if names
                else [()] * len(self.symbols))
        return [
            BarLive.model_construct(
                symbol=s, timeframe=self.timeframe, ts=self.ts, open=o, high=h, low=lo, close=c,
                volume=v, vwap=vw, trades=t, final=self.final,
                indicators={k: x for k, x in zip(names, row, strict=True) if x is not None})
            for s, o, h, lo, c, v, vw, t, row in zip(
                self.symbols, self.open, self.high, self.low, self.close, self.volume, self.vwap,
                self.trades, rows, strict=True)
        ]


class PatternDetectedBatch(EventBatch):
    """Patterns detected on bars of many symbols with one timeframe and start time: what the
    stream role publishes at a minute boundary instead of a ``pattern.detected`` each (a
    symbol may appear once per pattern)."""

    message_type: ClassVar[str] = "pattern.detected_batch"
    columns: ClassVar[tuple[str, ...]] = ("pattern", "direction", "confidence", "strength",
                                          "price", "levels", "daily_agrees")

    timeframe: Timeframe
    ts: UtcDatetime = Field(description="Start time of the bars the patterns complete on.")
    source: Literal["batch", "live"] = "batch"
    pattern: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...]
    direction: tuple[Direction, ...]
    confidence: tuple[Annotated[float, Field(ge=0.0, le=1.0)], ...]
    strength: tuple[float | None, ...]
    price: tuple[float | None, ...]
    levels: tuple[dict[str, float], ...]
    daily_agrees: tuple[bool | None, ...]

    def split(self) -> list[Event]:
        return list(self.detections())

    def detections(self) -> list[PatternDetected]:
        """The ``pattern.detected`` event of each entry, in order."""
        return [
            PatternDetected.model_construct(
                symbol=s, timeframe=self.timeframe, ts=self.ts, pattern=p, direction=d,
                confidence=c, strength=st, price=pr, levels=lv, daily_agrees=da,
                source=self.source)
            for s, p, d, c, st, pr, lv, da in zip(
                self.symbols, self.pattern, self.direction, self.confidence, self.strength,
                self.price, self.levels, self.daily_agrees, strict=True)
        ]


class IndicatorAlertBatch(EventBatch):
    """Alerts raised by bars of many symbols with one timeframe and start time: what the
    stream role publishes at a minute boundary instead of an ``indicator.alert`` each."""

    message_type: ClassVar[str] = "indicator.alert_batch"
    columns: ClassVar[tuple[str, ...]] = ("indicator", "value", "condition", "threshold",
                                          "message")

    timeframe: Timeframe
    ts: UtcDatetime = Field(description="Start time of the bars that raised the alerts.")
    indicator: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...]
    value: tuple[float, ...]
    condition: tuple[Annotated[str, Field(min_length=1, max_length=256)], ...]
    threshold: tuple[float | None, ...]
    message: tuple[Text | None, ...]

    def split(self) -> list[Event]:
        return list(self.alerts())

    def alerts(self) -> list[IndicatorAlert]:
        """The ``indicator.alert`` event of each entry, in order."""
        return [
            IndicatorAlert.model_construct(
                symbol=s, timeframe=self.timeframe, ts=self.ts, indicator=i, value=v,
                condition=c, threshold=t, message=m)
            for s, i, v, c, t, m in zip(self.symbols, self.indicator, self.value,
                                        self.condition, self.threshold, self.message, strict=True)
        ]


# -- services and commands --------------------------------------------------------------------
class ServiceError(Event):
    """A role hit an error an operator should see."""

    message_type: ClassVar[str] = "service.error"

    role: str
    instance: str
    component: str = ""
    severity: Literal["warning", "error", "critical"] = "error"
    error: Text
    details: dict[str, Any] = Field(default_factory=dict)


class CommandAccepted(Event):
    """A command was accepted; ``run_id``/``job_id`` name the work it started, if any."""

    message_type: ClassVar[str] = "command.accepted"

    command_id: Identifier
    command_type: str
    run_id: Identifier | None = None
    job_id: Identifier | None = None
    note: Text | None = None


class CommandRejected(Event):
    """A command was refused (busy, invalid for the current state, ...)."""

    message_type: ClassVar[str] = "command.rejected"

    command_id: Identifier
    command_type: str
    reason: Text


EVENTS: tuple[type[Event], ...] = (
    JobSubmitted, JobStarted, JobProgress, JobSymbolDone, JobCompleted, JobFailed, JobCancelled,
    RunStarted, RunProgress, RunCompleted, RunFailed, RunCancelled,
    RunPhaseStarted, RunPhaseProgress, RunPhaseCompleted, RunPhaseFailed,
    ScheduleChanged, PatternDetected, PatternDetectedBatch, IndicatorAlert, IndicatorAlertBatch,
    BarLive, BarLiveBatch,
    ServiceError, CommandAccepted, CommandRejected,
)
