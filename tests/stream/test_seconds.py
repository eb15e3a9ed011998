"""Minute bars built from the provider's per-second aggregates, through the real client.

Oracle: the replay's minute frames — its per-second events add up to each minute exactly
(``market.replay.protocol.second_events``).
"""

from __future__ import annotations

import asyncio
from datetime import date

import psycopg
import pytest

from tickstock.contracts.common import Timeframe
from tickstock.market.calendar import nyse
from tickstock.market.replay import ReplayServer, SyntheticMinutes, synthetic_symbols

from .harness import Running, build_service, infrastructure, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOLS = synthetic_symbols(6)


def test_minutes_built_from_second_aggregates(db_dsn: str, redis_url: str) -> None:
    session = nyse().session(date(2024, 3, 5))
    market = SyntheticMinutes(SYMBOLS, seed=3).session(session.open, session.close)
    frames = [next(market) for _ in range(10)]

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> tuple[object, object]:
            async with ReplayServer("ks") as server:
                service = build_service(pool, client, server, SYMBOLS, bars_from="second")
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames:
                    await server.publish(frame)
                await server.drain()
                # the last minute stays forming: nothing after it has arrived yet
                await until(lambda: service.stats.processed == 9 * len(SYMBOLS))
                await service.drain()
                forming = await service.peek(SYMBOLS[1], Timeframe.MIN1)
                await running.stop()
                return forming, service.stats.snapshot()

        forming, stats = asyncio.run(main())

    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT symbol, ts, open, high, low, close, volume FROM bars "
                            "WHERE timeframe = '1min' ORDER BY ts, symbol").fetchall()
    expected = [(s, f.start, f.open[i], f.high[i], f.low[i], f.close[i], f.volume[i])
                for f in frames[:9] for i, s in enumerate(f.symbols)]
    assert rows == expected
    assert stats["duplicates"] == 0  # type: ignore[index]
    assert forming is not None
    bar, analysis = forming  # type: ignore[misc]
    last = frames[-1]
    assert (bar.start, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        last.start, last.open[1], last.high[1], last.low[1], last.close[1], last.volume[1])
    assert "vwap.mid" in analysis.values
