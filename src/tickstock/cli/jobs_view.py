"""Reading jobs for ``tickstock jobs``: the database (the source of truth), the jobs stream
(queued jobs have no row until a worker starts them) and, for ``watch``, the event stream —
with the database as fallback when events were lost (Redis restarted), so ``watch`` always
ends on the recorded outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
import redis
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tickstock.cli.bus import console, redis_client
from tickstock.cli.context import database_pool
from tickstock.contracts import events as ev
from tickstock.contracts.envelope import Envelope
from tickstock.core.errors import NotFoundError
from tickstock.store.jobs import JobRecord, JobStore

#: Without an event for this long, ``watch`` asks the database (events are best effort).
_RECHECK_S = 2.0


@contextmanager
def job_store() -> Iterator[JobStore]:
    from tickstock.core.clock import LiveClock

    with database_pool("cli-jobs", max_size=2) as pool:
        yield JobStore(pool, LiveClock())


def find_queued(job_id: str) -> Envelope | None:
    """The queued (or just delivered, not yet recorded) envelope of ``job_id``."""
    from tickstock.bus.inspection import find
    from tickstock.contracts import names

    with redis_client("cli-jobs") as client:
        return find(client, names.JOBS_STREAM, job_id)


def queued_jobs(store: JobStore) -> list[Envelope]:
    """Queued job envelopes without a database row (newest first)."""
    from tickstock.bus.inspection import queued
    from tickstock.contracts import names

    with redis_client("cli-jobs") as client:
        found = queued(client, names.JOBS_STREAM, names.WORKERS_GROUP)
    return [e for e in reversed(found) if store.get(e.id) is None]


# -- watch --------------------------------------------------------------------------------------
@dataclass
class _View:
    """What ``watch`` knows about the job."""

    job_id: str
    status: str = "queued"
    total: int = 0
    processed: int = 0
    failed: int = 0
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.status in {s.value for s in ev.TERMINAL_JOB_STATUSES}

    def load(self, record: JobRecord) -> None:
        self.status, self.total = record.status.value, record.total
        self.processed, self.failed, self.error = record.processed, record.failed, record.error or ""

    def apply(self, data: Any) -> str | None:
        """Take one event of the job into account; a line worth printing, if any."""
        if isinstance(data, ev.JobStarted):
            self.status = "running"
            return f"started on {data.worker} (attempt {data.attempt})"
        if isinstance(data, ev.JobProgress | ev.JobCompleted | ev.JobFailed | ev.JobCancelled):
            self.total, self.processed, self.failed = data.total, data.processed, data.failed
        if isinstance(data, ev.JobCompleted | ev.JobFailed | ev.JobCancelled):
            self.status = data.message_type.removeprefix("job.")
            self.error = getattr(data, "error", "")
        if isinstance(data, ev.JobSymbolDone) and data.status is ev.SymbolStatus.FAILED:
            return f"[red]{escape(data.symbol)} failed[/]: {escape(data.error or '')}"
        return None


def watch_job(job_id: str, *, timeout: float) -> None:
    from tickstock.bus.events import EventReader
    from tickstock.core.clock import LiveClock

    view = _View(job_id)
    with redis_client("cli-jobs-watch") as client, job_store() as store:
        reader = EventReader(client, clock=LiveClock())
        cursor = reader.latest_id()  # before reading the state: no event falls in between
        _initial(view, store)
        _follow(view, reader, store, cursor, timeout)
    summary = (f"job {job_id} {view.status}: {view.processed}/{view.total} processed, "
               f"{view.failed} failed")
    if view.status == ev.JobStatus.COMPLETED.value:
        click.echo(summary)
        return
    if not view.finished:
        raise click.ClickException(f"{summary}; still {view.status} after {timeout:g}s")
    raise click.ClickException(summary + (f": {view.error}" if view.error else ""))


def _initial(view: _View, store: JobStore) -> None:
    record = store.get(view.job_id)
    if record is not None:
        view.load(record)
    elif find_queued(view.job_id) is None:
        raise NotFoundError(f"no job {view.job_id}: not in the database and not queued "
                            "(`tickstock jobs list` shows the known ones)")


def _follow(view: _View, reader: Any, store: JobStore, cursor: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout if timeout else float("inf")
    quiet_since = time.monotonic()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, console=console()) as bar:
        task = bar.add_task(f"{view.job_id[:8]} {view.status}", total=view.total or None)
        while not view.finished and time.monotonic() < deadline:
            try:
                cursor, events = reader.read(cursor, block_ms=500)
            except (redis.ConnectionError, redis.TimeoutError):
                events = []
                time.sleep(0.5)  # Redis restarting: the database still answers below
            mine = [e.data for _, e in events if e.correlation_id == view.job_id]
            for line in filter(None, map(view.apply, mine)):
                bar.console.print(line)
            if mine:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= _RECHECK_S:
                quiet_since = time.monotonic()
                _recheck(view, store)
            bar.update(task, description=f"{view.job_id[:8]} {view.status}",
                       total=view.total or None, completed=view.processed)


def _recheck(view: _View, store: JobStore) -> None:
    """The recorded state; a job that never got a row may have been dead-lettered."""
    record = store.get(view.job_id)
    if record is not None:
        view.load(record)
        return
    from tickstock.bus import deadletter

    with redis_client("cli-jobs-watch") as client:
        letters = deadletter.read(client, count=500)
    for _, letter in letters:
        if f'"id":"{view.job_id}"' in letter.original:
            raise click.ClickException(f"job {view.job_id} was dead-lettered and never ran: "
                                       f"{letter.reason}")
