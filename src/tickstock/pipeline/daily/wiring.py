"""Wiring of the daily run for a process that executes it (worker, CLI ``--now``, tests); the
service the API and CLI read through is built by ``service.build_service``.

Composition roots (``ops/roles/*``) and tests call these with the clients they built; nothing
here connects on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import redis
from psycopg_pool import ConnectionPool

from tickstock.bus.events import EventPublisher
from tickstock.contracts.common import Phase
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import Event
from tickstock.contracts.jobs import RunPhaseBatch
from tickstock.core.clock import Clock
from tickstock.market.calendar import MarketCalendar
from tickstock.market.providers.base import Provider
from tickstock.pipeline.commands import CommandHandlers
from tickstock.pipeline.daily.busio import RedisRunBus
from tickstock.pipeline.daily.model import PhaseSetup, PhaseStep
from tickstock.pipeline.daily.orchestrator import DailyRun
from tickstock.pipeline.daily.steps.analysis import AnalysisStep
from tickstock.pipeline.daily.steps.importer import TopUpImporter
from tickstock.pipeline.daily.steps.outcomes import OutcomeRefresh
from tickstock.store.runs import RunRepository
from tickstock.store.schedule import ScheduleRepository


class Registrar(Protocol):
    def register(self, message_type: str, handler: Callable[[Envelope], None]) -> None: ...


@dataclass(frozen=True)
class DailyExecutor:
    """What a worker needs to execute runs: the orchestrator and the command handlers."""

    daily: DailyRun
    commands: CommandHandlers

    def register(self, consumer: Registrar) -> None:
        """Register the batch handler and every command handler on ``consumer`` (a bus
        ``Consumer`` or a ``Worker``)."""
        consumer.register(RunPhaseBatch.message_type, self.handle_batch)
        for message_type, handler in self.commands.handlers().items():
            consumer.register(message_type, handler)

    def handle_batch(self, envelope: Envelope) -> None:
        self.daily.handle_batch(envelope.payload(RunPhaseBatch))


def build_executor(
    *, pool: ConnectionPool, client: redis.Redis, calendar: MarketCalendar, clock: Clock,
    instance: str, steps: Mapping[Phase, PhaseStep], setups: Mapping[Phase, PhaseSetup] | None = None,
    batch_size: int = 250, takeover_after: timedelta = timedelta(seconds=60),
    indicator_names: frozenset[str] = frozenset(), pattern_names: frozenset[str] = frozenset(),
) -> DailyExecutor:
    runs = RunRepository(pool)
    bus = RedisRunBus(client, source=instance)
    events = EventPublisher(client, source=instance)

    def emit(event: Event, correlation_id: str | None) -> None:
        events.publish(event, correlation_id=correlation_id)

    daily = DailyRun(runs=runs, bus=bus, clock=clock, steps=steps, instance=instance,
                     batch_size=batch_size, takeover_after=takeover_after, setups=setups)
    commands = CommandHandlers(daily=daily, runs=runs, schedules=ScheduleRepository(pool),
                               calendar=calendar, clock=clock, emit=emit,
                               indicator_names=indicator_names, pattern_names=pattern_names)
    return DailyExecutor(daily, commands)


def default_steps(
    *, pool: ConnectionPool, provider: Provider, calendar: MarketCalendar, clock: Clock,
    history_years: float = 5,
) -> tuple[dict[Phase, PhaseStep], dict[Phase, PhaseSetup]]:
    """The four phase steps of a daily run, and the phase setups (run totals)."""
    indicators = AnalysisStep(pool, "indicators", calendar=calendar)
    patterns = AnalysisStep(pool, "patterns", calendar=calendar)
    steps: dict[Phase, PhaseStep] = {
        Phase.DATA_IMPORT: TopUpImporter(pool=pool, provider=provider, calendar=calendar,
                                         clock=clock, history_years=history_years),
        Phase.INDICATORS: indicators,
        Phase.PATTERNS: patterns,
        Phase.OUTCOMES: OutcomeRefresh(pool),
    }
    return steps, {Phase.INDICATORS: indicators.setup}


def analysis_names() -> tuple[frozenset[str], frozenset[str]]:
    """Names a trigger may ask for: indicator instances and patterns of the default catalogue."""
    from tickstock.analysis.registry import DEFAULT_INDICATORS, DEFAULT_PATTERNS

    return (frozenset(s.name for s in DEFAULT_INDICATORS),
            frozenset(p.name for p in DEFAULT_PATTERNS))
