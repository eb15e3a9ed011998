"""Falling behind is visible and loses nothing; the forming bar can be peeked without a commit.

Back-pressure is real here: another connection holds an exclusive lock on the ``bars`` table, so
the stream's writes stall as a slow database would stall them, while the provider keeps sending.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date

import numpy as np
import psycopg
import pytest

from tickstock.analysis import Bars, batch
from tickstock.analysis.bars import datetime_to_ns
from tickstock.contracts.common import Timeframe
from tickstock.market.calendar import nyse
from tickstock.market.replay import MinuteFrame, ReplayServer, SyntheticMinutes, synthetic_symbols
from tickstock.pipeline.stream.analysis_engine import live_specs
from tickstock.pipeline.stream.metrics import BARS_BEHIND, Health

from .harness import Running, build_service, infrastructure, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOLS = synthetic_symbols(20)


def _frames(count: int) -> list[MinuteFrame]:
    session = nyse().session(date(2024, 3, 4))
    market = SyntheticMinutes(SYMBOLS, seed=11).session(session.open, session.close)
    return [next(market) for _ in range(count)]


def _stored(db_dsn: str, timeframe: str) -> list[tuple[str, object]]:
    with psycopg.connect(db_dsn) as conn:
        return conn.execute("SELECT symbol, ts FROM bars WHERE timeframe = %s ORDER BY symbol, ts",
                            (timeframe,)).fetchall()


def test_a_stalled_database_turns_the_health_behind_and_loses_no_bar(
        db_dsn: str, redis_url: str) -> None:
    frames = _frames(30)
    seen: list[Health] = []
    behind_gauge: list[float] = []

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> dict[str, object]:
            async with ReplayServer("kb") as server:
                service = build_service(pool, client, server, SYMBOLS)
                service.stats.behind_after_s = 0.3
                service.on_health = seen.append
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames[:5]:
                    await server.publish(frame)
                await until(lambda: service.stats.processed == 5 * len(SYMBOLS), what="first")
                await until(lambda: seen[-1] == "ok", what="healthy while keeping up")
                with psycopg.connect(db_dsn) as locker:
                    locker.execute("LOCK TABLE bars IN ACCESS EXCLUSIVE MODE")
                    for frame in frames[5:]:
                        await server.publish(frame)
                    await server.drain()
                    await until(lambda: service.stats.received == len(frames) * len(SYMBOLS))
                    await until(lambda: seen[-1] == "behind", what="health turns behind")
                    behind_gauge.append(BARS_BEHIND._value.get())
                    backlog = service.stats.bars_behind
                    locker.rollback()  # the database is back
                await service.drain()
                await until(lambda: seen[-1] == "ok", what="healthy again once caught up")
                await running.stop()
                return service.stats.snapshot() | {"backlog": backlog}

        stats = asyncio.run(main())

    assert stats["backlog"] and int(stats["backlog"]) > 0  # type: ignore[call-overload]
    assert behind_gauge[0] > 0
    assert stats["duplicates"] == 0 and stats["processed"] == len(frames) * len(SYMBOLS)
    minutes = _stored(db_dsn, "1min")
    assert len(minutes) == len(set(minutes)) == len(frames) * len(SYMBOLS)
    assert len(_stored(db_dsn, "5min")) == 6 * len(SYMBOLS)


def test_the_forming_bar_is_peeked_without_committing_it(db_dsn: str, redis_url: str) -> None:
    frames = _frames(103)  # 20 whole 5-minute bars, then 3 minutes of the 21st
    symbol, col = SYMBOLS[2], 2

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> tuple[object, object, object]:
            async with ReplayServer("kp") as server:
                service = build_service(pool, client, server, SYMBOLS)
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames:
                    await server.publish(frame)
                await until(lambda: service.stats.processed == len(frames) * len(SYMBOLS))
                await service.drain()
                first = await service.peek(symbol, Timeframe.MIN5)
                again = await service.peek(symbol, Timeframe.MIN5)
                hourly = await service.peek(symbol, Timeframe.HOUR)
                await running.stop()
                return first, again, hourly

        first, again, hourly = asyncio.run(main())

    assert first is not None and again is not None and hourly is not None
    bar, analysis = first  # type: ignore[misc]
    forming = frames[100:]
    assert bar.start == forming[0].start and bar.timeframe is Timeframe.MIN5
    assert (bar.open, bar.close) == (forming[0].open[col], forming[-1].close[col])
    assert bar.high == max(f.high[col] for f in forming)
    assert bar.volume == sum(f.volume[col] for f in forming)
    assert again[1] == analysis  # type: ignore[index]  # peeking twice: nothing was committed
    # nothing stored for the forming bucket
    stored = [ts for s, ts in _stored(db_dsn, "5min") if s == symbol]
    assert len(stored) == 20 and bar.start not in stored
    # the peeked values are the batch values of the stored 5-minute bars plus the forming one
    closes = [frames[k * 5:k * 5 + 5] for k in range(20)]
    session = nyse().session(date(2024, 3, 4))
    ts = np.array([datetime_to_ns(c[0].start) for c in closes] + [datetime_to_ns(bar.start)])
    bars = Bars(symbol, "5min", ts,
                np.array([c[0].open[col] for c in closes] + [bar.open]),
                np.array([max(f.high[col] for f in c) for c in closes] + [bar.high]),
                np.array([min(f.low[col] for f in c) for c in closes] + [bar.low]),
                np.array([c[-1].close[col] for c in closes] + [bar.close]),
                np.array([sum(f.volume[col] for f in c) for c in closes] + [bar.volume]),
                session=np.full(21, datetime_to_ns(session.open)))
    expected = batch.compute(bars, live_specs()).latest()
    assert analysis.values == expected  # type: ignore[attr-defined]
    assert "sma_20" in expected and "rsi_14" in expected
    hour = hourly[0]  # type: ignore[index]
    assert (hour.start, hour.open, hour.close) == (frames[60].start, frames[60].open[col],
                                                   frames[-1].close[col])


def test_a_malformed_minute_is_counted_and_skipped_and_the_rest_processed(
        db_dsn: str, redis_url: str) -> None:
    frames = _frames(3)
    volume, close = frames[1].volume.copy(), frames[1].close.copy()  # the next open is a view
    volume[0] = -5.0  # a negative volume ...
    close[1] = np.nan  # ... and a missing price (the provider's JSON says NaN)
    bad = frames[1] = dataclasses.replace(frames[1], volume=volume, close=close)

    with infrastructure(db_dsn, redis_url) as (pool, client):

        async def main() -> dict[str, object]:
            async with ReplayServer("kx") as server:
                service = build_service(pool, client, server, SYMBOLS)
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames:
                    await server.publish(frame)
                await until(lambda: service.stats.received == len(frames) * len(SYMBOLS))
                await service.drain()
                await running.stop()
                return service.stats.snapshot()

        stats = asyncio.run(main())

    assert stats["invalid"] == 2 and stats["processed"] == len(frames) * len(SYMBOLS) - 2
    minutes = _stored(db_dsn, "1min")
    assert len(minutes) == len(frames) * len(SYMBOLS) - 2
    skipped = {(SYMBOLS[0], bad.start), (SYMBOLS[1], bad.start)}
    assert not skipped & {(s, ts) for s, ts in minutes}
