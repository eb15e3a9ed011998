"""The worker: one member of the workers consumer group on the jobs, commands and batches
streams. Stateless; run as many as you like, on any machine.

- Jobs (``job.*``) run through ``JobRunner`` with the handlers of ``pipeline.jobs``.
- ``command.cancel`` is built in: a job id is cancelled here; a run id goes to the run
  canceller another package installs (``set_run_canceller``).
- Other commands and batches: whatever a plugin ``register``s. A plugin is a function
  ``install(worker)`` named in ``INSTALLERS`` ("module:function"); it may use the worker's
  pool, client, clock, events and publisher. Commands no handler here takes are left to the
  other consumer groups of the commands stream; batches nobody handles are dead-lettered.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import redis
from psycopg_pool import ConnectionPool

from tickstock.bus.events import EventPublisher
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.bus.streams import (
    Consumer,
    ConsumerOptions,
    DeadLetterHook,
    Handler,
    StreamPublisher,
)
from tickstock.contracts import names
from tickstock.contracts.commands import Cancel
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import CommandAccepted, CommandRejected
from tickstock.contracts.registry import JOB_TYPES, MESSAGE_TYPES
from tickstock.contracts.state import DeadLetter, HeartbeatState
from tickstock.core.clock import Clock
from tickstock.pipeline.job_runner import JobRunner
from tickstock.pipeline.jobs import JobHandler
from tickstock.store.jobs import UNKNOWN_TYPE, JobStore

log = logging.getLogger(__name__)

#: Plugins that register command and batch handlers: "module:function", called with the Worker.
INSTALLERS: tuple[str, ...] = ("tickstock.ops.daily:install",)

RunCanceller = Callable[[Cancel, Envelope], None]


@dataclass(frozen=True)
class WorkerOptions:
    claim_idle_s: float = 30.0
    max_deliveries: int = 5
    block_ms: int = 1000


class Worker:
    """Consumes durable work until stopped (or, with ``drain``, until nothing is pending)."""

    def __init__(self, *, name: str, client: redis.Redis, pool: ConnectionPool, clock: Clock,
                 handlers: Mapping[str, JobHandler], options: WorkerOptions | None = None,
                 heartbeat: HeartbeatThread | None = None) -> None:
        options = options or WorkerOptions()
        self.name = name
        self.client = client
        self.pool = pool
        self.clock = clock
        self.events = EventPublisher(client, source=name)
        self.publisher = StreamPublisher(client)
        self.jobs = JobStore(pool, clock)
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self._run_canceller: RunCanceller | None = None
        self._dead_letter_hooks: list[DeadLetterHook] = [self._fail_dead_lettered_job]
        consumer_options = ConsumerOptions(
            count=1, block_ms=options.block_ms, claim_idle_ms=int(options.claim_idle_s * 1000),
            claim_every_s=min(5.0, options.claim_idle_s / 2),
            max_deliveries=options.max_deliveries,
            ack_unhandled_on=frozenset({names.COMMANDS_STREAM}))
        # Work (jobs, batches) and commands have their own consumers, so a cancel is handled
        # while a long job runs.
        self.consumer = Consumer(
            client, group=names.WORKERS_GROUP, name=name,
            streams=(names.JOBS_STREAM, names.BATCHES_STREAM), clock=clock,
            on_dead_letter=self._dead_lettered, options=consumer_options)
        self.commands = Consumer(
            client, group=names.WORKERS_GROUP, name=f"{name}:commands",
            streams=(names.COMMANDS_STREAM,), clock=clock,
            on_dead_letter=self._dead_lettered, options=consumer_options)
        self.runner = JobRunner(handlers=handlers, store=self.jobs, pool=pool, client=client,
                                clock=clock, events=self.events, worker=name,
                                stopping=self._stop)
        for job_type in handlers:
            self.consumer.register(job_type, self._run_job)
        self.commands.register(Cancel.message_type, self._cancel)

    # -- wiring ------------------------------------------------------------------------------
    def register(self, message_type: str, handler: Handler) -> None:
        """Handle commands or batches of ``message_type`` (called with the envelope; return
        once the effect is committed, raise to retry, raise ContractError to dead-letter).

        ``command.cancel`` stays built in: a handler registered for it receives the cancels
        that name a run (``run_id``); job cancels are carried out here.
        """
        if message_type == Cancel.message_type:
            self.set_run_canceller(lambda cancel, envelope: handler(envelope))
            return
        model = MESSAGE_TYPES.get(message_type)
        target = self.commands if model is not None and model.kind == "command" else self.consumer
        target.register(message_type, handler)

    def add_dead_letter_hook(self, hook: DeadLetterHook) -> None:
        """Also call ``hook`` for every entry this worker dead-letters."""
        self._dead_letter_hooks.append(hook)

    def set_run_canceller(self, canceller: RunCanceller) -> None:
        """Who carries out ``command.cancel`` for a daily run."""
        self._run_canceller = canceller

    def install(self, installers: Iterable[str]) -> None:
        for spec in installers:
            module_name, _, function = spec.partition(":")
            install: Callable[[Worker], None] = getattr(
                importlib.import_module(module_name), function or "install")
            install(self)

    # -- running -----------------------------------------------------------------------------
    def run(self, *, drain: bool = False) -> None:
        """Consume until ``stop()`` (or until drained); a job in progress when stopping stops
        at its next symbol boundary and is left for another worker."""
        self._set_state("running")
        commands_stop = threading.Event()
        commands = threading.Thread(target=self.commands.run, args=(commands_stop,),
                                    daemon=True, name=f"commands-{self.name}")
        commands.start()
        try:
            if drain:
                self._drain()
            else:
                self.consumer.run(self._stop)
        finally:
            commands_stop.set()
            commands.join(timeout=5)
            self._set_state("stopping")

    def _drain(self) -> None:
        """Until both consumers are idle at once (a command may queue new work)."""
        while not self._stop.is_set():
            self.consumer.run(self._stop, drain=True)
            if self.commands.idle() and self.consumer.idle():
                return
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- handlers ----------------------------------------------------------------------------
    def _run_job(self, envelope: Envelope) -> None:
        self._set_state("busy")
        try:
            self.runner(envelope)
        finally:
            self._set_state("running")

    def _cancel(self, envelope: Envelope) -> None:
        cancel = envelope.payload(Cancel)
        if cancel.job_id is None:
            if self._run_canceller is None:
                self._answer(envelope, rejected="no run canceller is installed in this worker")
                return
            self._run_canceller(cancel, envelope)
            return
        job = self.jobs.request_cancel(cancel.job_id)
        if job.finished:
            self._answer(envelope, rejected=f"job {job.job_id} is already {job.status.value}",
                         job_id=job.job_id)
            return
        note = "queued; cancelled on arrival" if job.job_type == UNKNOWN_TYPE else (
            f"{job.status.value}; stops at the next symbol boundary")
        log.info("cancel requested for job %s", job.job_id, extra={"job_id": job.job_id})
        self._answer(envelope, note=note, job_id=job.job_id)

    def _answer(self, envelope: Envelope, *, rejected: str | None = None,
                note: str | None = None, job_id: str | None = None) -> None:
        if rejected is not None:
            self.events.publish(CommandRejected(
                command_id=envelope.id, command_type=envelope.type, reason=rejected),
                correlation_id=job_id)
        else:
            self.events.publish(CommandAccepted(
                command_id=envelope.id, command_type=envelope.type, job_id=job_id, note=note),
                correlation_id=job_id)

    def _dead_lettered(self, letter: DeadLetter, envelope: Envelope | None) -> None:
        for hook in self._dead_letter_hooks:
            try:
                hook(letter, envelope)
            except Exception:
                log.exception("dead-letter hook %r failed", hook)

    def _fail_dead_lettered_job(self, letter: DeadLetter, envelope: Envelope | None) -> None:
        """A job whose message was dead-lettered (e.g. it crashed every worker) is failed."""
        if envelope is None or envelope.type not in JOB_TYPES:
            return
        finished = self.jobs.fail_undeliverable(envelope.id, f"dead-lettered: {letter.reason}")
        if finished is not None:
            self.events.publish(finished[1], correlation_id=envelope.id)

    def _set_state(self, state: HeartbeatState) -> None:
        if self._heartbeat is not None:
            self._heartbeat.state = state
