"""Handlers of the pipeline's commands (seed 000), run by the workers (consumer group on the
commands stream). Each command is validated against the current state, executed, and answered
with ``command.accepted`` (naming the run it started) or ``command.rejected`` (with the reason).

    command.trigger_daily_processing    a full run (market check unless skip_market_check)
    command.trigger_data_import         a run with the data-import phase only
    command.trigger_indicator_processing  a run with the indicators phase only
    command.trigger_pattern_detection   a run with the patterns phase only
    command.cancel                      cancel the run ``run_id``
    command.retry_failed_imports        a run re-importing the open import failures
    command.update_schedule             change the persisted schedule

A command's payload was validated by the contract when decoded (a malformed one is
dead-lettered by the bus; ``reject_dead_lettered`` turns that into a ``command.rejected`` too).
Handlers are idempotent: a redelivered trigger finds its run already created and is answered
again, never started twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import time
from typing import Any

from tickstock.contracts.commands import (
    Cancel,
    Command,
    RetryFailedImports,
    TriggerDailyProcessing,
    TriggerDataImport,
    TriggerIndicatorProcessing,
    TriggerPatternDetection,
    UpdateSchedule,
)
from tickstock.contracts.common import ALL_PHASES, Phase
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import CommandAccepted, CommandRejected, Event, ScheduleChanged
from tickstock.contracts.registry import COMMAND_TYPES
from tickstock.contracts.state import DeadLetter
from tickstock.core.clock import Clock
from tickstock.core.errors import NotFoundError
from tickstock.market.calendar import MarketCalendar
from tickstock.pipeline.daily.model import RunRequest, StartResult
from tickstock.pipeline.daily.orchestrator import DailyRun
from tickstock.pipeline.scheduler import next_run_at
from tickstock.store.runs import RunRepository
from tickstock.store.schedule import ScheduleRepository

log = logging.getLogger(__name__)

#: ``requested_by`` values the scheduler sends; they set the run's trigger type.
SCHEDULER_REQUESTER = "scheduler"
CATCH_UP_REQUESTER = "scheduler (catch-up)"
RETRY_PHASES = (Phase.DATA_IMPORT, Phase.INDICATORS, Phase.PATTERNS)

Emit = Callable[[Event, str | None], None]
EnvelopeHandler = Callable[[Envelope], None]


class Rejected(Exception):
    """A command refused for a reason the sender can act on."""


def trigger_type_of(requested_by: str | None) -> str:
    """The run's trigger type from who asked: scheduler, catch-up, API, or manual."""
    if requested_by == SCHEDULER_REQUESTER:
        return "scheduled"
    if requested_by == CATCH_UP_REQUESTER:
        return "catch_up"
    if requested_by == "api":
        return "api"
    return "manual"


