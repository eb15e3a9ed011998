"""Jobs: units of work for workers, on ``names.JOBS_STREAM``.

A job's id is the id of the envelope that carried it (``Envelope.id``); the job lifecycle
(``jobs`` table, ``job.*`` events) is keyed by it, so a redelivered job is recognised.
Ranges are half-open: ``[start, end)``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from tickstock.contracts.common import (
    Identifier,
    Payload,
    Phase,
    ProviderName,
    Requester,
    Symbol,
    Timeframe,
    UniverseName,
    UtcDatetime,
)


class Job(Payload):
    """Base of jobs."""

    kind: ClassVar[Literal["job"]] = "job"

    requested_by: Requester | None = None


class _RangeLoad(Job):
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)
    start: UtcDatetime = Field(description="First bar time included (UTC).")
    end: UtcDatetime = Field(
        description="First bar time excluded (UTC): the range is [start, end).")
    provider: ProviderName | None = Field(
        default=None, description="Market-data provider; absent means the configured one.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"start {self.start.isoformat()} must be before "
                             f"end {self.end.isoformat()}")
        return self


class _SymbolsOrUniverse(_RangeLoad):
    symbols: tuple[Symbol, ...] = ()
    universe: UniverseName | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if bool(self.symbols) == (self.universe is not None):
            raise ValueError("give exactly one of symbols (non-empty) and universe")
        return self


class HistoricalLoad(_SymbolsOrUniverse):
    """Load (top up) bars of some symbols or of a universe over ``[start, end)``."""

    message_type: ClassVar[str] = "job.historical_load"


class UniverseSeed(_RangeLoad):
    """Seed a universe: make sure its members exist as symbols, then load their history."""

    message_type: ClassVar[str] = "job.universe_seed"

    universe: UniverseName


class MultiTimeframeLoad(_SymbolsOrUniverse):
    """Load several timeframes of the same symbols in one job (per symbol, every timeframe)."""

    message_type: ClassVar[str] = "job.multi_timeframe_load"


class FileImport(Job):
    """Import bars from a local file (CSV, optionally gzip-compressed)."""

    message_type: ClassVar[str] = "job.file_import"

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    format: Literal["csv", "csv.gz"] | None = Field(
        default=None, description="Absent: guessed from the file name.")
    symbol: Symbol | None = Field(
        default=None, description="Symbol of every row, for files without a symbol column.")
    timeframe: Timeframe | None = Field(
        default=None, description="Timeframe of every row, for files without a timeframe column.")


JOBS: tuple[type[Job], ...] = (HistoricalLoad, UniverseSeed, MultiTimeframeLoad, FileImport)


class RunPhaseBatch(Payload):
    """One batch of symbols of a daily-run phase, on ``names.BATCHES_STREAM``. Done once,
    whoever does it: the ``processing_batches`` row (run_id, phase, batch_no) is the record."""

    kind: ClassVar[Literal["batch"]] = "batch"
    message_type: ClassVar[str] = "batch.run_phase"

    run_id: Identifier
    phase: Phase
    batch_no: Annotated[int, Field(ge=0)]
    symbols: tuple[Symbol, ...] = Field(min_length=1)
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)


BATCHES: tuple[type[RunPhaseBatch], ...] = (RunPhaseBatch,)
