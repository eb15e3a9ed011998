"""Losing the provider connection, and restarting the role, mid-session: no hole, no duplicate.

The replay keeps playing while the client is away (like the market); the minutes it missed are
fetched through the real REST client from the same replay server, which answers the aggregates
endpoint for every minute it has played.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from datetime import date

import numpy as np
import psycopg
import pytest
import talib

from tickstock.contracts.common import Timeframe
from tickstock.market.calendar import nyse
from tickstock.market.replay import MinuteFrame, ReplayServer, SyntheticMinutes, synthetic_symbols

from .harness import Running, Subscriber, build_service, infrastructure, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOLS = synthetic_symbols(12)


def _frames(count: int) -> list[MinuteFrame]:
    session = nyse().session(date(2024, 3, 1))
    market = SyntheticMinutes(SYMBOLS, seed=5).session(session.open, session.close)
    return [next(market) for _ in range(count)]


def _stored_minutes(db_dsn: str) -> dict[str, list[tuple[object, float]]]:
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT symbol, ts, close FROM bars WHERE timeframe = '1min' "
                            "ORDER BY symbol, ts").fetchall()
    out: dict[str, list[tuple[object, float]]] = {}
    for symbol, ts, close in rows:
        out.setdefault(symbol, []).append((ts, close))
    return out


def _assert_complete(db_dsn: str, frames: list[MinuteFrame]) -> None:
    stored = _stored_minutes(db_dsn)
    assert sorted(stored) == sorted(SYMBOLS)
    for i, symbol in enumerate(frames[0].symbols):
        assert [ts for ts, _ in stored[symbol]] == [f.start for f in frames], symbol
        assert [c for _, c in stored[symbol]] == [float(f.close[i]) for f in frames], symbol


def test_killed_connection_reconnects_and_repairs_the_gap(db_dsn: str, redis_url: str) -> None:
    frames = _frames(40)
    before, missed, after = frames[:15], frames[15:23], frames[23:]

    with infrastructure(db_dsn, redis_url) as (pool, client):
        subscriber = Subscriber(client).start()

        async def main() -> dict[str, int]:
            async with ReplayServer("k2") as server:
                service = build_service(pool, client, server, SYMBOLS)
                running = Running(service)
                await server.wait_subscribed()
                for frame in before:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: service.stats.received == len(before) * len(SYMBOLS))
                assert await server.drop_connections() == 1
                for frame in missed:  # played while the client is away
                    await server.publish(frame)
                await server.wait_subscribed()  # the client is back and subscribed again
                for frame in after:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: service.stats.received == (len(before) + len(after))
                            * len(SYMBOLS), what="live minutes")
                await until(lambda: service.stats.processed == len(frames) * len(SYMBOLS),
                            what="repaired minutes processed")
                await service.drain()
                await running.stop()
                return service.stats.snapshot() | {"connections": server.connections_accepted}

        stats = asyncio.run(main())
        published = stats["events"]
        asyncio.run(until(lambda: subscriber.count() == published, 10, "every event"))
        subscriber.close()

    assert stats["connections"] == 2 and stats["reconnects"] == 2
    assert stats["gaps"] == len(SYMBOLS)
    assert stats["repaired"] == len(missed) * len(SYMBOLS)
    assert stats["duplicates"] == 0
    _assert_complete(db_dsn, frames)
    # the repaired minutes were processed like live ones: one final bar event each
    finals = Counter((b.symbol, b.timeframe, b.ts) for b in subscriber.of("bar.live") if b.final)
    assert set(finals.values()) == {1}
    assert sum(1 for s, tf, _ in finals if tf is Timeframe.MIN1) == len(frames) * len(SYMBOLS)
    assert sum(1 for s, tf, _ in finals if tf is Timeframe.MIN5) == 8 * len(SYMBOLS)


def test_restart_mid_session_warms_up_from_stored_bars(db_dsn: str, redis_url: str) -> None:
    frames = _frames(70)
    first, offline, second = frames[:30], frames[30:36], frames[36:]

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> dict[tuple[str, Timeframe, object], dict[str, float]]:
            async with ReplayServer("k3") as server:
                one = build_service(pool, client, server, SYMBOLS, instance="stream-one")
                running = Running(one)
                await server.wait_subscribed()
                for frame in first:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: one.stats.received == len(first) * len(SYMBOLS))
                await one.drain()
                await running.stop()
                for frame in offline:  # the market goes on while no stream role runs
                    await server.publish(frame)
                two = build_service(pool, client, server, SYMBOLS, instance="stream-two")
                running = Running(two)
                await server.wait_subscribed()
                for frame in second:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: two.stats.processed == (len(offline) + len(second))
                            * len(SYMBOLS), what="second process caught up")
                await two.drain()
                assert gc.get_freeze_count() > 0  # the warmed state is out of the GC's walks
                await running.stop()
                assert gc.get_freeze_count() == 0
                assert two.stats.gaps == len(SYMBOLS)
                assert two.stats.duplicates == 0
                return {k: a.values for k, a in two.processor.kept.items()}

        kept = asyncio.run(main())

    _assert_complete(db_dsn, frames)
    # the 5-minute bar forming at the restart (09:55-10:00) came out whole
    with psycopg.connect(db_dsn) as conn:
        five = conn.execute("SELECT count(*) FROM bars WHERE timeframe = '5min'").fetchone()
    assert five == (14 * len(SYMBOLS),)
    # after the restart the values continue the batch series over all stored minutes
    symbol = SYMBOLS[3]
    closes = np.array([float(f.close[3]) for f in frames])
    sma = talib.SMA(closes, 20)
    rsi = talib.RSI(closes, 14)
    for k in range(30, 70):
        live = kept[(symbol, Timeframe.MIN1, frames[k].start)]
        assert live["sma_20"] == sma[k]
        assert live["rsi_14"] == pytest.approx(rsi[k], rel=1e-9)
