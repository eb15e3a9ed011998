"""The pipeline's one service layer: what the HTTP API and the CLI ask about runs and schedule,
and how they submit commands (through the bus, exactly as the web role does).

Reads come from PostgreSQL (the source of truth); writes are commands sent on the commands
stream and answered by ``command.accepted`` / ``command.rejected`` events, which ``submit``
waits for a short while so an HTTP caller gets the answer in its response.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import redis
from psycopg_pool import ConnectionPool

from tickstock.contracts.commands import Command
from tickstock.contracts.events import CommandAccepted, CommandRejected
from tickstock.core.clock import Clock, LiveClock
from tickstock.market.calendar import MarketCalendar
from tickstock.pipeline.daily.busio import RedisCommandSender
from tickstock.pipeline.daily.progress import RunProgressView, run_view
from tickstock.pipeline.scheduler import next_run_at
from tickstock.store.runs import ImportFailure, RunRepository
from tickstock.store.schedule import ScheduleRecord, ScheduleRepository


class CommandSender(Protocol):
    """Sends commands and reads their answers (implemented over the bus)."""

    def send(self, command: Command) -> str:
        """Publish ``command``; return the command id (its envelope id)."""
        ...

    def wait_answer(
        self, command_id: str, timeout_s: float
    ) -> CommandAccepted | CommandRejected | None:
        """The answer to ``command_id`` if it comes within ``timeout_s``."""
        ...


@dataclass(frozen=True)
class CommandReceipt:
    """What became of a submitted command."""

    command_id: str
    command_type: str
    status: Literal["accepted", "rejected", "submitted"]
    reason: str | None = None
    run_id: str | None = None
    job_id: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ScheduleView:
    schedule: ScheduleRecord
    next_run_at: datetime | None


class PipelineService:
    """Run status, history, schedule and command submission."""

    def __init__(
        self, *, runs: RunRepository, schedules: ScheduleRepository, calendar: MarketCalendar,
        clock: Clock, commands: CommandSender,
    ) -> None:
        self.runs = runs
        self.schedules = schedules
        self.calendar = calendar
        self.clock = clock
        self.commands = commands

    def run_status(self, run_id: str | None = None) -> RunProgressView | None:
        """A run with its phases; without ``run_id`` the active run, else the latest one."""
        run = (self.runs.get_run(run_id) if run_id is not None
               else self.runs.active_run() or self.runs.latest_run())
        if run is None:
            return None
        return run_view(run, self.runs.phases(run.run_id), self.clock.now())

    def history(
        self, *, page: int, page_size: int, status: str | None = None
    ) -> tuple[list[RunProgressView], int]:
        runs, total = self.runs.list_runs(limit=page_size, offset=(page - 1) * page_size,
                                          status=status)
        now = self.clock.now()
        return [run_view(r, self.runs.phases(r.run_id), now) for r in runs], total

    def schedule(self) -> ScheduleView:
        now = self.clock.now()
        record = self.schedules.get() or self.schedules.ensure(now, None)
        return ScheduleView(record, next_run_at(record, self.calendar, now))

    def import_failures(self, source_id: str | None = None) -> list[ImportFailure]:
        return self.runs.open_import_failures(source_id=source_id)

    def submit(self, command: Command, *, wait_s: float = 5.0) -> CommandReceipt:
        """Send ``command`` and wait up to ``wait_s`` for its answer."""
        command_id = self.commands.send(command)
        answer = self.commands.wait_answer(command_id, wait_s) if wait_s > 0 else None
        if isinstance(answer, CommandAccepted):
            return CommandReceipt(command_id, command.message_type, "accepted", run_id=answer.run_id,
                                  job_id=answer.job_id, note=answer.note)
        if isinstance(answer, CommandRejected):
            return CommandReceipt(command_id, command.message_type, "rejected",
                                  reason=answer.reason)
        run_id = getattr(command, "run_id", None)
        return CommandReceipt(command_id, command.message_type, "submitted", run_id=run_id,
                              note="no answer yet: is a worker running?")


def build_service(
    *, pool: ConnectionPool, client: redis.Redis, calendar: MarketCalendar, clock: Clock,
    source: str,
) -> PipelineService:
    """The service the API and the CLI read and submit through (no analysis code is loaded)."""
    # Waiting for an answer is real time whatever clock the service reads.
    sender = RedisCommandSender(client, source=source, clock=LiveClock())
    return PipelineService(runs=RunRepository(pool), schedules=ScheduleRepository(pool),
                           calendar=calendar, clock=clock, commands=sender)
