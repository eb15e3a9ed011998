"""Closed minute bars in; stored bars, derived bars, analysis and live events out.

For each batch (usually one minute-boundary burst, or part of one):

1. Keep each symbol's minutes in order: a minute at or before the symbol's last one is a
   duplicate (counted, not reprocessed); a minute outside regular hours, or with a non-finite
   price or a negative volume (logged with the symbol), is counted and skipped.
2. Roll the minutes up into 5-minute, 15-minute and hourly bars (``rollup``); close the buckets
   whose time has passed (``flush_before``) unless the symbol still waits for a gap repair.
3. Store every closed bar — minutes and derived — in one upsert, on a writer thread while
   step 4 runs. A failed write keeps the bars and retries them with the next batch.
4. Feed the closed bars, with their session's daily trend (``daily``), to the incremental
   engine (``engine``, chunk by chunk): indicator values and pattern detections; then the
   events: the alert rules compare each bar's values with the previous bar's, and each final
   bar carries its values. A chunk's analysis stays columns (``ChunkAnalysis``) from the
   engine to the payloads: the rules check the chunk at once and the final bars go to the sink
   as those columns (``FinalBars``); only detections and alerts become an object each.
5. Publish, a chunk of ``ANALYSIS_CHUNK`` closed bars at a time (the engine analyses the next
   chunk meanwhile) and never before the batch's bars are stored: detections, alerts, then the
   final bars with their indicator values; last the forming derived bars "so far" (``final``
   false).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from math import isfinite
from operator import attrgetter
from typing import Protocol

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import StoreError
from tickstock.pipeline.stream.alerts import AlertRules
from tickstock.pipeline.stream.bars import (
    AlertEvent,
    BarEvent,
    DetectionEvent,
    FinalBars,
    LiveBar,
    LiveEvent,
)
from tickstock.pipeline.stream.daily_context import DailyTrends
from tickstock.pipeline.stream.engine import (
    BarAnalysis,
    ChunkAnalysis,
    LiveEngine,
    detection_events,
)
from tickstock.pipeline.stream.metrics import StageTimer, StreamStats
from tickstock.pipeline.stream.rollup import DERIVED, Rollup
from tickstock.pipeline.stream.sessions import SessionLookup

logger = logging.getLogger(__name__)

LIVE_TIMEFRAMES: tuple[Timeframe, ...] = (Timeframe.MIN1, *DERIVED)
#: Closed bars analysed and published at a time: a burst's events start flowing after the first
#: chunk, and a parallel engine analyses the next chunk while this process publishes one.
ANALYSIS_CHUNK = 1000
_start = attrgetter("start")


class BarWriter(Protocol):
    def upsert(self, bars: Sequence[LiveBar], *, fresh: bool = True) -> dict[str, int]:
        """Store ``bars``; ``fresh`` false: some may be stored already."""


class EventSink(Protocol):
    def publish(self, events: Sequence[LiveEvent]) -> int:
        """Publish ``events`` in order; return how many were published."""


class DetectionWriter(Protocol):
    def write(self, detections: Sequence[DetectionEvent]) -> None: ...


@dataclass
class BatchOutcome:
    """What one batch did (the service turns it into metrics)."""

    minutes: int = 0
    closed: list[LiveBar] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)


class LiveProcessor:
    """Owns the per-symbol live state: last minute, roll-ups, engine state and alert state.

    Not thread-safe: one thread calls ``process`` (the service's processing thread).
    ``keep_analyses`` keeps every closed bar's analysis in ``kept`` (tests compare it with
    batch output).
    """

    def __init__(
        self,
        *,
        writer: BarWriter,
        engine: LiveEngine,
        sessions: SessionLookup,
        sink: EventSink,
        stats: StreamStats | None = None,
        timeframes: tuple[Timeframe, ...] = LIVE_TIMEFRAMES,
        alerts: AlertRules | None = None,
        detections: DetectionWriter | None = None,
        forming_events: bool = True,
        keep_analyses: bool = False,
        daily: DailyTrends | None = None,
    ) -> None:
        if Timeframe.MIN1 not in timeframes:
            raise ValueError("the stream always processes 1min bars; add it to timeframes")
        self.writer = writer
        self.engine = engine
        self.sessions = sessions
        self.sink = sink
        self.stats = stats or StreamStats()
        self.timeframes = timeframes
        self.rollup = Rollup(sessions, tuple(tf for tf in timeframes if tf in DERIVED))
        self.alerts = alerts or AlertRules()
        self.detections = detections
        self.forming_events = forming_events
        self.daily = daily
        self.keep_analyses = keep_analyses
        self.last_minute: dict[str, datetime] = {}
        self.kept: dict[tuple[str, Timeframe, datetime], BarAnalysis] = {}
        self._unstored: list[LiveBar] = []
        self._writer_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-writer")

    def close(self) -> None:
        self._writer_pool.shutdown(wait=True)
        self.engine.close()

    @property
    def unstored(self) -> int:
        return len(self._unstored)

    # -- warm-up ---------------------------------------------------------------------------------

    def warm_rollups(self, current_minutes: dict[str, list[LiveBar]]) -> list[LiveBar]:
        """Rebuild the forming derived bars from each symbol's stored minutes of its still-open
        buckets (after a restart). A bucket they complete — its bar may not have been stored
        before a crash — is stored again (an upsert: harmless when it was) and returned."""
        # every symbol's minutes by start time (each symbol's stay in order): the whole
        # universe's minutes of one start time roll up in one array pass
        ordered = sorted(chain.from_iterable(current_minutes.values()), key=_start)
        restored = self.rollup.add_many(ordered)
        if restored:
            self.writer.upsert(restored, fresh=False)
        return restored

    def warm_state(self, history: dict[Timeframe, dict[str, list[LiveBar]]]) -> None:
        """Start the engine, the alert rules and the last-minute marks from the last stored
        bars of each timeframe and symbol (oldest first)."""
        for tf, by_symbol in history.items():
            stored = [bars for bars in by_symbol.values() if bars]
            if self.daily is not None and tf in self.timeframes:
                for bars in stored:
                    self.daily.apply(bars)
            warmed = self.engine.warm_many(stored) if tf in self.timeframes else None
            for k, bars in enumerate(stored):
                self.alerts.warm(bars, None if warmed is None else warmed[k])
                if tf is Timeframe.MIN1:
                    self.last_minute[bars[-1].symbol] = bars[-1].start

    # -- processing ------------------------------------------------------------------------------

    def process(self, minutes: Iterable[LiveBar], *, flush_before: datetime | None = None,
                hold: frozenset[str] | set[str] = frozenset()) -> BatchOutcome:
        timer = StageTimer()
        outcome = BatchOutcome()
        with timer("roll_up"):
            accepted = self._accept(minutes)
            # the minutes, then the derived bars they close (a symbol's of a timeframe oldest
            # first): one array pass over the burst instead of a call per minute
            closed: list[LiveBar] = [*accepted, *self.rollup.add_many(accepted)]
            if flush_before is not None:
                closed.extend(self.rollup.flush(flush_before, skip=hold))
        outcome.minutes, outcome.closed = len(accepted), closed
        to_store = self._unstored + closed
        self._unstored = []
        stored: Future[dict[str, int]] = self._writer_pool.submit(self.writer.upsert, to_store)
        if self.daily is not None:
            self.daily.apply(closed)
        chunks = [closed[i:i + ANALYSIS_CHUNK] for i in range(0, len(closed), ANALYSIS_CHUNK)]
        analysed = self.engine.update_chunks(chunks)
        waited = False
        try:
            for chunk in chunks:  # the engine analyses the next chunk while this one publishes
                with timer("analyse"):
                    analysis = next(analysed)
                with timer("events"):
                    detections, alerts, finals = self._events(chunk, analysis)
                if not waited:  # no event before its bars are stored
                    with timer("store_wait"):
                        self._stored(stored, to_store, outcome)
                    waited = True
                if detections and self.detections is not None:
                    with timer("detections"):
                        self._write_detections(detections)
                with timer("publish"):
                    _add_counts(outcome.events, self._publish([*detections, *alerts, finals]))
        finally:
            analysed.close()
        if not waited:
            with timer("store_wait"):
                self._stored(stored, to_store, outcome)
        if self.forming_events:
            with timer("events"):
                forming = self._forming(accepted)
            with timer("publish"):
                _add_counts(outcome.events, self._publish(list(forming)))
        self.stats.processed += len(accepted)
        self.stats.observe_stages(timer.seconds)
        logger.debug("batch processed", extra={"minutes": len(accepted), "closed": len(closed),
                                               "ms": round(1000 * sum(timer.seconds.values()), 1)})
        return outcome

    def _stored(self, stored: Future[dict[str, int]], to_store: list[LiveBar],
                outcome: BatchOutcome) -> None:
        try:
            outcome.stored = stored.result()
            self.stats.on_stored(outcome.stored)
        except StoreError as exc:
            self._unstored = to_store
            self.stats.on_error("store")
            logger.error("storing live bars failed; kept for retry: %s", exc,
                         extra={"bars": len(to_store)})

    def _accept(self, minutes: Iterable[LiveBar]) -> list[LiveBar]:
        accepted = []
        session_of, last_minute = self.sessions.session_of, self.last_minute
        for bar in sorted(minutes, key=_start):
            if session_of(bar.start) is None:
                self.stats.on_outside_session()
                continue
            if not _valid(bar):
                self.stats.on_invalid()
                logger.warning("invalid minute bar skipped: %s %s o=%r h=%r l=%r c=%r v=%r",
                               bar.symbol, bar.start.isoformat(), bar.open, bar.high, bar.low,
                               bar.close, bar.volume)
                continue
            last = last_minute.get(bar.symbol)
            if last is not None and bar.start <= last:
                self.stats.on_duplicate()
                continue
            last_minute[bar.symbol] = bar.start
            accepted.append(bar)
        return accepted

    def _events(self, closed: list[LiveBar], analysis: ChunkAnalysis
                ) -> tuple[list[DetectionEvent], list[AlertEvent], FinalBars]:
        """A chunk's events from its analysis: detections, alerts, final bars."""
        if self.keep_analyses:
            for bar, kept in zip(closed, analysis.bars(), strict=True):
                self.kept[(bar.symbol, bar.timeframe, bar.start)] = kept
        detections = detection_events(closed, analysis.found)
        alerts = self.alerts.check_chunk(closed, analysis)
        return detections, alerts, FinalBars(closed, analysis.names, analysis.values)

    def _forming(self, accepted: list[LiveBar]) -> list[BarEvent]:
        events: list[BarEvent] = []
        for minute in accepted:
            for tf in self.rollup.timeframes:
                bar = self.rollup.forming(minute.symbol, tf)
                if bar is not None:
                    events.append(BarEvent(bar, False, {}))
        return events

    def peek(self, symbol: str, timeframe: Timeframe) -> tuple[LiveBar, BarAnalysis] | None:
        """The forming bar of ``symbol`` "so far" with its analysis; commits nothing."""
        bar = self.rollup.forming(symbol, timeframe)
        if bar is None:
            return None
        return bar, self.engine.peek(bar)

    def _publish(self, events: Sequence[LiveEvent]) -> dict[str, int]:
        if not events:
            return {}
        try:
            self.sink.publish(events)
        except Exception as exc:  # events are best effort; the bars are stored
            self.stats.on_error("publish")
            logger.error("publishing %d live events failed: %s", len(events), exc)
            return {}
        counts: dict[str, int] = {}
        for e in events:  # a bar each, also where bars travel as columns
            n = len(e) if isinstance(e, FinalBars) else 1
            counts[e.message_type] = counts.get(e.message_type, 0) + n
        self.stats.on_events(counts)
        return counts

    def _write_detections(self, detections: list[DetectionEvent]) -> None:
        assert self.detections is not None
        try:
            self.detections.write(detections)
        except Exception as exc:
            self.stats.on_error("detections")
            logger.error("storing %d live detections failed: %s", len(detections), exc)


def _add_counts(total: dict[str, int], counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n


def _valid(bar: LiveBar) -> bool:
    # every minute of a burst passes here: spelt out, not a generator
    return (isfinite(bar.open) and isfinite(bar.high) and isfinite(bar.low)
            and isfinite(bar.close) and isfinite(bar.volume) and bar.volume >= 0)

