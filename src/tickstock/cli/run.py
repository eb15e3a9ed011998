"""``tickstock run daily``: run or trigger the daily processing from a terminal.

    tickstock run daily              trigger a run; the platform's workers execute it
    tickstock run daily --watch      ... and follow it with live per-phase progress bars
    tickstock run daily --now        execute it here and now (this process is a worker for the
                                     run's duration, next to any running ones), with the bars

The trigger is the same ``command.trigger_daily_processing`` the API and the scheduler send,
so it is validated and answered the same way: a refusal (another run active, unknown universe,
session already processed) prints its reason and exits 1. Progress is read from PostgreSQL,
the run's record. Exit status: 0 when the run completed (or was only triggered), 1 when it
was refused, failed or cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
import redis
from psycopg_pool import ConnectionPool
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from tickstock.cli.context import settings
from tickstock.contracts.commands import TriggerDailyProcessing
from tickstock.contracts.common import ALL_PHASES, Phase, Timeframe
from tickstock.pipeline.daily.progress import RunProgressView
from tickstock.pipeline.daily.service import CommandReceipt, PipelineService

FINAL = ("completed", "failed", "cancelled")
StopWorker = Callable[[], None]
StartWorker = Callable[[], StopWorker]
POLL_S = 0.5


@click.group()
def run() -> None:
    """Run or trigger processing from the terminal."""


@run.command()
@click.option("--now", is_flag=True,
              help="Execute the run in this process (skips the market check).")
@click.option("--watch", is_flag=True, help="Follow the run with live per-phase progress bars.")
@click.option("--universe", "universes", multiple=True,
              help="Universe to process (repeatable; default: the schedule's universes).")
@click.option("--phase", "phases", multiple=True, type=click.Choice([str(p) for p in ALL_PHASES]),
              help="Phase to run (repeatable; default: all).")
@click.option("--timeframe", "timeframes", multiple=True, default=("day",),
              type=click.Choice([str(t) for t in Timeframe]), show_default=True,
              help="Timeframe to process (repeatable).")
@click.option("--skip-market-check", is_flag=True,
              help="Process the last complete session even if a run already did.")
@click.option("--queue", is_flag=True, help="Queue behind an active run instead of refusing.")
def daily(*, now: bool, watch: bool, universes: tuple[str, ...], phases: tuple[str, ...],
          timeframes: tuple[str, ...], skip_market_check: bool, queue: bool) -> None:
    """Trigger (or, with --now, execute) a daily processing run."""
    command = TriggerDailyProcessing(
        requested_by="cli", skip_market_check=skip_market_check or now, queue_if_busy=queue,
        phases=tuple(Phase(p) for p in phases) or ALL_PHASES, universes=universes,
        timeframes=tuple(Timeframe(t) for t in timeframes))
    console = Console()
    with _service() as (service, start_worker):
        stop_worker = start_worker() if now else None
        try:
            receipt = service.submit(command, wait_s=30.0 if now else 5.0)
            _say(console, receipt)
            if receipt.status == "rejected":
                raise SystemExit(1)
            if receipt.run_id is None or not (watch or now):
                return
            final = follow(service, receipt.run_id, console)
        finally:
            if stop_worker is not None:
                stop_worker()
    if final.status != "completed":
        raise SystemExit(1)


def _say(console: Console, receipt: CommandReceipt) -> None:
    if receipt.status == "rejected":
        console.print(f"[red]refused:[/red] {receipt.reason}")
    elif receipt.status == "submitted":
        console.print(f"submitted (command {receipt.command_id}); {receipt.note}")
    else:
        note = f" ({receipt.note})" if receipt.note else ""
        console.print(f"run {receipt.run_id} accepted{note}")


def follow(service: PipelineService, run_id: str, console: Console) -> RunProgressView:
    """Show the run's phases as progress bars until it ends; print a summary line per phase."""
    columns = (TextColumn("{task.description:<12}"), BarColumn(),
               TextColumn("{task.fields[count]:>13}"),
               TextColumn("failed {task.fields[failed]}"), TimeRemainingColumn())
    tasks: dict[str, TaskID] = {}
    with Progress(*columns, console=console, transient=not console.is_terminal) as bars:
        while True:
            view = service.run_status(run_id)
            assert view is not None  # the run exists: the command that created it was accepted
            for name in view.planned_phases:
                if name not in tasks:
                    tasks[name] = bars.add_task(name, total=None, failed=0, count="waiting")
            for phase in view.phases:
                done = phase.processed + phase.failed
                bars.update(tasks[phase.phase], total=max(phase.total, 1), completed=done,
                            failed=phase.failed, count=f"{done}/{phase.total}")
            if view.status in FINAL:
                break
            time.sleep(POLL_S)
    for phase in view.phases:
        console.print(f"{phase.phase:<12} {phase.status:<10} {phase.processed}/{phase.total} "
                      f"processed, {phase.failed} failed")
    colour = "green" if view.status == "completed" else "red"
    detail = f": {view.error_message}" if view.error_message else ""
    console.print(f"run {run_id} [{colour}]{view.status}[/{colour}]"
                  f" in {view.duration_seconds or 0:.1f}s{detail}")
    return view


@contextmanager
def _service() -> Iterator[tuple[PipelineService, StartWorker]]:
    """The pipeline service over this terminal's connections, and a way to run a worker here."""
    from tickstock.bus.connection import connect
    from tickstock.core.clock import LiveClock
    from tickstock.core.ids import instance_name
    from tickstock.market.calendar import nyse
    from tickstock.ops import infra
    from tickstock.pipeline.daily.service import build_service
    from tickstock.store.db import create_pool

    configured = settings()
    endpoints = infra.resolve(configured, start=False)
    source = instance_name("cli")
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=6, name=source)
    client = connect(endpoints.redis.url, name=source)

    def start_worker() -> StopWorker:
        return _start_worker(pool, client)

    try:
        yield build_service(pool=pool, client=client, calendar=nyse(), clock=LiveClock(),
                            source=source), start_worker
    finally:
        client.close()
        pool.close()


def _start_worker(pool: ConnectionPool, client: redis.Redis) -> StopWorker:
    """A full worker (jobs, commands, run batches) in a thread of this process."""
    from tickstock.core.clock import LiveClock
    from tickstock.core.ids import instance_name
    from tickstock.pipeline.jobs import load_handler_modules
    from tickstock.pipeline.worker import INSTALLERS, Worker, WorkerOptions

    configured = settings()
    worker = Worker(name=instance_name("worker"), client=client, pool=pool, clock=LiveClock(),
                    handlers=load_handler_modules(configured.worker_handler_modules),
                    options=WorkerOptions(claim_idle_s=configured.bus_claim_idle_s,
                                          max_deliveries=configured.bus_max_deliveries))
    worker.install(INSTALLERS)
    thread = threading.Thread(target=worker.run, name="cli-worker", daemon=True)
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(timeout=30)

    return stop