class CommandHandlers:
    """Validates and executes commands; ``handlers()`` maps each command type to its handler."""

    def __init__(
        self, *, daily: DailyRun, runs: RunRepository, schedules: ScheduleRepository,
        calendar: MarketCalendar, clock: Clock, emit: Emit,
        indicator_names: frozenset[str] = frozenset(), pattern_names: frozenset[str] = frozenset(),
    ) -> None:
        self.daily = daily
        self.runs = runs
        self.schedules = schedules
        self.calendar = calendar
        self.clock = clock
        self._emit = emit
        self.indicator_names = indicator_names
        self.pattern_names = pattern_names
        self._note: dict[str, str] = {}  # command id -> note for its accepted event

    def handlers(self) -> dict[str, EnvelopeHandler]:
        table: dict[type[Command], Callable[[Any, Envelope], str | None]] = {
            TriggerDailyProcessing: self._trigger_daily,
            TriggerDataImport: self._trigger_import,
            TriggerIndicatorProcessing: self._trigger_indicators,
            TriggerPatternDetection: self._trigger_patterns,
            Cancel: self._cancel,
            RetryFailedImports: self._retry,
            UpdateSchedule: self._update_schedule,
        }
        return {model.message_type: self._answering(model, fn) for model, fn in table.items()}

    def _answering(
        self, model: type[Command], fn: Callable[[Any, Envelope], str | None]
    ) -> EnvelopeHandler:
        def handle(envelope: Envelope) -> None:
            command = envelope.payload(model)
            try:
                run_id = fn(command, envelope)
            except (Rejected, NotFoundError) as exc:
                log.info("command %s rejected: %s", envelope.type, exc,
                         extra={"correlation_id": envelope.id})
                self._emit(CommandRejected(command_id=envelope.id, command_type=envelope.type,
                                           reason=str(exc)), envelope.correlation_id)
                return
            self._emit(CommandAccepted(command_id=envelope.id, command_type=envelope.type,
                                       run_id=run_id, note=self._note.pop(envelope.id, None)),
                       run_id or envelope.correlation_id)

        return handle

    # -- triggers -------------------------------------------------------------------------------

    def _start(self, request: RunRequest, envelope: Envelope) -> str:
        existing = self.runs.find_run(request.run_id)
        if existing is not None:  # a redelivered command: answer again, start nothing
            return existing.run_id
        result: StartResult = self.daily.start(request)
        if result.outcome == "refused":
            raise Rejected(result.reason or "refused")
        if result.outcome == "queued":
            self._note[envelope.id] = result.reason or "queued"
        return result.run_id

    def _run_id(self, command: Any, envelope: Envelope) -> str:
        # A run started by a command is named by the command unless the sender chose the id,
        # so a redelivery maps to the same run.
        return str(command.run_id or envelope.id)

    def _trigger_daily(self, command: TriggerDailyProcessing, envelope: Envelope) -> str:
        now = self.clock.now()
        if not command.skip_market_check:
            self._market_check(_ordered(command.phases))
        universes = command.universes
        if not universes:
            schedule = self.schedules.get()
            universes = schedule.universes if schedule else ()
        session = self.calendar.last_complete_session(now).day
        request = RunRequest(
            run_id=self._run_id(command, envelope),
            trigger_type=trigger_type_of(command.requested_by),
            phases=_ordered(command.phases), universes=tuple(universes),
            timeframes=tuple(str(t) for t in command.timeframes), session_date=session,
            requested_by=command.requested_by, queue_if_busy=command.queue_if_busy,
            options={"command_id": envelope.id, "skip_market_check": command.skip_market_check},
        )
        return self._start(request, envelope)

    def _market_check(self, phases: tuple[Phase, ...]) -> None:
        """Refuse a run that would find nothing complete to process: while the market is open,
        or when the last complete session was already processed by a completed run."""
        status = self.calendar.status(self.clock.now())
        if status.is_open:
            raise Rejected(
                f"the market is open until {status.next_close.isoformat()}: today's session is "
                "not complete (set skip_market_check to process up to the last complete one)")
        session = status.last_complete_session.day
        done = self.runs.completed_for_session(session, [str(p) for p in phases])
        if done is not None:
            raise Rejected(
                f"session {session} was already processed by run {done.run_id}; the market has "
                "not closed another session since (set skip_market_check to run anyway)")

    def _selection(self, command: TriggerDataImport | TriggerIndicatorProcessing |
                   TriggerPatternDetection) -> tuple[tuple[str, ...], tuple[str, ...]]:
        symbols = tuple(command.symbols)
        if symbols:
            known = set(self.runs.known_symbols(symbols))
            unknown = [s for s in symbols if s not in known]
            if unknown:
                raise Rejected(f"unknown symbol(s): {', '.join(unknown[:20])}")
        universes = command.universes
        if not symbols and not universes:
            schedule = self.schedules.get()
            universes = schedule.universes if schedule else ()
        return symbols, tuple(universes)

    def _phase_run(self, command: Any, envelope: Envelope, phase: Phase,
                   options: Mapping[str, Any]) -> str:
        symbols, universes = self._selection(command)
        return self._start(RunRequest(
            run_id=self._run_id(command, envelope),
            trigger_type=trigger_type_of(command.requested_by), phases=(phase,),
            universes=universes, symbols=symbols,
            timeframes=tuple(str(t) for t in command.timeframes),
            session_date=self.calendar.last_complete_session(self.clock.now()).day,
            requested_by=command.requested_by,
            options={"command_id": envelope.id, **options}), envelope)

    def _trigger_import(self, command: TriggerDataImport, envelope: Envelope) -> str:
        return self._phase_run(command, envelope, Phase.DATA_IMPORT, {})

    def _trigger_indicators(self, command: TriggerIndicatorProcessing, envelope: Envelope) -> str:
        _known(command.indicators, self.indicator_names, "indicator")
        return self._phase_run(command, envelope, Phase.INDICATORS,
                               {"indicators": list(command.indicators)})

    def _trigger_patterns(self, command: TriggerPatternDetection, envelope: Envelope) -> str:
        _known(command.patterns, self.pattern_names, "pattern")
        return self._phase_run(command, envelope, Phase.PATTERNS,
                               {"patterns": list(command.patterns)})

    # -- cancel, retry, schedule ----------------------------------------------------------------

    def _cancel(self, command: Cancel, envelope: Envelope) -> str | None:
        if command.run_id is None:
            raise Rejected("this handler cancels daily runs (run_id); jobs are cancelled by "
                           "their worker")
        run = self.runs.get_run(command.run_id)
        if self.daily.cancel(run.run_id, command.requested_by) is None:
            raise Rejected(f"run {run.run_id} is already {self.runs.get_run(run.run_id).status}")
        return run.run_id

    def _retry(self, command: RetryFailedImports, envelope: Envelope) -> str:
        failures = self.runs.open_import_failures(source_id=command.source_id,
                                                  symbols=command.symbols)
        if not failures:
            scope = f" of {command.source_id}" if command.source_id else ""
            raise Rejected(f"no open import failures{scope} to retry")
        symbols = tuple(sorted({f.symbol for f in failures}))
        timeframes = tuple(sorted({f.timeframe for f in failures if f.timeframe}) or ("day",))
        return self._start(RunRequest(
            run_id=envelope.id, trigger_type=trigger_type_of(command.requested_by),
            phases=RETRY_PHASES, symbols=symbols, timeframes=timeframes,
            session_date=self.calendar.last_complete_session(self.clock.now()).day,
            requested_by=command.requested_by,
            options={"command_id": envelope.id, "retry_of": sorted({f.source_id
                                                                    for f in failures})},
        ), envelope)

    def _update_schedule(self, command: UpdateSchedule, envelope: Envelope) -> None:
        changes: dict[str, Any] = {}
        if command.enabled is not None:
            changes["enabled"] = command.enabled
        if command.run_at is not None:
            hh, mm = (int(p) for p in command.run_at.split(":"))
            if time(hh, mm) < time(16, 0):
                raise Rejected(f"run_at {command.run_at} is before the 16:00 close; the daily run "
                               "needs the complete session")
            changes["run_at"] = time(hh, mm)
            changes["minutes_after_close"] = None
        if command.universes is not None:
            _, unknown = self.runs.resolve_symbols(command.universes)
            if unknown:
                raise Rejected(f"unknown universe(s): {', '.join(unknown)}")
            changes["universes"] = list(command.universes)
        if command.timeframes is not None:
            changes["timeframes"] = [str(t) for t in command.timeframes]
        if command.phases is not None:
            changes["phases"] = [str(p) for p in _ordered(command.phases)]
        now = self.clock.now()
        record = self.schedules.update(changes, now=now,
                                       updated_by=command.requested_by or "command")
        self._emit(ScheduleChanged(
            enabled=record.enabled, run_at=record.run_at.strftime("%H:%M"),
            universes=record.universes, timeframes=record.timeframes,
            phases=tuple(Phase(p) for p in record.phases),
            next_run_at=next_run_at(record, self.calendar, now),
            updated_by=record.updated_by), None)


