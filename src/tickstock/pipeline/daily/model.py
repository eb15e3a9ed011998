"""What the daily run's parts exchange: the trigger (``RunRequest``) and its outcome
(``StartResult``), a batch handed to a phase step (``BatchWork``) and what the step did with it
(``BatchOutcome``), and the orchestrator's seam onto the bus (``RunBus``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from tickstock.contracts.common import ALL_PHASES, Phase
from tickstock.contracts.events import Event
from tickstock.contracts.jobs import RunPhaseBatch
from tickstock.store.runs import RunRecord

TRIGGER_TYPES = ("scheduled", "manual", "catch_up", "api")


class RunBus(Protocol):
    """How the run reaches other processes (implemented over ``tickstock.bus``)."""

    def publish_batch(self, batch: RunPhaseBatch) -> None: ...

    def emit(self, event: Event, *, correlation_id: str) -> None: ...


@dataclass(frozen=True)
class BatchWork:
    """One batch handed to a phase step."""

    run: RunRecord
    phase: Phase
    batch_no: int
    symbols: tuple[str, ...]
    cancelled: Callable[[], bool]

    @property
    def session_date(self) -> date | None:
        return self.run.session_date

    @property
    def timeframes(self) -> tuple[str, ...]:
        return self.run.timeframes

    @property
    def options(self) -> Mapping[str, Any]:
        return self.run.metadata


@dataclass
class BatchOutcome:
    """What a step did with a batch. ``processed`` counts symbols done well, ``failed`` the
    others; ``failures`` are ``(symbol, timeframe, reason)`` for ``import_failures``;
    ``resolved`` the ``(symbol, timeframe)`` pairs whose earlier import failure is fixed;
    ``counters`` add to the run's seeds columns (``indicators_processed`` …)."""

    processed: int = 0
    failed: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


PhaseStep = Callable[[BatchWork], BatchOutcome]


class PhaseSetup(Protocol):
    """Optional per-phase totals computed at phase start (e.g. indicators times symbols)."""

    def __call__(self, run: RunRecord, symbols: Sequence[str]) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class RunRequest:
    """A trigger, whoever sent it (command, scheduler, retry)."""

    run_id: str
    trigger_type: str
    phases: tuple[Phase, ...] = ALL_PHASES
    universes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()  # explicit symbols win over universes
    timeframes: tuple[str, ...] = ("day",)
    session_date: date | None = None
    requested_by: str | None = None
    queue_if_busy: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "trigger_type": self.trigger_type,
                "phases": [str(p) for p in self.phases], "universes": list(self.universes),
                "symbols": list(self.symbols), "timeframes": list(self.timeframes),
                "session_date": self.session_date.isoformat() if self.session_date else None,
                "requested_by": self.requested_by, "options": dict(self.options)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRequest:
        return cls(run_id=data["run_id"], trigger_type=data["trigger_type"],
                   phases=tuple(Phase(p) for p in data["phases"]),
                   universes=tuple(data["universes"]), symbols=tuple(data["symbols"]),
                   timeframes=tuple(data["timeframes"]),
                   session_date=date.fromisoformat(data["session_date"])
                   if data.get("session_date") else None,
                   requested_by=data.get("requested_by"), options=data.get("options", {}))


@dataclass(frozen=True)
class StartResult:
    """``started`` (run_id), ``queued`` behind ``active``, or ``refused`` with ``reason``."""

    outcome: str
    run_id: str
    reason: str | None = None
    active: RunRecord | None = None
