"""Running a data-load job in the calling process, without the bus (``tickstock load --inline``).

The job is recorded in PostgreSQL exactly as a worker records it (``jobs``, symbol results,
``import_failures``), so ``tickstock jobs show`` and "retry failed" work on it too; only the
events and the Redis read model are left out, since no Redis is needed. Progress goes to a
callback instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from tickstock.contracts.events import JobProgress, JobStatus, SymbolStatus
from tickstock.contracts.jobs import Job
from tickstock.core.clock import Clock
from tickstock.core.ids import new_id
from tickstock.pipeline.jobs import JobHandler
from tickstock.store.jobs import JobRecord, JobStore

log = logging.getLogger(__name__)

Progress = Callable[[JobProgress, str | None], None]  # progress, a line worth showing


class InlineContext:
    """A ``JobContext`` writing to PostgreSQL only."""

    def __init__(self, job_id: str, *, pool: ConnectionPool, clock: Clock, store: JobStore,
                 on_progress: Progress | None, stop: threading.Event) -> None:
        self.job_id = job_id
        self.pool = pool
        self.clock = clock
        self.bars = 0
        self.cancel_seen = False
        self._store = store
        self._on_progress = on_progress
        self._stop = stop

    def set_total(self, total: int) -> None:
        self._report(self._store.set_total(self.job_id, total), None)

    def symbol_done(self, symbol: str, *, timeframe: str = "", bars: int = 0) -> None:
        self.bars += bars
        _, progress = self._store.record_symbol(self.job_id, symbol, timeframe=timeframe,
                                                bars=bars)
        self._report(progress, None)

    def symbol_failed(self, symbol: str, reason: str, *, timeframe: str = "") -> None:
        _, progress = self._store.record_symbol(self.job_id, symbol, timeframe=timeframe,
                                                status=SymbolStatus.FAILED, error=reason)
        self._report(progress, f"{symbol} {timeframe} failed: {reason}")

    def cancelled(self) -> bool:
        if not self.cancel_seen:
            self.cancel_seen = self._stop.is_set() or self._store.cancel_requested(self.job_id)
        return self.cancel_seen

    def emit(self, event_type: str, data: BaseModel) -> None:
        log.debug("inline job %s: %s not published (no bus)", self.job_id, event_type)

    def _report(self, progress: JobProgress, line: str | None) -> None:
        if self._on_progress is not None:
            self._on_progress(progress, line)


def run_inline(job: Job, handlers: Mapping[str, JobHandler], *, pool: ConnectionPool,
               clock: Clock, worker: str, on_progress: Progress | None = None,
               stop: threading.Event | None = None, job_id: str | None = None) -> JobRecord:
    """Run ``job`` here with the handler of its type; its final record. ``stop`` (e.g. set on
    Ctrl-C) cancels it at the next symbol boundary; a handler error fails the job."""
    handler = handlers.get(job.message_type)
    if handler is None:
        raise ValueError(f"no handler for {job.message_type}")
    store = JobStore(pool, clock)
    job_id = job_id or new_id()
    start = store.begin(job_id=job_id, job_type=job.message_type, worker=worker,
                        params=job.model_dump(mode="json"), submitted_at=clock.now(),
                        requested_by=job.requested_by)
    if start.action == "run":
        ctx = InlineContext(job_id, pool=pool, clock=clock, store=store,
                            on_progress=on_progress, stop=stop or threading.Event())
        try:
            handler(job, ctx)
        except Exception as exc:
            log.exception("inline job %s failed", job_id)
            store.finish(job_id, JobStatus.FAILED, worker=worker,
                         error=f"{type(exc).__name__}: {exc}")
        else:
            status = JobStatus.CANCELLED if ctx.cancel_seen else JobStatus.COMPLETED
            store.finish(job_id, status, worker=worker, result={"bars": ctx.bars})
    record = store.get(job_id)
    assert record is not None
    return record
