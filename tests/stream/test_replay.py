"""The replay server against the real official ``massive`` clients (WebSocket and REST)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from massive import RESTClient, WebSocketClient
from massive.exceptions import AuthError

from tickstock.core.timeutil import to_epoch_ms
from tickstock.market.calendar import nyse
from tickstock.market.replay import (
    MinuteFrame,
    ReplayServer,
    SyntheticMinutes,
    frames_from_bars,
    read_minute_csv,
    synthetic_symbols,
)

SYMBOL = "SP500"
KEY = "test-key"


def _csv(shared_data: Path) -> list[MinuteFrame]:
    return frames_from_bars(read_minute_csv(shared_data / "intraday" / "SP500_NOV2019_IDay.csv",
                                            SYMBOL))


def _client(server: ReplayServer, topics: list[str], key: str = KEY) -> WebSocketClient:
    return WebSocketClient(api_key=key, feed=f"127.0.0.1:{server.port}", market="stocks",
                           secure=False, subscriptions=topics, max_reconnects=0)


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


def _run(body: Callable[[ReplayServer], Awaitable[None]]) -> None:
    async def main() -> None:
        async with ReplayServer(KEY) as server:
            await body(server)

    asyncio.run(main())


def test_csv_is_read_in_new_york_time(shared_data: Path) -> None:
    frames = _csv(shared_data)
    # 4 sessions: 391 + 391 + 391 + 390 rows (three days carry a 16:00 print)
    assert len(frames) == 1563
    first = frames[0]
    assert first.start == datetime(2019, 11, 5, 14, 30, tzinfo=UTC)  # 09:30 EST
    assert (first.open[0], first.close[0], first.high[0], first.low[0]) == (
        3080.8, 3080.49, 3081.47, 3080.3)


def test_real_client_receives_minute_aggregates(shared_data: Path) -> None:
    frames = _csv(shared_data)[:30]
    received: list[Any] = []

    async def body(server: ReplayServer) -> None:
        client = _client(server, [f"AM.{SYMBOL}"])

        async def handle(msgs: list[Any]) -> None:
            received.extend(msgs)

        task = asyncio.create_task(client.connect(handle))
        await server.wait_subscribed()
        for frame in frames:
            await server.publish(frame)
        await _until(lambda: len(received) == len(frames))
        await client.close()
        await task

    _run(body)
    for agg, frame in zip(received, frames, strict=True):
        assert agg.event_type == "AM"
        assert agg.symbol == SYMBOL
        assert agg.start_timestamp == to_epoch_ms(frame.start)
        assert agg.end_timestamp == agg.start_timestamp + 60_000
        assert (agg.open, agg.high, agg.low, agg.close) == (
            frame.open[0], frame.high[0], frame.low[0], frame.close[0])
        assert agg.volume == 0 and agg.vwap is None  # an index: no volume, no VWAP
        assert agg.official_open_price == frames[0].open[0]


def test_wildcard_many_symbols_and_day_totals() -> None:
    symbols = synthetic_symbols(50)
    session = nyse().session(datetime(2024, 3, 1).date())
    frames = list(SyntheticMinutes(symbols, seed=7).session(session.open, session.close))[:5]
    received: list[Any] = []

    async def body(server: ReplayServer) -> None:
        client = _client(server, ["AM.*"])

        async def handle(msgs: list[Any]) -> None:
            received.extend(msgs)

        task = asyncio.create_task(client.connect(handle))
        await server.wait_subscribed()
        for frame in frames:
            await server.publish(frame)
        await _until(lambda: len(received) == 5 * 50)
        await client.close()
        await task

    _run(body)
    last = {a.symbol: a for a in received if a.start_timestamp == to_epoch_ms(frames[-1].start)}
    assert set(last) == set(symbols)
    i = 17
    agg = last[symbols[i]]
    volumes = [f.volume[i] for f in frames]
    assert agg.accumulated_volume == sum(int(v) for v in volumes)
    day_vwap = sum(f.vwap[i] * f.volume[i] for f in frames) / sum(volumes)
    assert agg.aggregate_vwap == pytest.approx(day_vwap, rel=1e-6)
    assert agg.official_open_price == frames[0].open[i]


def test_second_aggregates_add_up_to_the_minute(shared_data: Path) -> None:
    frame = _csv(shared_data)[3]
    received: list[Any] = []

    async def body(server: ReplayServer) -> None:
        client = _client(server, [f"A.{SYMBOL}", f"AM.{SYMBOL}"])

        async def handle(msgs: list[Any]) -> None:
            received.extend(msgs)

        task = asyncio.create_task(client.connect(handle))
        await server.wait_subscribed()
        await server.publish(frame)
        await _until(lambda: any(m.event_type == "AM" for m in received))
        await client.close()
        await task

    _run(body)
    seconds = [m for m in received if m.event_type == "A"]
    assert received[-1].event_type == "AM"  # the seconds come first
    assert seconds[0].open == frame.open[0] and seconds[-1].close == frame.close[0]
    assert max(s.high for s in seconds) == frame.high[0]
    assert min(s.low for s in seconds) == frame.low[0]
    assert all(s.end_timestamp - s.start_timestamp == 1000 for s in seconds)


def test_wrong_key_is_refused() -> None:
    async def body(server: ReplayServer) -> None:
        client = _client(server, [f"AM.{SYMBOL}"], key="wrong")

        async def handle(msgs: list[Any]) -> None:
            raise AssertionError("no data without authentication")

        with pytest.raises(AuthError):
            await asyncio.wait_for(client.connect(handle), 10)
        assert server.connected_clients == 0

    _run(body)


def test_one_connection_per_key(shared_data: Path) -> None:
    frames = _csv(shared_data)[:3]
    first: list[Any] = []
    second: list[Any] = []

    async def body(server: ReplayServer) -> None:
        one = _client(server, [f"AM.{SYMBOL}"])
        two = _client(server, [f"AM.{SYMBOL}"])

        async def keep(into: list[Any]) -> Callable[[list[Any]], Awaitable[None]]:
            async def handle(msgs: list[Any]) -> None:
                into.extend(msgs)
            return handle

        task_one = asyncio.create_task(one.connect(await keep(first)))
        await server.wait_subscribed()
        task_two = asyncio.create_task(two.connect(await keep(second)))
        # the second is told max_connections and closed; the client gives up (max_reconnects=0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task_two, 10)
        assert server.connections_accepted == 2
        assert server.connected_clients == 1
        for frame in frames:
            await server.publish(frame)
        await _until(lambda: len(first) == 3)
        await one.close()
        await task_one

    _run(body)
    assert second == []


def test_dropped_connection_is_seen_as_an_error_by_the_client(shared_data: Path) -> None:
    frames = _csv(shared_data)[:2]

    async def body(server: ReplayServer) -> None:
        client = _client(server, [f"AM.{SYMBOL}"])
        received: list[Any] = []

        async def handle(msgs: list[Any]) -> None:
            received.extend(msgs)

        task = asyncio.create_task(client.connect(handle))
        await server.wait_subscribed()
        await server.publish(frames[0])
        await _until(lambda: len(received) == 1)
        assert await server.drop_connections() == 1
        with pytest.raises(Exception, match="no close frame"):
            await asyncio.wait_for(task, 10)
        assert server.connected_clients == 0

    _run(body)


def test_rest_aggregates_through_the_real_rest_client(shared_data: Path) -> None:
    frames = _csv(shared_data)[:400]  # the first session and the start of the next

    async def body(server: ReplayServer) -> None:
        for frame in frames:
            await server.publish(frame)
        rest = RESTClient(api_key=KEY, base=server.rest_url, retries=0)
        start, end = frames[10].start, frames[395].start
        loop = asyncio.get_running_loop()
        aggs = await loop.run_in_executor(None, lambda: list(rest.list_aggs(
            SYMBOL, 1, "minute", start, end, limit=100)))  # 4 pages
        assert [a.timestamp for a in aggs] == [to_epoch_ms(f.start) for f in frames[10:396]]
        assert [a.close for a in aggs] == [f.close[0] for f in frames[10:396]]
        by_day = await loop.run_in_executor(None, lambda: list(rest.list_aggs(
            SYMBOL, 1, "minute", "2019-11-05", "2019-11-05", limit=50000)))
        assert len(by_day) == 391
        bad = RESTClient(api_key="nope", base=server.rest_url, retries=0)
        with pytest.raises(Exception, match="Unknown API Key"):
            await loop.run_in_executor(None, lambda: list(bad.list_aggs(
                SYMBOL, 1, "minute", start, end)))

    _run(body)


def test_synthetic_market_is_deterministic_and_consistent() -> None:
    session = nyse().session(datetime(2024, 3, 1).date())
    a = list(SyntheticMinutes(synthetic_symbols(200), seed=3).session(session.open, session.close))
    b = list(SyntheticMinutes(synthetic_symbols(200), seed=3).session(session.open, session.close))
    assert len(a) == 390
    assert all(np.array_equal(x.close, y.close) and np.array_equal(x.volume, y.volume)
               for x, y in zip(a, b, strict=True))
    for frame in a:
        assert np.all(frame.low <= np.minimum(frame.open, frame.close))
        assert np.all(frame.high >= np.maximum(frame.open, frame.close))
        assert np.all(frame.volume >= 0) and np.all(frame.low > 0)
    # each minute opens at the previous close
    assert all(np.array_equal(a[k].open, a[k - 1].close) for k in range(1, 390))
