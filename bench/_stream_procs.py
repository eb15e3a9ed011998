"""The two outside processes of ``bench/stream.py``: the provider (a replay server) and a client.

Each runs in its own process, as they would in production (the provider is remote, the web
role is another process), so their CPU does not count as the stream role's and the wall-clock
times they report (``time.time()``, one clock on one machine) bracket the latency.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

SEED = 7
SESSION_DAY = date(2024, 3, 1)


def frames(count: int, minutes: int | None, sessions_before: int = 0) -> list[Any]:
    """The first ``minutes`` synthetic frames of ``count`` symbols (same in every process) of
    ``SESSION_DAY``, or of the session ``sessions_before`` sessions earlier; every frame of
    the session when ``minutes`` is None."""
    from tickstock.market.calendar import nyse
    from tickstock.market.replay import SyntheticMinutes, synthetic_symbols

    calendar = nyse()
    session = calendar.session(SESSION_DAY)
    for _ in range(sessions_before):
        session = calendar.previous_session(session.open.date())
    market = SyntheticMinutes(synthetic_symbols(count), seed=SEED + sessions_before).session(
        session.open, session.close)
    return list(market) if minutes is None else [next(market) for _ in range(minutes)]


def provider(conn: Connection, count: int, minutes: int, skip: int) -> None:
    """Serve the replay of minutes ``skip..minutes``; on each ``"next"`` from ``conn`` publish
    the next one and answer ``(minute start, wall time its last message was handed to the
    socket)``."""
    asyncio.run(_provider(conn, frames(count, minutes)[skip:]))


async def _provider(conn: Connection, played: list[Any]) -> None:
    from tickstock.market.replay import ReplayServer

    loop = asyncio.get_running_loop()
    async with ReplayServer("bench-key", events_per_message=1000) as server:
        conn.send((server.ws_url, server.rest_url))
        for frame in played:
            command = await loop.run_in_executor(None, conn.recv)
            if command != "next":
                break
            await server.wait_subscribed(timeout_s=900)  # warm-up of 5,000 symbols
            await server.publish(frame)
            await server.drain(timeout_s=120)
            conn.send((frame.start, server.sent_at[frame.start]))
        await loop.run_in_executor(None, conn.recv)  # "stop"


def subscriber(conn: Connection, redis_url: str, stop: Any) -> None:
    """Follow the event stream as the web role's live push does (``tickstock.bus``); send
    ``(newest entry id, wall time)`` after every read, until ``stop`` (an Event) is set; then
    ``("done", events received)``, each event of a batch counted."""
    from tickstock.bus.connection import connect
    from tickstock.bus.events import EventReader
    from tickstock.contracts.events import EventBatch
    from tickstock.core.clock import LiveClock

    client = connect(redis_url, name="bench-subscriber")
    reader = EventReader(client, clock=LiveClock(), dead_letter=False)
    cursor = reader.latest_id()
    received = 0
    conn.send(("ready", time.time()))
    while not stop.is_set():
        cursor, events = reader.read(cursor, block_ms=200, count=5000)
        if events:
            conn.send((cursor, time.time()))
            received += sum(len(e.data.symbols) if isinstance(e.data, EventBatch) else 1
                            for _, e in events)
    conn.send(("done", received))
    client.close()