def reject_dead_lettered(emit: Emit) -> Callable[[DeadLetter, Envelope | None], None]:
    """A bus dead-letter hook answering a malformed command with ``command.rejected``.

    The command's id and type are read leniently from the original entry when it could not be
    decoded, so the sender still learns why its command went nowhere.
    """

    def hook(letter: DeadLetter, envelope: Envelope | None) -> None:
        command_id, command_type = _ids(letter, envelope)
        if command_type not in COMMAND_TYPES or not command_id:
            return
        emit(CommandRejected(command_id=command_id, command_type=command_type,
                             reason=letter.reason[:4000]), None)

    return hook


def _ids(letter: DeadLetter, envelope: Envelope | None) -> tuple[str, str]:
    if envelope is not None:
        return envelope.id, envelope.type
    try:
        fields = json.loads(letter.original)
        body = json.loads(next(iter(fields.values())))
        return str(body.get("id", ""))[:128], str(body.get("type", ""))
    except (ValueError, TypeError, AttributeError, StopIteration):
        return "", letter.message_type


def _known(names: tuple[str, ...], known: frozenset[str], what: str) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise Rejected(f"unknown {what}(s): {', '.join(unknown[:20])}")


def _ordered(phases: tuple[Phase, ...]) -> tuple[Phase, ...]:
    """Phases in execution order, each once, whatever order the sender listed them in."""
    return tuple(p for p in ALL_PHASES if p in set(phases))
