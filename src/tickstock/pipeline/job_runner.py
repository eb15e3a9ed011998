"""Running one job: the lifecycle around a handler, and the ``JobContext`` it reports through.

1. ``JobStore.begin`` records the delivery: a finished job is skipped (acknowledged without
   rerunning), a job cancelled before it started is closed, anything else is started — again,
   if a dead worker had started it before (its data writes are upserts).
2. The handler runs with a ``RunningJob`` context: every symbol result goes to PostgreSQL first,
   then out as events and into the read model.
3. The outcome: the handler returned → completed (or cancelled, if it saw ``cancelled()``);
   raised → failed. Either way the entry is acknowledged: the outcome is committed.
4. Shutdown mid-job: ``cancelled()`` turns true, the handler returns at its next symbol
   boundary, and the entry is left pending for another worker (``LeavePending``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import redis
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from tickstock.bus.events import EventPublisher
from tickstock.bus.readmodel import write_job
from tickstock.bus.streams import LeavePending
from tickstock.contracts.common import Payload
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import JobProgress, JobStatus, SymbolStatus
from tickstock.contracts.registry import MESSAGE_TYPES
from tickstock.contracts.state import JobReadModel
from tickstock.core.clock import Clock
from tickstock.core.errors import ContractError
from tickstock.pipeline.jobs import JobHandler
from tickstock.store.jobs import JobRecord, JobStore

log = logging.getLogger(__name__)


class RunningJob:
    """The ``JobContext`` of one running job (see ``tickstock.pipeline.jobs``)."""

    def __init__(self, job: JobRecord, *, store: JobStore, pool: ConnectionPool, clock: Clock,
                 events: EventPublisher, client: redis.Redis, worker: str,
                 stopping: threading.Event) -> None:
        self.job_id = job.job_id
        self.pool = pool
        self.clock = clock
        self._job = job
        self._store = store
        self._events = events
        self._client = client
        self._worker = worker
        self._stopping = stopping
        self._cancel_seen = False
        #: The handler was told to stop because the worker shuts down.
        self.interrupted = False
        self.bars = 0

    # -- JobContext --------------------------------------------------------------------------
    def set_total(self, total: int) -> None:
        self._progress(self._store.set_total(self.job_id, total))

    def symbol_done(self, symbol: str, *, timeframe: str = "", bars: int = 0) -> None:
        self.bars += bars
        self._symbol(symbol, timeframe, SymbolStatus.OK, bars, None)

    def symbol_failed(self, symbol: str, reason: str, *, timeframe: str = "") -> None:
        self._symbol(symbol, timeframe, SymbolStatus.FAILED, 0, reason)

    def cancelled(self) -> bool:
        if self._stopping.is_set():
            self.interrupted = True
            return True
        if not self._cancel_seen:
            self._cancel_seen = self._store.cancel_requested(self.job_id)
        return self._cancel_seen

    def emit(self, event_type: str, data: BaseModel) -> None:
        model = MESSAGE_TYPES.get(event_type)
        if model is None or model.kind != "event" or type(data) is not model:
            raise ContractError(f"emit({event_type!r}, {type(data).__name__}): not an event "
                                "type of the contract with its payload model")
        assert isinstance(data, Payload)
        self._events.publish(data, correlation_id=self.job_id)

    # -- used by the runner ------------------------------------------------------------------
    @property
    def cancel_requested(self) -> bool:
        """Cancelled by a user (as opposed to interrupted by shutdown)."""
        return self._cancel_seen or self._store.cancel_requested(self.job_id)

    def publish(self, event: Payload) -> None:
        self._events.publish(event, correlation_id=self.job_id)

    def write_read_model(self, job: JobRecord) -> None:
        self._job = job
        write_job(self._client, JobReadModel(
            job_id=job.job_id, job_type=job.job_type, status=job.status, total=job.total,
            processed=job.processed, failed=job.failed, percent=job.percent,
            worker=job.worker or "", error=job.error or "", updated_at=self.clock.now()))

    def _symbol(self, symbol: str, timeframe: str, status: SymbolStatus, bars: int,
                error: str | None) -> None:
        done, progress = self._store.record_symbol(self.job_id, symbol, timeframe=timeframe,
                                                   status=status, bars=bars, error=error)
        self.publish(done)
        self._progress(progress)

    def _progress(self, progress: JobProgress) -> None:
        self.publish(progress)
        job = self._job
        write_job(self._client, JobReadModel(
            job_id=job.job_id, job_type=job.job_type, status=JobStatus.RUNNING,
            total=progress.total, processed=progress.processed, failed=progress.failed,
            percent=progress.percent, worker=self._worker, updated_at=self.clock.now()))


class JobRunner:
    """Handles job envelopes from the jobs stream (a ``bus.streams.Handler``)."""

    def __init__(self, *, handlers: Mapping[str, JobHandler], store: JobStore,
                 pool: ConnectionPool, client: redis.Redis, clock: Clock,
                 events: EventPublisher, worker: str, stopping: threading.Event) -> None:
        self._handlers = handlers
        self._store = store
        self._pool = pool
        self._client = client
        self._clock = clock
        self._events = events
        self._worker = worker
        self._stopping = stopping
        #: Set while a handler runs (the worker's heartbeat shows "busy").
        self.busy = threading.Event()

    def __call__(self, envelope: Envelope) -> None:
        handler = self._handlers.get(envelope.type)
        if handler is None:
            raise ContractError(f"no handler for job type {envelope.type!r} in this worker")
        extra = {"job_id": envelope.id}
        start = self._store.begin(
            job_id=envelope.id, job_type=envelope.type, worker=self._worker,
            params=envelope.data.model_dump(mode="json"), submitted_at=envelope.ts,
            requested_by=getattr(envelope.data, "requested_by", None),
            correlation_id=envelope.correlation_id)
        ctx = self._context(start.job)
        for event in start.events:
            ctx.publish(event)
        ctx.write_read_model(start.job)
        if start.action != "run":
            log.info("job %s not run: %s (%s)", envelope.id, start.action, start.job.status,
                     extra=extra)
            return
        log.info("job %s (%s) started, attempt %d", envelope.id, envelope.type,
                 start.job.attempts, extra=extra)
        self.busy.set()
        try:
            outcome = self._run(handler, envelope, ctx)
        finally:
            self.busy.clear()
        if outcome is None:
            raise LeavePending(f"worker {self._worker} is stopping; job {envelope.id} resumes "
                               "on another worker")
        finished = self._store.finish(envelope.id, outcome[0], worker=self._worker,
                                      error=outcome[1], result=outcome[2])
        if finished is None:
            log.warning("job %s is no longer ours to finish (claimed by another worker?)",
                        envelope.id, extra=extra)
            return
        job, event = finished
        ctx.publish(event)
        ctx.write_read_model(job)
        log.info("job %s %s: %d processed, %d failed", envelope.id, job.status.value,
                 job.processed, job.failed, extra=extra)

    def _run(self, handler: JobHandler, envelope: Envelope, ctx: RunningJob
             ) -> tuple[JobStatus, str | None, dict[str, Any] | None] | None:
        """(status, error, result) of the handler run, None when interrupted by shutdown."""
        try:
            handler(envelope.data, ctx)
        except Exception as exc:
            log.exception("job %s failed", envelope.id, extra={"job_id": envelope.id})
            return JobStatus.FAILED, f"{type(exc).__name__}: {exc}", None
        if ctx.cancel_requested:
            return JobStatus.CANCELLED, None, None
        if ctx.interrupted:
            return None
        return JobStatus.COMPLETED, None, {"bars": ctx.bars}

    def _context(self, job: JobRecord) -> RunningJob:
        return RunningJob(job, store=self._store, pool=self._pool, clock=self._clock,
                          events=self._events, client=self._client, worker=self._worker,
                          stopping=self._stopping)
