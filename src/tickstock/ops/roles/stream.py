"""Composition root of the stream role: build its clients, run the session loop, stop cleanly.

The heartbeat starts first, so the role is visible within seconds even before it knows its
universe; an empty universe (a fresh install) is re-checked every ``SYMBOLS_POLL_S``. With the
synthetic provider and no feed configured, the role plays the demo market
(``market.replay.demo``) in-process and streams from it, whatever the hour.

Options (until they become settings — see the stream issue's report):

    symbols        explicit universe; else the members of ``universes``; else every active
                   symbol in the ``symbols`` table
    universes      named universes whose members are streamed
    outside_hours  run now, whatever the calendar says (replays, demos)
    ws_url / rest_url / api_key   override the Massive endpoints and key (a local replay)
    forming_events publish the forming 5min/15min/hour bars after each minute (default: for
                   up to ``FORMING_EVENTS_MAX_SYMBOLS`` symbols)
    bars_from      "minute" (the provider's minute aggregates) or "second" (build the minutes
                   from per-second aggregates)
    demo           force the demo market on or off (default: ``demo_feed``)
    demo_speed     replay minutes per wall minute of the demo market
    symbols_poll_s how often an empty universe is looked at again
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.contracts.common import Timeframe
from tickstock.contracts.state import HeartbeatState
from tickstock.core.clock import LiveClock
from tickstock.core.errors import ConfigurationError
from tickstock.market.calendar import nyse
from tickstock.ops import infra
from tickstock.ops.settings import Settings
from tickstock.store.db import create_pool
from tickstock.store.runs import RunRepository

if TYPE_CHECKING:
    import redis
    from psycopg_pool import ConnectionPool

    from tickstock.market.providers.massive import MassiveProvider
    from tickstock.market.replay.demo import DemoMarket
    from tickstock.pipeline.stream.engine import LiveEngine
    from tickstock.pipeline.stream.metrics import Health
    from tickstock.pipeline.stream.processor import LiveProcessor
    from tickstock.pipeline.stream.service import StreamService
    from tickstock.pipeline.stream.sessions import SessionLookup

# The provider client, pandas, TA-Lib and the web stack's metrics take seconds to import on a
# busy machine: they are imported after the heartbeat is up, so the role is seen at once.

log = logging.getLogger(__name__)

#: How often an empty universe is looked at again (a fresh install loads symbols later).
SYMBOLS_POLL_S = 5.0
#: Complete sessions the demo market covers (at 20x, about 20 minutes of wall time each).
DEMO_SESSIONS = 5
#: A demo minute every 3 s must be processed in well under 3 s on a small machine.
DEMO_MAX_SYMBOLS = 500
#: Above this many symbols the forming derived bars are not pushed (three more events per symbol
#: and minute); ``service.peek`` still serves them on demand.
FORMING_EVENTS_MAX_SYMBOLS = 500
#: Above this many symbols the live analysis is spread over processes (``analysis_processes``).
PARALLEL_MIN_SYMBOLS = 1000
PARALLEL_MAX_PROCESSES = 4
#: The key a local replay accepts when none is configured (``tickstock replay``'s default).
REPLAY_KEY = "replay-key"
#: The stream's health as a heartbeat state (``tickstock status``, the services page).
HEARTBEAT_STATES: dict[Health, HeartbeatState] = {
    "starting": "starting", "ok": "running", "behind": "degraded", "disconnected": "degraded",
    "repairing": "busy", "closed": "idle", "stopped": "stopping",
}


def run(settings: Settings, instance: str, **options: Any) -> None:
    """Stream live bars during market hours (or the demo market) until SIGTERM/SIGINT."""
    endpoints = infra.resolve(settings, start=False)
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=4, name="stream")
    client = connect(endpoints.redis.url, name=instance)
    clock = LiveClock()
    heartbeat = HeartbeatThread(client, role="stream", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s)
    heartbeat.start()  # visible at once, before the universe is known
    role = _Role(settings, instance, options, pool=pool, client=client, clock=clock,
                 heartbeat=heartbeat)
    exporter = None
    try:
        from tickstock.ops import metrics

        exporter = metrics.start_role_metrics(
            settings, "stream", instance, database_url=endpoints.postgres.url,
            redis_url=endpoints.redis.url, pool=pool, redis=client)
        asyncio.run(role.main())
    finally:
        heartbeat.stop()
        role.close()
        if exporter is not None:
            exporter.close()
        client.close()
        pool.close()


class _Role:
    """What ``run`` builds, in the order the role needs it (the symbols may come later)."""

    def __init__(self, settings: Settings, instance: str, options: dict[str, Any], *,
                 pool: ConnectionPool, client: redis.Redis, clock: LiveClock,
                 heartbeat: HeartbeatThread) -> None:
        self.settings, self.instance, self.options = settings, instance, options
        self.pool, self.client, self.clock, self.heartbeat = pool, client, clock, heartbeat
        self.calendar = nyse()
        self.processor: LiveProcessor | None = None
        self.history: MassiveProvider | None = None

    async def main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        symbols = await self._wait_for_symbols(stop)
        if symbols is None:
            return
        demo = None
        if demo_feed(self.settings, self.options):
            if len(symbols) > DEMO_MAX_SYMBOLS:
                log.info("the demo market plays the first %d of %d symbols",
                         DEMO_MAX_SYMBOLS, len(symbols))
                symbols = symbols[:DEMO_MAX_SYMBOLS]
            demo = await asyncio.to_thread(self._demo_market, symbols)
            await demo.start()
        try:
            service = self._service(symbols, demo)
            log.info("stream role starting", extra={
                "symbols": len(symbols), "feed": service.config.ws_url,
                "demo": demo is not None, "outside_hours": service.config.outside_hours})
            await service.run(stop)
        finally:
            if demo is not None:
                await demo.stop()

    async def _wait_for_symbols(self, stop: asyncio.Event) -> tuple[str, ...] | None:
        """The universe; when it is empty (a fresh install before its first load), re-check
        every ``symbols_poll_s`` instead of failing, so ``tickstock up`` stays healthy."""
        runs = RunRepository(self.pool)
        explicit = self.options.get("symbols")
        universes = self.options.get("universes") or ()
        while not stop.is_set():
            try:
                return await asyncio.to_thread(resolve_symbols, runs, explicit, universes)
            except ConfigurationError as exc:
                if explicit or universes:
                    raise
                self.heartbeat.state = "idle"
                log.warning("%s; checking again in %gs", exc, SYMBOLS_POLL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), float(
                    self.options.get("symbols_poll_s", SYMBOLS_POLL_S)))
        return None

    def _demo_market(self, symbols: Sequence[str]) -> DemoMarket:
        from tickstock.market.replay.demo import DEMO_SPEED, DemoMarket
        from tickstock.pipeline.stream.storage import BarStore

        store = BarStore(self.pool)
        last = self.calendar.last_complete_session(self.clock.now())
        first = self.calendar.previous_session(last.day)
        for _ in range(DEMO_SESSIONS - 2):
            first = self.calendar.previous_session(first.day)
        daily = store.last_bars(symbols, Timeframe.DAY, 1)
        return DemoMarket(
            symbols, self.calendar.sessions(first.day, last.day),
            after=store.last_minute(symbols),
            speed=float(self.options.get("demo_speed", DEMO_SPEED)),
            seed=self.settings.synthetic_seed,
            closes={s: bars[-1].close for s, bars in daily.items() if bars})

    def _service(self, symbols: tuple[str, ...], demo: DemoMarket | None) -> StreamService:
        from tickstock.market.providers.massive import MassiveConfig, MassiveProvider
        from tickstock.pipeline.stream.daily_context import DailyTrends
        from tickstock.pipeline.stream.processor import LiveProcessor
        from tickstock.pipeline.stream.publisher import BusEventSink
        from tickstock.pipeline.stream.service import StreamConfig, StreamService
        from tickstock.pipeline.stream.sessions import SessionLookup
        from tickstock.pipeline.stream.storage import BarStore, DetectionStore

        store = BarStore(self.pool)
        if demo is not None:
            ws_url, rest_url, api_key = demo.ws_url, demo.rest_url, demo.api_key
        else:
            ws_url = self.options.get("ws_url") or self.settings.massive_ws_url
            rest_url = self.options.get("rest_url") or self.settings.massive_base_url
            api_key = provider_key(self.settings, self.options.get("api_key"), ws_url)
        sessions = SessionLookup(self.calendar)
        self.processor = LiveProcessor(
            writer=store, sessions=sessions,
            engine=live_engine(sessions, analysis_processes(
                int(self.options.get("analysis_processes",
                                     self.settings.stream_analysis_processes)), len(symbols))),
            sink=BusEventSink(self.client, source=self.instance, clock=self.clock),
            detections=DetectionStore(self.pool), daily=DailyTrends(store, sessions, symbols),
            forming_events=bool(self.options.get(
                "forming_events", len(symbols) <= FORMING_EVENTS_MAX_SYMBOLS)),
        )
        self.history = MassiveProvider(self.calendar, MassiveConfig(api_key, rest_url))
        bars_from = self.options.get("bars_from", "minute")
        if bars_from not in ("minute", "second"):
            raise ConfigurationError(f"bars_from must be 'minute' or 'second', got {bars_from!r}")
        config = StreamConfig(
            symbols=symbols, ws_url=ws_url, api_key=api_key, bars_from=bars_from,
            outside_hours=demo is not None or bool(self.options.get("outside_hours", False)))
        heartbeat = self.heartbeat

        def on_health(health: Health) -> None:
            heartbeat.state = HEARTBEAT_STATES[health]

        return StreamService(config, processor=self.processor, store=store,
                             history=self.history, calendar=self.calendar, clock=self.clock,
                             instance=self.instance, on_health=on_health)

    def close(self) -> None:
        if self.processor is not None:
            self.processor.close()
        if self.history is not None:
            self.history.close()


def demo_feed(settings: Settings, options: dict[str, Any]) -> bool:
    """True when the role should play the demo market: the provider is not Massive (the
    synthetic market, or local files: neither has a live feed) and no feed was configured (no
    ``TICKSTOCK_MASSIVE_WS_URL``, no ``ws_url`` option)."""
    if "demo" in options:
        return bool(options["demo"])
    return (settings.effective_provider != "massive" and not options.get("ws_url")
            and "massive_ws_url" not in settings.model_fields_set)


def analysis_processes(configured: int, symbols: int) -> int:
    """How many processes analyse the live bars: ``configured``, or when 0, one per core (up
    to ``PARALLEL_MAX_PROCESSES``) for more than ``PARALLEL_MIN_SYMBOLS`` symbols, else 1."""
    if configured:
        return configured
    if symbols <= PARALLEL_MIN_SYMBOLS:
        return 1
    return max(1, min(os.cpu_count() or 1, PARALLEL_MAX_PROCESSES))


def live_engine(sessions: SessionLookup, processes: int = 1) -> LiveEngine:
    """The incremental engine the live bars are analysed with: the analysis package's, on the
    live set of indicators and patterns; in ``processes`` child processes when more than 1."""
    if processes > 1:
        from tickstock.pipeline.stream.parallel_engine import ParallelLiveEngine

        return ParallelLiveEngine(processes)
    from tickstock.pipeline.stream.analysis_engine import AnalysisLiveEngine

    return AnalysisLiveEngine(sessions)


def resolve_symbols(runs: RunRepository, symbols: Sequence[str] | None,
                    universes: Sequence[str]) -> tuple[str, ...]:
    if symbols:
        chosen = [s.strip().upper() for s in symbols if s.strip()]
    else:
        chosen, unknown = runs.resolve_symbols(list(universes))
        if unknown:
            raise ConfigurationError(f"unknown stream universe(s): {', '.join(unknown)}")
    if not chosen:
        raise ConfigurationError(
            "the stream universe is empty: load symbols first (`tickstock load`) or name "
            "the symbols/universes to stream")
    return tuple(dict.fromkeys(chosen))


def provider_key(settings: Settings, override: str | None, ws_url: str) -> str:
    """The key for the feed: the override, ``MASSIVE_API_KEY``, or the replay's default key
    when the feed is a local replay."""
    if override:
        return override
    if settings.massive_api_key is not None:
        return settings.massive_api_key.get_secret_value()
    host = urlsplit(ws_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return REPLAY_KEY
    raise ConfigurationError(f"MASSIVE_API_KEY is not set: the stream needs it for {ws_url}")
