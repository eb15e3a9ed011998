"""Live push over the real WebSocket and event stream: per-client filters, catch-up of what a
reconnecting browser missed, and bounded queues so a slow browser cannot hurt others."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets

from tickstock.bus.events import EventPublisher
from tickstock.contracts import Envelope
from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import (
    BarLiveBatch,
    Direction,
    IndicatorAlertBatch,
    PatternDetected,
    PatternDetectedBatch,
)
from tickstock.web.config import WebDeps
from tickstock.web.live import Client, LiveHub, to_live_messages
from tickstock.web.live_filters import Matcher, Subscribe
from tickstock.web.metrics import create_metrics

from .conftest import USER, Server, login

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def detection(symbol: str, i: int, confidence: float = 0.8,
              direction: str = "bullish") -> PatternDetected:
    return PatternDetected(symbol=symbol, timeframe="day", ts=T0 + timedelta(days=i),
                           pattern="cdl_engulfing", direction=direction,  # type: ignore[arg-type]
                           confidence=confidence)


class Browser:
    """One WebSocket client with the signed-in user's cookie."""

    def __init__(self, server: Server, cookie: str) -> None:
        self.url = server.url.replace("http://", "ws://") + "/ws"
        self.cookie = cookie
        self.ws: Any = None
        self.hello: dict[str, Any] = {}
        self.backlog: list[dict[str, Any]] = []

    async def open(self, sub: dict[str, Any]) -> None:
        self.ws = await websockets.connect(self.url, additional_headers={"Cookie": self.cookie})
        self.hello = json.loads(await self.ws.recv())
        await self.ws.send(json.dumps({"op": "subscribe", **sub}))
        self.backlog = []
        while True:  # events caught up come before the acknowledgement
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if msg["kind"] == "subscribed":
                return
            self.backlog.append(msg)

    async def events(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        out = [m for m in self.backlog if m["kind"] == "event"][:count]
        self.backlog = []
        while len(out) < count:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if msg["kind"] == "event":
                out.append(msg)
        return out

    async def nothing_more(self, wait: float = 1.0) -> bool:
        try:
            await asyncio.wait_for(self.ws.recv(), wait)
        except TimeoutError:
            return True
        return False


def _cookie(server: Server) -> str:
    with httpx.Client(base_url=server.url) as client:
        login(client, USER)
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_each_browser_gets_only_what_its_filters_match(server: Server,
                                                       web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")

    async def scenario() -> None:
        aapl, confident, bearish = (Browser(server, cookie) for _ in range(3))
        await aapl.open({"topics": ["pattern"], "filters": {"symbols": ["AAPL"]}})
        await confident.open({"topics": ["pattern"], "filters": {"min_confidence": 0.9}})
        await bearish.open({"topics": ["pattern"], "filters": {"direction": "bearish"}})
        for ev in (detection("AAPL", 1), detection("MSFT", 2, 0.95),
                   detection("MSFT", 3, 0.5, "bearish"), detection("AAPL", 4, 0.99)):
            bus.publish(ev)
        got_aapl = await aapl.events(2)
        got_conf = await confident.events(2)
        got_bear = await bearish.events(1)
        assert [(e["data"]["symbol"], e["data"]["ts"][:10]) for e in got_aapl] == [
            ("AAPL", "2024-03-02"), ("AAPL", "2024-03-05")]
        assert [e["data"]["confidence"] for e in got_conf] == [0.95, 0.99]
        assert [e["data"]["symbol"] for e in got_bear] == ["MSFT"]
        for b in (aapl, confident, bearish):
            assert await b.nothing_more(0.5)
            await b.ws.close()

    asyncio.run(scenario())


def test_reconnecting_browser_catches_up_in_order_without_repeats(
        server: Server, web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")

    async def scenario() -> None:
        first = Browser(server, cookie)
        await first.open({"topics": ["pattern"]})
        bus.publish(detection("AAPL", 1))
        seen = await first.events(1)
        await first.ws.close()
        for i in range(2, 6):  # published while the browser is away
            bus.publish(detection("AAPL", i))
        again = Browser(server, cookie)
        await again.open({"topics": ["pattern"], "last_id": seen[0]["id"]})
        missed = await again.events(4)
        assert [e["data"]["ts"][:10] for e in missed] == [
            "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06"]
        bus.publish(detection("AAPL", 9))
        live = await again.events(1)
        assert live[0]["data"]["ts"][:10] == "2024-03-10"
        assert await again.nothing_more(0.5)
        await again.ws.close()

    asyncio.run(scenario())


def test_a_gap_too_large_to_replay_asks_the_page_to_resync(server: Server,
                                                           web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")
    limit = web_deps.config.ws_catchup_limit

    async def scenario() -> None:
        first = Browser(server, cookie)
        await first.open({"topics": ["pattern"]})
        bus.publish(detection("AAPL", 0))
        last = (await first.events(1))[0]["id"]
        await first.ws.close()
        pipe_events = [detection("AAPL", 1 + i % 300) for i in range(limit + 5)]
        for ev in pipe_events:
            bus.publish(ev)
        again = Browser(server, cookie)
        await again.open({"topics": ["pattern"], "last_id": last})
        assert [(m["kind"], m.get("reason")) for m in again.backlog] == [("resync", "gap")]
        await again.ws.close()

    asyncio.run(scenario())


def test_slow_browser_is_bounded_and_does_not_hold_back_others(web_deps: WebDeps) -> None:
    metrics = create_metrics()
    hub = LiveHub(web_deps, metrics)
    sub_all = {"op": "subscribe", "topics": ["pattern"]}
    slow = Client(is_admin=False, queue_size=8, matcher=Matcher(Subscribe(**sub_all), None))
    fast = Client(is_admin=False, queue_size=8, matcher=Matcher(Subscribe(**sub_all), None))
    hub.register(slow)
    hub.register(fast)
    messages = []
    for i in range(50):
        env = Envelope.create(detection("AAPL", i), source="t")
        messages.extend(to_live_messages(f"{1000 + i}-0", env.encode()))
    received: list[str] = []
    for msg in messages:  # the fast browser's writer drains after every event; the slow never
        hub._dispatch([msg])
        while not fast.queue.empty():
            item = fast.queue.get_nowait()
            received.append(item.id if not isinstance(item, str) else item)
    assert received == [m.id for m in messages]
    assert slow.queue.qsize() <= slow.queue_size
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    resyncs = [json.loads(i) for i in items if isinstance(i, str)]
    assert resyncs and resyncs[0]["kind"] == "resync" and resyncs[0]["reason"] == "slow-consumer"
    # Every event either waits in the queue or was counted as dropped (and the metric says so).
    assert slow.dropped > 0 and slow.dropped + len(items) - len(resyncs) == 50
    assert metrics.push_dropped._value.get() == slow.dropped


def bar_batch(symbols: tuple[str, ...], minute: int) -> BarLiveBatch:
    n = len(symbols)
    return BarLiveBatch(timeframe=Timeframe.MIN1, ts=T0 + timedelta(minutes=minute), final=True,
                        symbols=symbols, open=(10.0,) * n, high=(11.0,) * n, low=(9.5,) * n,
                        close=tuple(10.0 + k / 4 for k in range(n)), volume=(100.0,) * n,
                        vwap=(10.25,) + (None,) * (n - 1), trades=(None,) * n,
                        indicators={"rsi_14": (55.5,) + (None,) * (n - 1)})


def test_a_bar_batch_reaches_browsers_as_the_per_symbol_bars_their_filters_match(
        server: Server, web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")

    async def scenario() -> None:
        one, every = Browser(server, cookie), Browser(server, cookie)
        await one.open({"topics": ["bar"], "filters": {"symbols": ["MSFT"]}})
        await every.open({"topics": ["bar"]})
        first = bar_batch(("AAPL", "MSFT", "BRK.B"), 0)
        bus.publish(first)
        got = await every.events(3)
        assert [(m["type"], m["data"]) for m in got] == [
            ("bar.live", b.model_dump(mode="json")) for b in first.bars()]
        assert got[0]["data"]["indicators"] == {"rsi_14": 55.5}
        assert got[1]["data"]["indicators"] == {} and got[1]["data"]["vwap"] is None
        assert len({m["id"] for m in got}) == 1  # one stream entry
        [msft] = await one.events(1)
        assert msft["data"]["symbol"] == "MSFT" and msft["id"] == got[0]["id"]
        assert await one.nothing_more(0.5)
        await every.ws.close()
        # a browser coming back after the entry it saw gets the next batch, not that one again
        bus.publish(bar_batch(("AAPL", "MSFT"), 1))
        again = Browser(server, cookie)
        await again.open({"topics": ["bar"], "last_id": got[-1]["id"]})
        missed = await again.events(2)
        assert [(m["data"]["symbol"], m["data"]["ts"]) for m in missed] == [
            ("AAPL", "2024-03-01T00:01:00Z"), ("MSFT", "2024-03-01T00:01:00Z")]
        assert await again.nothing_more(0.5)
        await again.ws.close()
        await one.ws.close()

    asyncio.run(scenario())


def test_a_detection_batch_reaches_browsers_as_the_detections_their_filters_match(
        server: Server, web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")
    batch = PatternDetectedBatch(
        timeframe=Timeframe.MIN5, ts=T0, source="live", symbols=("AAPL", "MSFT", "AAPL"),
        pattern=("cdl_hammer", "cdl_engulfing", "cdl_engulfing"),
        direction=(Direction.BULLISH, Direction.BEARISH, Direction.BEARISH),
        confidence=(0.95, 0.5, 0.99), strength=(1.0, None, 2.0), price=(10.0, 20.0, 10.0),
        levels=({"stop": 9.5}, {}, {}), daily_agrees=(True, None, False))

    async def scenario() -> None:
        bearish, confident = Browser(server, cookie), Browser(server, cookie)
        await bearish.open({"topics": ["pattern"], "filters": {"direction": "bearish"}})
        await confident.open({"topics": ["pattern"],
                              "filters": {"symbols": ["AAPL"], "min_confidence": 0.9}})
        bus.publish(batch)
        got_bearish, got_confident = await bearish.events(2), await confident.events(2)
        singles = [d.model_dump(mode="json") for d in batch.detections()]
        assert [(m["type"], m["data"]) for m in got_bearish] == [
            ("pattern.detected", singles[1]), ("pattern.detected", singles[2])]
        assert [m["data"] for m in got_confident] == [singles[0], singles[2]]
        for b in (bearish, confident):
            assert await b.nothing_more(0.5)
            await b.ws.close()

    asyncio.run(scenario())


def test_an_alert_batch_reaches_a_browser_as_the_alerts_of_its_symbols(
        server: Server, web_deps: WebDeps) -> None:
    cookie = _cookie(server)
    bus = EventPublisher(web_deps.redis, source="stream-test")
    batch = IndicatorAlertBatch(
        timeframe=Timeframe.MIN1, ts=T0, symbols=("AAPL", "MSFT", "AAPL"),
        indicator=("rsi_14", "rsi_14", "volume"), value=(71.0, 29.0, 5.0e6),
        condition=("cross_above", "cross_below", "surge"), threshold=(70.0, 30.0, 1.0e6),
        message=("up", "down", None))

    async def scenario() -> None:
        aapl = Browser(server, cookie)
        await aapl.open({"topics": ["indicator"], "filters": {"symbols": ["AAPL"]}})
        bus.publish(batch)
        got = await aapl.events(2)
        singles = [a.model_dump(mode="json") for a in batch.alerts()]
        assert [(m["type"], m["data"]) for m in got] == [
            ("indicator.alert", singles[0]), ("indicator.alert", singles[2])]
        assert await aapl.nothing_more(0.5)
        await aapl.ws.close()

    asyncio.run(scenario())
