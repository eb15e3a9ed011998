"""The daily processing run, step by step. PostgreSQL holds the run's state; the bus carries
its batches; any worker may take any step, so the run survives any one process.

1. Start (``DailyRun.start``, called by the trigger command handlers in
   ``pipeline/commands.py``): resolve the symbols (``store/runs.resolve_symbols``), insert a
   pending run (``store/runs.create_run``; the database allows one active run — a second is
   refused, or queued behind it when asked), emit ``run.started``, go to step 2.
2. Phase start (``DailyRun._start_phase``): split the symbols into batches
   (``pipeline/daily/plan.py``), persist the phase and its batches (``store/runs.start_phase``),
   publish one ``batch.run_phase`` per batch on the batches stream (consumer group shared by
   every worker), mark them published; emit ``run.phase_started``.
3. Batch (``DailyRun.handle_batch``, registered with the worker by
   ``pipeline/daily/wiring.py``): claim it (``store/runs.claim_batch``: skipped when already
   done or when the run is no longer running; left pending on the bus while another worker
   holds it, so it comes back if that worker died), run the phase's step on its symbols
   (``pipeline/daily/steps/``: import → ``importer.py``, indicators and patterns →
   ``analysis.py``, outcomes → ``outcomes.py``), record per-symbol import failures
   (``import_failures``), complete the batch and add its counts to phase and run in one
   transaction (``store/runs.complete_batch``); emit ``run.phase_progress`` and
   ``run.progress``.
4. Phase end (``DailyRun._advance``, by whichever worker completed the last batch): the next
   phase goes to step 2; after the last, the run is finished (``run.completed``, or
   ``run.failed`` when a whole phase failed) and a trigger queued behind it is started.
5. Cancel (``DailyRun.cancel``): the run is finished as cancelled at once; workers stop at their
   next batch boundary because a claim needs a running run.
6. Resume (``DailyRun.reconcile``, at worker start and on a timer): re-publish batches whose
   message may never have been sent, advance a phase whose batches are all done, start a run
   left pending. Batches of a killed worker come back through the bus (XAUTOCLAIM); a batch
   completed before a crash is never redone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from tickstock.bus.streams import LeavePending
from tickstock.contracts.common import Phase
from tickstock.contracts.events import (
    Event,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunPhaseCompleted,
    RunPhaseProgress,
    RunPhaseStarted,
    RunProgress,
    RunStarted,
)
from tickstock.contracts.jobs import RunPhaseBatch
from tickstock.core.clock import Clock
from tickstock.pipeline.daily import metrics
from tickstock.pipeline.daily.model import (
    TRIGGER_TYPES,
    BatchOutcome,
    BatchWork,
    PhaseSetup,
    PhaseStep,
    RunBus,
    RunRequest,
    StartResult,
)
from tickstock.pipeline.daily.plan import split_batches
from tickstock.pipeline.daily.progress import run_view
from tickstock.store.runs import NewRun, RunAlreadyActive, RunRecord, RunRepository

log = logging.getLogger(__name__)

class DailyRun:
    """The orchestrator: starts runs, handles batches, advances phases, resumes after crashes."""

    def __init__(
        self, *, runs: RunRepository, bus: RunBus, clock: Clock, steps: Mapping[Phase, PhaseStep],
        instance: str, batch_size: int = 250, takeover_after: timedelta = timedelta(seconds=60),
        setups: Mapping[Phase, PhaseSetup] | None = None, max_attempts: int = 3,
    ) -> None:
        self.runs = runs
        self.bus = bus
        self.clock = clock
        self.steps = steps
        self.instance = instance
        self.batch_size = batch_size
        self.takeover_after = takeover_after
        self.setups = setups or {}
        self.max_attempts = max_attempts

    # -- 1. start -------------------------------------------------------------------------------

    def start(self, request: RunRequest) -> StartResult:
        """Create the run and start its first phase, or queue/refuse it if one is active."""
        symbols = list(request.symbols)
        if not symbols:
            symbols, unknown = self.runs.resolve_symbols(request.universes)
            if unknown:
                return StartResult("refused", request.run_id,
                                   f"unknown universe(s): {', '.join(unknown)}")
        if not symbols:
            scope = ", ".join(request.universes) or "the symbols table"
            return StartResult("refused", request.run_id, f"no active symbols in {scope}")
        new = NewRun(
            run_id=request.run_id, trigger_type=request.trigger_type,
            phases=tuple(str(p) for p in request.phases), universes=request.universes,
            timeframes=request.timeframes, requested_by=request.requested_by,
            session_date=request.session_date, symbols_total=len(symbols),
            metadata={"symbols": symbols, **request.options},
        )
        try:
            run = self.runs.create_run(new, self.clock.now())
        except RunAlreadyActive as busy:
            return self._busy(request, busy.active)
        self._emit(RunStarted(run_id=run.run_id, trigger_type=_trigger(run.trigger_type),
                              phases=request.phases, universes=run.universes,
                              timeframes=tuple(request.timeframes),
                              session_date=run.session_date.isoformat()
                              if run.session_date else None,
                              requested_by=run.requested_by), run.run_id)
        metrics.RUNS_STARTED.labels(trigger_type=run.trigger_type).inc()
        self._start_phase(run, request.phases[0])
        return StartResult("started", run.run_id)

    def _busy(self, request: RunRequest, active: RunRecord) -> StartResult:
        what = f"run {active.run_id} is {active.status} (phase {active.phase or '-'})"
        if request.queue_if_busy:
            if self.runs.enqueue(active.run_id, request.to_json()):
                return StartResult("queued", request.run_id, f"queued behind {what}", active)
            return StartResult("refused", request.run_id,
                               f"{what} and another run is already queued behind it", active)
        return StartResult("refused", request.run_id,
                           f"{what}; one run at a time (cancel it, or ask to queue)", active)

    # -- 2. phase start -------------------------------------------------------------------------

    def _start_phase(self, run: RunRecord, phase: Phase) -> None:
        symbols: list[str] = list(run.metadata.get("symbols", []))
        setup = self.setups.get(phase)
        if setup is not None:
            totals = dict(setup(run, symbols))
            if totals:
                run = self.runs.update_run(run.run_id, **totals)
        batches = split_batches(symbols, phase, self.batch_size)
        pending = self.runs.start_phase(run.run_id, str(phase), batches, self.clock.now(),
                                        total=len(symbols))
        self._emit(RunPhaseStarted(run_id=run.run_id, phase=phase, total=len(symbols)),
                   run.run_id)
        self._publish(run, phase, [b.batch_no for b in pending if b.published_at is None])

    def _publish(self, run: RunRecord, phase: Phase, batch_nos: Sequence[int]) -> None:
        if not batch_nos:
            return
        wanted = set(batch_nos)
        for batch in self.runs.batches(run.run_id, str(phase)):
            if batch.batch_no in wanted:
                self.bus.publish_batch(RunPhaseBatch(
                    run_id=run.run_id, phase=phase, batch_no=batch.batch_no,
                    symbols=batch.symbols, timeframes=run.timeframes,
                ))
        self.runs.mark_published(run.run_id, str(phase), batch_nos, self.clock.now())

    # -- 3. batch -------------------------------------------------------------------------------

    def handle_batch(self, message: RunPhaseBatch) -> None:
        """Do one batch (idempotent: a batch already done, or of a stopped run, is skipped).

        A step that raises leaves the batch to the bus's retry; after ``max_attempts`` the batch
        is recorded as failed (every symbol failed) so the run can go on.
        """
        now = self.clock.now()
        batch = self.runs.claim_batch(message.run_id, str(message.phase), message.batch_no,
                                      self.instance, now, stale_before=now - self.takeover_after)
        if batch is None:
            self._held_elsewhere(message)
            return
        run = self.runs.get_run(message.run_id)
        work = BatchWork(run=run, phase=message.phase, batch_no=batch.batch_no,
                         symbols=batch.symbols, cancelled=lambda: self._stopped(run.run_id))
        started = self.clock.monotonic()
        try:
            outcome = self.steps[message.phase](work)
        except Exception as exc:
            if batch.attempts < self.max_attempts:
                raise
            log.exception("batch failed for good", extra={"run_id": run.run_id})
            outcome = BatchOutcome(failed=len(batch.symbols))
            self._complete(run, message.phase, batch.batch_no, outcome, error=str(exc)[:2000])
            return
        metrics.BATCH_SECONDS.labels(phase=str(message.phase)).observe(
            self.clock.monotonic() - started)
        self._complete(run, message.phase, batch.batch_no, outcome)

    def _held_elsewhere(self, message: RunPhaseBatch) -> None:
        """A batch another worker claimed recently: leave the message pending rather than
        acknowledge it, so that if that worker died holding the batch, the message comes back
        (after the bus's claim timeout) and the batch is taken over then."""
        held = next((b for b in self.runs.batches(message.run_id, str(message.phase))
                     if b.batch_no == message.batch_no), None)
        if held is None or held.status != "running" or held.worker == self.instance:
            return
        if self.runs.get_run(message.run_id).status != "running":
            return
        raise LeavePending(f"batch {message.batch_no} of {message.phase} is held by {held.worker}")

    def _stopped(self, run_id: str) -> bool:
        run = self.runs.get_run(run_id)
        return run.status != "running" or run.cancel_requested

    def _complete(self, run: RunRecord, phase: Phase, batch_no: int, outcome: BatchOutcome,
                  error: str | None = None) -> None:
        now = self.clock.now()
        if outcome.failures:
            self.runs.record_import_failures(run.run_id, outcome.failures, now)
        if outcome.resolved:
            self.runs.resolve_import_failures(outcome.resolved, run.run_id, now)
        done = self.runs.complete_batch(
            run.run_id, str(phase), batch_no, now, processed=outcome.processed,
            failed=outcome.failed, run_counters=outcome.counters,
            status="failed" if error else "completed", error=error)
        if not done.counted:
            return
        metrics.SYMBOLS.labels(phase=str(phase), result="processed").inc(outcome.processed)
        metrics.SYMBOLS.labels(phase=str(phase), result="failed").inc(outcome.failed)
        p = done.phase
        self._emit(RunPhaseProgress(run_id=run.run_id, phase=phase, total=p.total,
                                    processed=p.processed, failed=p.failed,
                                    percent=100.0 if done.phase_finished else
                                    min(100.0, round(100 * (p.processed + p.failed)
                                                     / max(p.total, 1), 2))), run.run_id)
        self._emit_run_progress(run.run_id)
        if done.phase_finished:
            self._advance(run.run_id, phase)

    def _emit_run_progress(self, run_id: str) -> None:
        run = self.runs.get_run(run_id)
        view = run_view(run, self.runs.phases(run_id), self.clock.now())
        metrics.RUN_PROGRESS.set(view.percent)
        current = next((p for p in view.phases if p.phase == run.phase), None)
        self._emit(RunProgress(
            run_id=run_id, phase=Phase(run.phase) if run.phase else None,
            total=current.total if current else 0,
            processed=current.processed if current else 0,
            failed=current.failed if current else 0, percent=view.percent), run_id)

    # -- 4. phase end ---------------------------------------------------------------------------

    def _advance(self, run_id: str, finished: Phase) -> None:
        run = self.runs.get_run(run_id)
        if run.status != "running":
            return
        phase = self.runs.get_phase(run_id, str(finished))
        if phase is not None and phase.started_at and phase.completed_at:
            seconds = (phase.completed_at - phase.started_at).total_seconds()
            metrics.PHASE_SECONDS.labels(phase=str(finished)).observe(seconds)
            self._emit(RunPhaseCompleted(run_id=run_id, phase=finished, processed=phase.processed,
                                         failed=phase.failed, duration_s=max(seconds, 0.0)),
                       run_id)
        planned = [Phase(p) for p in run.phases]
        index = planned.index(finished)
        if index + 1 < len(planned):
            self._start_phase(run, planned[index + 1])
            return
        self._finish(run)

    def _finish(self, run: RunRecord) -> None:
        phases = self.runs.phases(run.run_id)
        wiped_out = [p for p in phases if p.total > 0 and p.processed == 0 and p.failed > 0]
        if wiped_out:
            names = ", ".join(p.phase for p in wiped_out)
            final = self.runs.finish_run(run.run_id, "failed", self.clock.now(),
                                         error=f"every symbol failed in phase(s) {names}")
            if final is not None:
                self._emit(RunFailed(run_id=run.run_id, phase=Phase(wiped_out[0].phase),
                                     error=final.error_message or "failed"), run.run_id)
        else:
            final = self.runs.finish_run(run.run_id, "completed", self.clock.now())
            if final is not None:
                self._emit(RunCompleted(
                    run_id=run.run_id, duration_s=max(final.duration_seconds or 0.0, 0.0),
                    symbols_processed=final.symbols_processed,
                    symbols_failed=final.symbols_failed,
                    indicators_processed=final.indicators_processed,
                    patterns_detected=final.patterns_detected), run.run_id)
        if final is not None:
            self._ended(final)

    def _ended(self, final: RunRecord) -> None:
        metrics.RUNS_FINISHED.labels(status=final.status).inc()
        if final.duration_seconds is not None:
            metrics.RUN_SECONDS.observe(max(final.duration_seconds, 0.0))
        metrics.RUN_PROGRESS.set(100.0 if final.status == "completed" else 0.0)
        queue = final.metadata.get("queue") or []
        if queue:
            result = self.start(RunRequest.from_json(queue[0]))
            log.info("queued run %s", result.outcome, extra={"run_id": result.run_id})

    # -- 5. cancel ------------------------------------------------------------------------------

    def cancel(self, run_id: str, requested_by: str | None = None) -> RunRecord | None:
        """Cancel an active run now; None when it is not active (unknown: NotFoundError)."""
        self.runs.get_run(run_id)
        if self.runs.request_cancel(run_id) is None:
            return None
        final = self.runs.finish_run(run_id, "cancelled", self.clock.now(),
                                     error=f"cancelled by {requested_by or 'request'}")
        if final is None:
            return None
        self._emit(RunCancelled(run_id=run_id, phase=Phase(final.phase) if final.phase else None,
                                requested_by=requested_by), run_id)
        self._ended(final)
        return final

    # -- 6. resume ------------------------------------------------------------------------------

    def reconcile(self, *, unpublished_grace: timedelta = timedelta(seconds=10)) -> str | None:
        """Bring the active run forward after a crash anywhere; returns what it did, if anything."""
        run = self.runs.active_run()
        now = self.clock.now()
        if run is None or now - run.created_at < unpublished_grace:
            return None
        if run.status == "pending" or run.phase is None:
            self._start_phase(run, Phase(run.phases[0]))
            return "started first phase"
        phase = Phase(run.phase)
        record = self.runs.get_phase(run.run_id, run.phase)
        if record is None:
            self._start_phase(run, phase)
            return "started phase"
        if record.status == "completed":
            self._advance(run.run_id, phase)
            return "advanced"
        stale = record.started_at is not None and now - record.started_at >= unpublished_grace
        lost = [b.batch_no for b in self.runs.open_batches(run.run_id, run.phase)
                if b.published_at is None and stale]
        if not lost:
            return None
        self._publish(run, phase, lost)
        return f"re-published {len(lost)} batches"

    # -- helpers --------------------------------------------------------------------------------

    def _emit(self, event: Event, run_id: str) -> None:
        try:
            self.bus.emit(event, correlation_id=run_id)
        except Exception:  # events are best effort; the database has the state
            log.warning("could not emit %s", event.message_type, exc_info=True,
                        extra={"run_id": run_id})


def _trigger(value: str) -> Any:
    return value if value in TRIGGER_TYPES else "manual"
