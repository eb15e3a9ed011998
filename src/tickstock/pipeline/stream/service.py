"""The stream role's algorithm, session by session:

1. Wait for the session: from the calendar, ``warmup_lead`` before the open (or at once with
   ``outside_hours``, for replays and demos).
2. Warm up: rebuild the forming derived bars, the engine and the alert state from stored bars
   (``warmup``), so a restart mid-session continues where the last process stopped. Only the
   reads happen before connecting; the engine warms on the processing thread while the first
   live minutes queue behind it.
3. Hold the one provider connection (``feed``): every minute bar goes through the gap tracker
   (``repair``) — held behind a REST repair when minutes were missed — onto the queue.
4. Process the queue in batches on one thread (``processor``): store, roll up, analyse, publish.
   The queue is never bounded and never trimmed: when processing falls behind, the bars wait
   and the health turns ``behind`` (``metrics``).
5. After the close (+ ``close_grace``): repair what is still missing up to the close, close the
   last derived bars, disconnect, and wait for the next session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import ServiceError
from tickstock.core.clock import Clock
from tickstock.core.errors import (
    DataValidationError,
    NotFoundError,
    ProviderAuthError,
    ProviderError,
    ProviderTemporaryError,
    TickStockError,
)
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import MarketCalendar, Session
from tickstock.market.providers.base import Provider
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.collector import release_live_state
from tickstock.pipeline.stream.engine import BarAnalysis, EngineLost
from tickstock.pipeline.stream.feed import Backoff, ProviderFeed
from tickstock.pipeline.stream.metrics import Health
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.repair import Gap, GapTracker, fetch_minutes
from tickstock.pipeline.stream.seconds import MinuteBuilder
from tickstock.pipeline.stream.storage import BarStore
from tickstock.pipeline.stream.warmup import apply_history, read_history

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig:
    """How the stream role runs (defaults are what ``tickstock stream`` uses)."""

    symbols: tuple[str, ...]
    ws_url: str
    api_key: str
    outside_hours: bool = False
    warmup_lead: timedelta = timedelta(minutes=10)
    close_grace: timedelta = timedelta(minutes=2)
    #: "minute": the provider's per-minute aggregates are the bars; "second": subscribe the
    #: per-second ones instead and build the minutes here (``seconds``).
    bars_from: Literal["minute", "second"] = "minute"
    repair_attempts: int = 5
    repair_concurrency: int = 8
    #: How often a wait on the clock looks at it again (a test's frozen clock moves by jumps).
    clock_poll_s: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)


class StreamService:
    """Runs the stream role until ``stop`` is set (see the module docstring for the steps)."""

    def __init__(
        self,
        config: StreamConfig,
        *,
        processor: LiveProcessor,
        store: BarStore,
        history: Provider,
        calendar: MarketCalendar,
        clock: Clock,
        instance: str = "stream",
        on_health: Callable[[Health], None] | None = None,
    ) -> None:
        self.config = config
        self.processor = processor
        self.store = store
        self.stats = processor.stats
        self.history = history
        self.calendar = calendar
        self.clock = clock
        self.instance = instance
        self.on_health = on_health
        self.tracker = GapTracker(processor.sessions)
        self.feed: ProviderFeed | None = None
        self._queue: asyncio.Queue[tuple[float, list[LiveBar]]] = asyncio.Queue()
        self._queued = 0
        self._market_time: datetime | None = None
        self._inflight_at: float | None = None  # receipt time of the batch being processed
        self._repairs: set[asyncio.Task[None]] = set()
        self._repair_slots = asyncio.Semaphore(config.repair_concurrency)
        self._work = ThreadPoolExecutor(1, thread_name_prefix="stream-process")
        self._io = ThreadPoolExecutor(config.repair_concurrency, thread_name_prefix="stream-rest")
        self._idle = asyncio.Event()
        self._idle.set()
        self._fatal: BaseException | None = None
        self._builder = MinuteBuilder() if config.bars_from == "second" else None
        self._warming: asyncio.Future[None] | None = None

    # -- the role ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Steps 1-5, session after session, until ``stop``."""
        loop = asyncio.get_running_loop()
        history = await loop.run_in_executor(self._work, read_history, self.store,
                                             self.processor, self.tracker, self.config.symbols)
        # the engine warms on the processing thread while the feed connects: live minutes
        # queue behind it rather than being missed (and repaired) during a long warm-up
        self._warming = loop.run_in_executor(
            self._work, apply_history, self.processor, history)
        try:
            while not stop.is_set():
                session = None if self.config.outside_hours else await self._wait_session(stop)
                if stop.is_set():
                    break
                await self._trade(session, stop)
                if self._fatal is not None:
                    break
        finally:
            self.stats.stopped = True
            self._report_health()
            self._work.shutdown(wait=True)
            release_live_state()  # the warm-up froze the live state (``warmup``, step 5)
            self._io.shutdown(wait=False, cancel_futures=True)
        if self._fatal is not None:
            raise self._fatal

    async def _wait_session(self, stop: asyncio.Event) -> Session:
        now = self.clock.now()
        session = self.calendar.session_at(now)
        if session is None:
            upcoming = self.calendar.next_open(now)
            session = self.calendar.session(upcoming.astimezone(NEW_YORK).date())
        start_at = session.open - self.config.warmup_lead
        self.stats.session_open = False
        self._report_health()
        logger.info("waiting for the session", extra={"session": str(session.day),
                                                      "start_at": start_at.isoformat()})
        await _sleep_until(self.clock, start_at, stop, self.config.clock_poll_s)
        return session

    async def _trade(self, session: Session | None, stop: asyncio.Event) -> None:
        self.stats.session_open = True
        feed = ProviderFeed(
            self.config.ws_url, self.config.api_key, self.config.symbols, self._on_minutes,
            on_connect=self._on_connect, on_state=self._on_state,
            on_seconds=self._on_seconds if self._builder is not None else None,
            second_aggregates=self._builder is not None,
            minute_aggregates=self._builder is None, backoff=self.config.backoff,
        )
        self.feed = feed
        tasks = [asyncio.create_task(feed.run(), name="stream-feed"),
                 asyncio.create_task(self._consume(), name="stream-consume"),
                 asyncio.create_task(self._monitor(), name="stream-monitor")]
        end = None if session is None else session.close + self.config.close_grace
        ender = asyncio.create_task(
            _sleep_until(self.clock, end, stop, self.config.clock_poll_s) if end else stop.wait())
        done, _ = await asyncio.wait([ender, *tasks[:2]], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not ender and task.exception() is not None:
                self._fatal = task.exception()
        await feed.stop()
        if self._fatal is None:  # nothing more is processed after a fatal error
            if session is not None:
                await self._finish_session(session)
            await self.drain()
        for task in [*tasks, ender]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.stats.session_open = False
        self.stats.on_connection(False)

    async def _finish_session(self, session: Session) -> None:
        for gap in self.tracker.sweep(session.close):
            self._start_repair(gap)
        await self.drain()
        await self._in_thread(self._flush_close, session.close)

    def _flush_close(self, close: datetime) -> None:
        self.processor.process([], flush_before=close)

    # -- feed -> tracker -> queue ------------------------------------------------------------

    def _on_connect(self) -> None:
        self.tracker.reconnected(self.config.symbols)

    def _on_state(self, up: bool) -> None:
        self.stats.on_connection(up)
        self._report_health()

    def _on_minutes(self, bars: list[LiveBar]) -> None:
        self.stats.on_received(len(bars))
        ready, gaps = self.tracker.admit(bars)
        self._enqueue(ready)
        for gap in gaps:
            self.stats.on_gap()
            self._start_repair(gap)

    def _on_seconds(self, seconds: list[LiveBar]) -> None:
        assert self._builder is not None
        closed = self._builder.add(seconds)
        if closed:
            self._on_minutes(closed)

    def _enqueue(self, bars: list[LiveBar]) -> None:
        if bars:
            self._idle.clear()
            self._queued += len(bars)
            self._queue.put_nowait((time.monotonic(), bars))

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        if self._warming is not None:
            await self._warming  # a failed warm-up stops the role (it would analyse wrongly)
        while True:
            received_at, first = await self._queue.get()
            batch = list(first)
            while not self._queue.empty():
                batch.extend(self._queue.get_nowait()[1])
            newest = max(b.start for b in batch)
            if self._market_time is None or newest > self._market_time:
                self._market_time = newest
            hold = self.tracker.holding
            started = time.monotonic()
            self._inflight_at = received_at
            try:
                await loop.run_in_executor(self._work, partial(
                    self.processor.process, batch, flush_before=self._market_time, hold=hold))
            except EngineLost as exc:  # the role restarts and warms up again
                self._service_error("processor", str(exc), "critical")
                raise
            except TickStockError as exc:
                self._service_error("processor", str(exc))
            finally:
                self._queued -= len(batch)
                self._inflight_at = None
            now = time.monotonic()
            self.stats.observe_batch(now - started, now - received_at)
            self._update_backlog(received_at)
            if self._queue.empty() and not self._repairs:
                self._idle.set()

    # -- repairs -----------------------------------------------------------------------------

    def _start_repair(self, gap: Gap) -> None:
        self._idle.clear()
        task = asyncio.create_task(self._repair(gap), name=f"repair-{gap.symbol}")
        self._repairs.add(task)
        self.stats.repairing = len(self._repairs)
        task.add_done_callback(self._repair_done)

    def _repair_done(self, task: asyncio.Task[None]) -> None:
        self._repairs.discard(task)
        self.stats.repairing = len(self._repairs)
        if self._queue.empty() and not self._repairs and self._queued == 0:
            self._idle.set()

    async def _repair(self, gap: Gap) -> None:
        bars: list[LiveBar] = []
        async with self._repair_slots:
            try:
                bars = await self._fetch_with_retries(gap)
            except (ProviderError, NotFoundError, DataValidationError, OSError) as exc:
                # the hole stays, loudly: an operator (or the nightly import) fills it
                severity: Literal["error", "critical"] = (
                    "critical" if isinstance(exc, ProviderAuthError) else "error")
                self._service_error("repair", f"{gap.symbol} {gap.start.isoformat()}.."
                                    f"{gap.end.isoformat()} not repaired: {exc}", severity)
        repaired = [b for b in bars if gap.start <= b.start < gap.end]
        self.stats.on_repaired(len(repaired))
        logger.info("gap repaired", extra={"symbol": gap.symbol, "start": gap.start.isoformat(),
                                           "minutes": gap.minutes, "fetched": len(repaired)})
        self._enqueue(self.tracker.repaired(gap, bars))

    async def _fetch_with_retries(self, gap: Gap) -> list[LiveBar]:
        for attempt in range(1, self.config.repair_attempts + 1):
            try:
                return await self._in_thread(fetch_minutes, self.history, gap, pool=self._io)
            except (ProviderTemporaryError, OSError) as exc:
                if attempt == self.config.repair_attempts:
                    raise
                delay = getattr(exc, "retry_after", None) or self.config.backoff.delay(attempt)
                logger.warning("repair of %s failed, retrying: %s", gap.symbol, exc)
                await asyncio.sleep(delay)
        return []

    # -- health ------------------------------------------------------------------------------

    async def _monitor(self) -> None:
        while True:
            self._update_backlog(None)
            self._report_health()
            await asyncio.sleep(0.5)

    def _update_backlog(self, received_at: float | None) -> None:
        # the batch being processed counts too: a stalled write must show, not only a queue
        oldest = self._inflight_at
        if not self._queue.empty():
            queued: float = self._queue._queue[0][0]  # type: ignore[attr-defined]
            oldest = queued if oldest is None else min(oldest, queued)
        lag = time.monotonic() - oldest if oldest is not None else 0.0
        self.stats.set_backlog(queue_depth=self._queued, held=self.tracker.held,
                               unstored=self.processor.unstored, lag_s=lag)

    def _report_health(self) -> None:
        if self.on_health is not None:
            self.on_health(self.stats.health())

    def _service_error(self, component: str, message: str,
                       severity: Literal["warning", "error", "critical"] = "error") -> None:
        self.stats.on_error(component)
        logger.error("%s: %s", component, message)
        event = ServiceError(role="stream", instance=self.instance, component=component,
                             severity=severity, error=message)
        with contextlib.suppress(Exception):
            self.processor.sink.publish([event])

    # -- helpers -----------------------------------------------------------------------------

    async def warmed(self) -> None:
        """Until the warm-up from stored bars is done (``run`` must be running)."""
        while self._warming is None:
            await asyncio.sleep(0.05)
        await self._warming

    async def peek(self, symbol: str, timeframe: Timeframe) -> tuple[LiveBar, BarAnalysis] | None:
        """The forming ``timeframe`` bar of ``symbol`` "so far" with its analysis, read on the
        processing thread (the processor's state is single-threaded); commits nothing. A
        forming minute exists only when the minutes are built from seconds."""
        loop = asyncio.get_running_loop()
        if timeframe is Timeframe.MIN1:
            minute = self._builder.forming(symbol) if self._builder is not None else None
            if minute is None:
                return None
            analysis = await loop.run_in_executor(self._work, self.processor.engine.peek, minute)
            return minute, analysis
        return await loop.run_in_executor(self._work, self.processor.peek, symbol, timeframe)

    async def drain(self, timeout_s: float = 600.0) -> None:
        """Until every received minute (and every repair) has been processed."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def _in_thread(self, fn: Callable[..., object], *args: object,
                         pool: ThreadPoolExecutor | None = None) -> list[LiveBar]:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool or self._work, fn, *args)
        return result  # type: ignore[return-value]


async def _sleep_until(clock: Clock, when: datetime | None, stop: asyncio.Event,
                       poll_s: float) -> None:
    """Sleep until ``when`` by ``clock`` (re-checked every ``poll_s``, so a frozen clock moved
    by a test is noticed), or until ``stop``."""
    while when is not None and not stop.is_set():
        left = (when - clock.now()).total_seconds()
        if left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(left, poll_s))
