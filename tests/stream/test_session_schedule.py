"""The calendar drives the role: pre-open warm-up, early close honoured, stop after the close.

A frozen clock plays the day (the day after Thanksgiving 2019, which closes at 13:00); the
replay plays the market. The last minutes are lost with the connection and never come back
live: the end-of-session sweep repairs them from REST before the last bars are closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, datetime, time, timedelta

import psycopg
import pytest

from tickstock.core.clock import FrozenClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import nyse
from tickstock.market.replay import ReplayServer, SyntheticMinutes, synthetic_symbols

from .harness import Running, build_service, infrastructure, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAY = date(2019, 11, 29)
SYMBOLS = synthetic_symbols(2)


def _ny(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute, second), tzinfo=NEW_YORK)


def test_early_close_session_is_followed_by_the_clock(db_dsn: str, redis_url: str) -> None:
    session = nyse().session(DAY)
    assert session.close == _ny(13, 0)  # early close
    frames = list(SyntheticMinutes(SYMBOLS, seed=9).session(session.open, session.close))
    live, lost = frames[:-10], frames[-10:]
    clock = FrozenClock(_ny(8, 0))

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> dict[str, object]:
            async with ReplayServer("k4") as server:
                service = build_service(pool, client, server, SYMBOLS)
                service.clock = clock
                service.config = replace(service.config, outside_hours=False, clock_poll_s=0.02,
                                         warmup_lead=timedelta(minutes=10),
                                         close_grace=timedelta(minutes=2))
                running = Running(service)
                await asyncio.sleep(0.5)
                assert server.connections_accepted == 0  # 08:00: too early
                assert service.stats.health() == "closed"
                clock.set(_ny(9, 21))  # inside the pre-open warm-up window
                await server.wait_subscribed()
                for frame in live:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: service.stats.received == len(live) * len(SYMBOLS))
                await server.drop_connections()
                for frame in lost:  # never seen live
                    await server.publish(frame)
                await server.wait_subscribed()
                clock.set(_ny(13, 1))  # closed, but within the grace: still connected
                await asyncio.sleep(0.3)
                assert server.connected_clients == 1
                clock.set(_ny(13, 2, 1))
                await until(lambda: server.connected_clients == 0, what="disconnect after close")
                await until(lambda: service.stats.health() == "closed", what="waiting again")
                stats = service.stats.snapshot()
                await running.stop()
                return stats

        stats = asyncio.run(main())

    assert stats["repaired"] == len(lost) * len(SYMBOLS)
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT timeframe, count(*), max(ts) FROM bars WHERE symbol = %s "
                            "GROUP BY timeframe", (SYMBOLS[0],)).fetchall()
    found = {tf: (n, last.astimezone(NEW_YORK).time()) for tf, n, last in rows}
    assert found["1min"] == (210, time(12, 59))  # 09:30 .. 12:59, none missing
    assert found["hour"] == (4, time(12, 30))  # the last one 12:30-13:00, closed at the close
    assert found["15min"] == (14, time(12, 45))
    assert found["5min"] == (42, time(12, 55))
