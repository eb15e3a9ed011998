"""Composition root of the stream role: build its clients, run the session loop, stop cleanly.

Options (until they become settings — see the stream issue's report):

    symbols        explicit universe; else the members of ``universes``; else every active
                   symbol in the ``symbols`` table
    universes      named universes whose members are streamed
    outside_hours  run now, whatever the calendar says (replays, demos)
    ws_url / rest_url / api_key   override the Massive endpoints and key (a local replay)
    forming_events publish the forming 5min/15min/hour bars after each minute
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.contracts.state import HeartbeatState
from tickstock.core.clock import LiveClock
from tickstock.core.errors import ConfigurationError
from tickstock.market.calendar import nyse
from tickstock.market.providers.massive import MassiveConfig, MassiveProvider
from tickstock.ops import infra
from tickstock.ops.settings import Settings
from tickstock.pipeline.stream.analysis_engine import AnalysisLiveEngine
from tickstock.pipeline.stream.engine import LiveEngine
from tickstock.pipeline.stream.metrics import Health
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.publisher import BusEventSink
from tickstock.pipeline.stream.service import StreamConfig, StreamService
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.pipeline.stream.storage import BarStore
from tickstock.store.db import create_pool
from tickstock.store.runs import RunRepository

log = logging.getLogger(__name__)

#: The key a local replay accepts when none is configured (``tickstock replay``'s default).
REPLAY_KEY = "replay-key"
#: The stream's health as a heartbeat state (``tickstock status``, the services page).
HEARTBEAT_STATES: dict[Health, HeartbeatState] = {
    "starting": "starting", "ok": "running", "behind": "degraded", "disconnected": "degraded",
    "repairing": "busy", "closed": "idle", "stopped": "stopping",
}


def run(settings: Settings, instance: str, **options: Any) -> None:
    """Stream live bars during market hours until SIGTERM/SIGINT."""
    endpoints = infra.resolve(settings, start=False)
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=4, name="stream")
    client = connect(endpoints.redis.url, name=instance)
    clock = LiveClock()
    calendar = nyse()
    heartbeat = HeartbeatThread(client, role="stream", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s)
    history: MassiveProvider | None = None
    processor: LiveProcessor | None = None
    try:
        symbols = resolve_symbols(RunRepository(pool), options.get("symbols"),
                                  options.get("universes") or ())
        ws_url = options.get("ws_url") or settings.massive_ws_url
        rest_url = options.get("rest_url") or settings.massive_base_url
        api_key = provider_key(settings, options.get("api_key"), ws_url)
        store = BarStore(pool)
        sessions = SessionLookup(calendar)
        processor = LiveProcessor(
            writer=store, engine=live_engine(sessions), sessions=sessions,
            sink=BusEventSink(client, source=instance, clock=clock),
            forming_events=bool(options.get("forming_events", True)),
        )
        history = MassiveProvider(calendar, MassiveConfig(api_key, rest_url))
        config = StreamConfig(symbols=symbols, ws_url=ws_url, api_key=api_key,
                              outside_hours=bool(options.get("outside_hours", False)))

        def on_health(health: Health) -> None:
            heartbeat.state = HEARTBEAT_STATES[health]

        service = StreamService(config, processor=processor, store=store, history=history,
                                calendar=calendar, clock=clock, instance=instance,
                                on_health=on_health)
        heartbeat.start()
        log.info("stream role starting", extra={"symbols": len(symbols), "feed": ws_url,
                                                "outside_hours": config.outside_hours})
        asyncio.run(_until_signalled(service))
    finally:
        heartbeat.stop()
        if processor is not None:
            processor.close()
        if history is not None:
            history.close()
        client.close()
        pool.close()


async def _until_signalled(service: StreamService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)


def live_engine(sessions: SessionLookup) -> LiveEngine:
    """The incremental engine the live bars are analysed with: the analysis package's, on the
    live set of indicators and patterns."""
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
