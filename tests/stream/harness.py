"""A stream service wired to real PostgreSQL, Redis and a replay server, for the tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from tickstock.bus.connection import connect
from tickstock.bus.events import EventReader
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import EventBatch
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.market.providers.massive import MassiveConfig, MassiveProvider
from tickstock.market.replay import ReplayServer
from tickstock.ops.roles.stream import live_engine
from tickstock.pipeline.stream.daily_context import DailyTrends
from tickstock.pipeline.stream.engine import LiveEngine
from tickstock.pipeline.stream.feed import Backoff
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.publisher import BusEventSink
from tickstock.pipeline.stream.service import StreamConfig, StreamService
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.pipeline.stream.storage import BarStore, DetectionStore
from tickstock.store.db import create_pool


@dataclass
class Subscriber:
    """Follows the event stream in a thread, as the web role does."""

    client: redis.Redis
    events: list[Envelope] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Subscriber:
        reader = EventReader(self.client, clock=LiveClock())

        def follow() -> None:
            for _, envelope in reader.follow(self.stop, after="0-0", block_ms=200):
                self.events.append(envelope)

        self._thread = threading.Thread(target=follow, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self._thread.join(5)

    def of(self, message_type: str) -> list[Any]:
        """Payloads of ``message_type``, the events of batches included."""
        return [d for d in self._singles() if d.message_type == message_type]

    def count(self) -> int:
        """Events received, a batch's events each counted (as the stream's stats count them)."""
        return len(self._singles())

    def _singles(self) -> list[Any]:
        return [d for e in self.events
                for d in (e.data.split() if isinstance(e.data, EventBatch) else [e.data])]


@contextmanager
def infrastructure(db_dsn: str, redis_url: str) -> Iterator[tuple[ConnectionPool, redis.Redis]]:
    pool = create_pool(db_dsn, max_size=4)
    client = connect(redis_url)
    try:
        yield pool, client
    finally:
        client.close()
        pool.close()


def build_service(pool: ConnectionPool, client: redis.Redis, server: ReplayServer,
                  symbols: tuple[str, ...], *, engine: LiveEngine | None = None,
                  instance: str = "stream-test", **config: Any) -> StreamService:
    clock = LiveClock()
    store = BarStore(pool)
    sessions = SessionLookup(nyse())
    processor = LiveProcessor(
        writer=store, engine=engine or live_engine(sessions), sessions=sessions,
        sink=BusEventSink(client, source=instance, clock=clock), keep_analyses=True,
        detections=DetectionStore(pool), daily=DailyTrends(store, sessions, symbols),
    )
    config = StreamConfig(symbols=symbols, ws_url=server.ws_url, api_key=server.api_key,
                          outside_hours=True, backoff=Backoff(initial_s=0.05, max_s=0.5),
                          **config)
    history = MassiveProvider(nyse(), MassiveConfig(server.api_key, server.rest_url, retries=0))
    return StreamService(config, processor=processor, store=store, history=history,
                         calendar=nyse(), clock=clock, instance=instance)


class Running:
    """A service running as a task of the current loop; ``stop`` ends it cleanly."""

    def __init__(self, service: StreamService) -> None:
        self.service = service
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(service.run(self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 30)


async def until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"not reached in {timeout_s}s: {what}")
        await asyncio.sleep(0.02)
