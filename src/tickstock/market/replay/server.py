"""A local server that speaks the Massive protocols: the WebSocket feed and the REST aggregates.

The official ``massive`` clients connect to it unchanged: ``WebSocketClient(feed="127.0.0.1:PORT",
secure=False)`` and ``RESTClient(base="http://127.0.0.1:PORT")``. Like Massive it allows one
connection per key (a second one gets ``max_connections`` and is closed), closes a client that
does not authenticate in time (``auth_timeout``) or cannot keep up (``slow_consumer``), and
answers ``GET /v2/aggs/ticker/{T}/range/1/minute/{from}/{to}`` from the minutes it has already
played — so a client that lost its connection can repair the gap exactly as it would in
production. What to play and when is the caller's (see ``player``): ``publish(frame)`` sends one
minute to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickstock.core.timeutil import NEW_YORK, to_epoch_ms
from tickstock.market.replay import protocol as p
from tickstock.market.replay.frames import MinuteFrame

logger = logging.getLogger(__name__)

_AGGS_PREFIX = "/v2/aggs/ticker/"
_REST_MAX_LIMIT = 50_000
_REST_DEFAULT_LIMIT = 5_000


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    key: str = ""
    topics: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in p.CHANNELS})
    outbox: asyncio.Queue[tuple[str, int, datetime | None]] = field(default_factory=asyncio.Queue)
    pending_events: int = 0

    def wants(self, channel: str) -> bool:
        return bool(self.topics[channel])

    def indices(self, channel: str, frame: MinuteFrame, index: dict[str, int]) -> list[int]:
        wanted = self.topics[channel]
        if "*" in wanted:
            return list(range(len(frame)))
        return sorted(index[s] for s in wanted if s in index)


class ReplayServer:
    """The stand-in provider. Start it, ``publish`` frames, stop it.

    ``events_per_message`` bounds how many events one WebSocket message carries (Massive batches
    many per message); ``max_pending_events`` is how far a client may fall behind before it is
    disconnected as a slow consumer. ``sent_at`` records, per minute, the wall time
    (``time.time()``) at which its last message was handed to the last subscriber's socket —
    the start of the latency a benchmark measures.
    """

    def __init__(
        self,
        api_key: str = "replay-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        events_per_message: int = 1000,
        max_pending_events: int = 2_000_000,
        auth_timeout_s: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.events_per_message = events_per_message
        self.max_pending_events = max_pending_events
        self.auth_timeout_s = auth_timeout_s
        self.sent_at: dict[datetime, float] = {}
        self.connections_accepted = 0
        self._server: Server | None = None
        self._clients: dict[str, _Client] = {}  # authenticated, by key: one per key
        self._played: list[MinuteFrame] = []
        self._played_starts: list[int] = []
        self._symbol_index: dict[int, dict[str, int]] = {}  # id(symbols tuple) -> index
        self._day = p.DayTotals()
        self._subscribed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self.host, self.port,
            process_request=self._process_request, max_size=2**22, compression=None,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        logger.info("replay server listening", extra={"url": self.ws_url})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        """The feed URL in the shape of the ``massive_ws_url`` setting (no market path)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST base URL in the shape of the ``massive_base_url`` setting."""
        return f"http://{self.host}:{self.port}"

    @property
    def connected_clients(self) -> int:
        return len(self._clients)

    async def wait_subscribed(self, timeout_s: float = 10.0) -> None:
        """Until some authenticated client has at least one subscription."""
        await asyncio.wait_for(self._subscribed.wait(), timeout_s)

    async def drop_connections(self) -> int:
        """Cut every client's TCP connection without a closing handshake (a network failure)."""
        clients = list(self._clients.values())
        self._clients.clear()
        self._subscribed.clear()
        for client in clients:
            client.ws.transport.abort()
        return len(clients)

    # -- publishing ----------------------------------------------------------------------------

    async def publish(self, frame: MinuteFrame) -> None:
        """Play one minute: its ``A`` events (to ``A`` subscribers) then its ``AM`` events."""
        self._remember(frame)
        index = self._index(frame)
        self._day.start_day(frame.start.astimezone(NEW_YORK).date())
        for client in list(self._clients.values()):
            if client.wants(p.SECOND_AGG):
                for second in p.second_events(frame, client.indices(p.SECOND_AGG, frame, index)):
                    self._queue(client, second, None)
            if client.wants(p.MINUTE_AGG):
                events = p.aggregate_events(frame, client.indices(p.MINUTE_AGG, frame, index), self._day)
                self._queue(client, events, frame.start)
        await asyncio.sleep(0)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Until every client's outbox is empty (all published messages handed to sockets)."""
        deadline = time.monotonic() + timeout_s
        while any(c.pending_events for c in self._clients.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("replay clients did not drain in time")
            await asyncio.sleep(0.005)

    def _queue(self, client: _Client, events: list[dict[str, Any]], minute: datetime | None) -> None:
        if not events:
            if minute is not None:
                client.outbox.put_nowait(("", 0, minute))
            return
        if client.pending_events + len(events) > self.max_pending_events:
            logger.warning("replay client too slow, disconnecting", extra={"key": "***"})
            client.outbox.put_nowait((p.encode([p.status(p.SLOW_CONSUMER, "slow consumer")]), 0, None))
            client.outbox.put_nowait(("", -1, None))
            return
        step = self.events_per_message
        chunks = [events[i:i + step] for i in range(0, len(events), step)]
        for n, chunk in enumerate(chunks):
            client.pending_events += len(chunk)
            last = minute if n == len(chunks) - 1 else None
            client.outbox.put_nowait((p.encode(chunk), len(chunk), last))

    def _remember(self, frame: MinuteFrame) -> None:
        start_ms = to_epoch_ms(frame.start)
        if self._played_starts and start_ms <= self._played_starts[-1]:
            raise ValueError(f"frames must be published in time order ({frame.start} repeated)")
        self._played.append(frame)
        self._played_starts.append(start_ms)

    def _index(self, frame: MinuteFrame) -> dict[str, int]:
        key = id(frame.symbols)
        index = self._symbol_index.get(key)
        if index is None:
            index = {s: i for i, s in enumerate(frame.symbols)}
            if len(self._symbol_index) > 64:
                self._symbol_index.clear()
            self._symbol_index[key] = index
        return index

    # -- WebSocket connections -----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections_accepted += 1
        client = _Client(ws)
        sender: asyncio.Task[None] | None = None
        try:
            await ws.send(p.encode([p.status(p.CONNECTED, "Connected Successfully")]))
            if not await self._authenticate(client):
                return
            sender = asyncio.create_task(self._send_loop(client))
            async for raw in ws:
                await self._on_action(client, raw)
        except ConnectionClosed:
            pass
        finally:
            if self._clients.get(client.key) is client:
                del self._clients[client.key]
            if not any(any(c.topics.values()) for c in self._clients.values()):
                self._subscribed.clear()
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    async def _authenticate(self, client: _Client) -> bool:
        ws = client.ws
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.auth_timeout_s)
            except TimeoutError:
                await ws.send(p.encode([p.status(p.AUTH_TIMEOUT, "authentication timed out")]))
                await ws.close(1008, "auth timeout")
                return False
            try:
                action = p.parse_action(raw)
            except ValueError as exc:
                await ws.send(p.encode([p.status(p.ERROR, str(exc))]))
                continue
            if action.action != "auth":
                await ws.send(p.encode([p.status(p.AUTH_REQUIRED, "authentication required")]))
                continue
            if action.params != self.api_key:
                await ws.send(p.encode([p.status(p.AUTH_FAILED, "authentication failed")]))
                await ws.close(1008, "auth failed")
                return False
            if action.params in self._clients:
                await ws.send(p.encode([p.status(
                    p.MAX_CONNECTIONS, "Maximum number of websocket connections exceeded.")]))
                await ws.close(1008, "max connections")
                return False
            client.key = action.params
            self._clients[client.key] = client
            await ws.send(p.encode([p.status(p.AUTH_SUCCESS, "authenticated")]))
            return True

    async def _on_action(self, client: _Client, raw: str | bytes) -> None:
        try:
            action = p.parse_action(raw)
            topics = p.parse_topics(action.params)
        except ValueError as exc:
            await client.ws.send(p.encode([p.status(p.ERROR, str(exc))]))
            return
        if action.action not in ("subscribe", "unsubscribe"):
            await client.ws.send(p.encode([p.status(p.ERROR, f"unknown action {action.action!r}")]))
            return
        replies = []
        for channel, symbol in topics:
            topic = f"{channel}.{symbol}"
            if channel not in client.topics:
                replies.append(p.status(p.ERROR, f"unsupported channel: {topic}"))
                continue
            if action.action == "subscribe":
                client.topics[channel].add(symbol)
                replies.append(p.status(p.SUCCESS, f"subscribed to: {topic}"))
            else:
                client.topics[channel].discard(symbol)
                replies.append(p.status(p.SUCCESS, f"unsubscribed to: {topic}"))
        await client.ws.send(p.encode(replies))
        if any(client.topics.values()):
            self._subscribed.set()

    async def _send_loop(self, client: _Client) -> None:
        while True:
            message, count, minute = await client.outbox.get()
            if count < 0:
                await client.ws.close(1008, "slow consumer")
                return
            if message:
                await client.ws.send(message)
                client.pending_events -= count
            if minute is not None:
                self.sent_at[minute] = time.time()

    # -- REST aggregates -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if "upgrade" in request.headers.get("Connection", "").lower():
            if urlsplit(request.path).path.rstrip("/") != p.MARKET_PATH:
                return _json_response(http.HTTPStatus.NOT_FOUND, {"status": "ERROR",
                                      "error": f"this replay serves the {p.MARKET_PATH} feed"})
            return None
        status, body = self._rest(request)
        return _json_response(status, body)

    def _rest(self, request: Request) -> tuple[http.HTTPStatus, dict[str, Any]]:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if self.api_key not in (bearer, query.get("apiKey")):
            return http.HTTPStatus.UNAUTHORIZED, {"status": "ERROR", "request_id": "replay",
                                                  "error": "Unknown API Key"}
        if not url.path.startswith(_AGGS_PREFIX):
            return http.HTTPStatus.NOT_FOUND, {"status": "NOT_FOUND", "message": "unknown path"}
        parts = url.path[len(_AGGS_PREFIX):].split("/")
        if len(parts) != 6 or parts[1] != "range" or parts[2] != "1" or parts[3] != "minute":
            return http.HTTPStatus.BAD_REQUEST, {
                "status": "ERROR", "error": "the replay serves /range/1/minute/{from}/{to} only"}
        try:
            start_ms, end_ms = _bound(parts[4], start=True), _bound(parts[5], start=False)
            limit = min(int(query.get("limit", _REST_DEFAULT_LIMIT)), _REST_MAX_LIMIT)
        except ValueError as exc:
            return http.HTTPStatus.BAD_REQUEST, {"status": "ERROR", "error": str(exc)}
        return http.HTTPStatus.OK, self._aggs(parts[0], start_ms, end_ms, limit, query)

    def _aggs(self, ticker: str, start_ms: int, end_ms: int, limit: int,
              query: dict[str, str]) -> dict[str, Any]:
        lo = bisect_left(self._played_starts, start_ms)
        hi = bisect_right(self._played_starts, end_ms)
        results: list[dict[str, Any]] = []
        next_from: int | None = None
        for frame in self._played[lo:hi]:
            i = self._index(frame).get(ticker)
            if i is None:
                continue
            if len(results) == limit:
                next_from = to_epoch_ms(frame.start)
                break
            bar = frame.bar(i)
            row: dict[str, Any] = {"v": bar.volume, "o": bar.open, "c": bar.close, "h": bar.high,
                                   "l": bar.low, "t": to_epoch_ms(bar.start), "n": bar.trades or 0}
            if bar.vwap is not None:
                row["vw"] = bar.vwap
            results.append(row)
        if query.get("sort") == "desc":
            results.reverse()
        body: dict[str, Any] = {
            "ticker": ticker, "queryCount": len(results), "resultsCount": len(results),
            "adjusted": query.get("adjusted", "true") != "false", "results": results,
            "status": "OK", "request_id": f"replay-{time.monotonic_ns()}", "count": len(results),
        }
        if next_from is not None:
            body["next_url"] = (f"{self.rest_url}{_AGGS_PREFIX}{ticker}/range/1/minute/"
                                f"{next_from}/{end_ms}?limit={limit}")
        return body


def _bound(text: str, *, start: bool) -> int:
    """A REST range bound: a millisecond timestamp, or a New York date (whole day, inclusive)."""
    if text.isdigit():
        return int(text)
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=NEW_YORK)
    except ValueError:
        raise ValueError(f"invalid range bound {text!r}: use YYYY-MM-DD or epoch ms") from None
    ms = to_epoch_ms(day)
    return ms if start else ms + 86_400_000 - 1


def _json_response(status: http.HTTPStatus, body: dict[str, Any]) -> Response:
    data = json.dumps(body).encode()
    headers = Headers([
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Connection", "close"),
    ])
    return Response(status.value, status.phrase, headers, data)
