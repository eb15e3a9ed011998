"""Live push: one reader of the event stream, fanned out to every connected browser.

Flow: a thread XREADs ``names.EVENTS_STREAM`` (blocking, so no polling of Redis in a loop with
sleeps) and hands each batch to the event loop, where ``LiveHub._dispatch`` offers every event
to every client whose subscription matches. Each event is serialised once, whatever the number
of clients. A batch (``bar.live_batch``, ``pattern.detected_batch``, ``indicator.alert_batch``:
the stream role's bars, detections and alerts of a minute boundary, many symbols to an entry)
is split here into the single events it stands for: browsers and their filters only ever see
per-symbol ``bar.live``, ``pattern.detected`` and ``indicator.alert``.

Slow browsers: each client has a bounded queue (``WebConfig.ws_queue_size``). When it is full
the hub drops what is queued for that client — the oldest events — and queues one ``resync``
message instead; the page then re-reads its state over REST and carries on with live events.
Chosen over disconnecting because a page that falls behind for a moment (a busy tab, a phone
on a slow link) recovers without a reconnect storm, and the drop is visible to the page and in
``tickstock_web_push_dropped``. One slow client never blocks the fan-out or other clients.

Reconnects: the browser remembers the id of the last event it received and sends it in its
``subscribe`` message; the hub replays what it missed from the stream (up to
``ws_catchup_limit`` entries) — or sends ``resync`` when the stream no longer holds that far
back — buffering live events meanwhile so the order is kept and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from tickstock.contracts import decode, names
from tickstock.contracts.events import EventBatch
from tickstock.core.errors import ContractError
from tickstock.web.config import WebDeps
from tickstock.web.live_filters import Matcher, stream_id_key
from tickstock.web.metrics import WebMetrics
from tickstock.web.reads.services import ServiceTracker, heartbeats

log = logging.getLogger(__name__)
READ_BATCH = 500
READ_BLOCK_MS = 1000
SERVICE_SCAN_S = 1.0


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """An event as browsers receive it, serialised once; ``key`` and ``epoch`` are computed
    once too, not once per browser. ``key`` orders messages: the stream entry's id, then the
    message's place among those the entry was split into (``to_live_messages``)."""

    id: str
    topic: str
    correlation_id: str | None
    data: dict[str, Any]
    ts: datetime
    text: str
    key: tuple[int, int, int] = (0, 0, 0)
    epoch: float = 0.0


def to_live_messages(entry_id: str, raw: bytes | str) -> list[LiveMessage]:
    """A stream entry as what browsers receive: one LiveMessage, or for a batch
    (``contracts.events.EventBatch``) one message per event it stands for (so
    every filter and page sees per-symbol events); each carries the entry's id. ContractError
    when the envelope is invalid."""
    env = decode(raw)
    ms, seq = stream_id_key(entry_id)
    if isinstance(env.data, EventBatch):
        parts: list[tuple[str, dict[str, Any]]] = [
            (e.message_type, e.model_dump(mode="json")) for e in env.data.split()]
    else:
        parts = [(env.type, env.data.model_dump(mode="json"))]
    ts, epoch = env.ts.isoformat(), env.ts.timestamp()
    out = []
    for k, (message_type, data) in enumerate(parts):
        body = {"kind": "event", "id": entry_id, "type": message_type, "ts": ts,
                "source": env.source, "correlation_id": env.correlation_id, "data": data}
        out.append(LiveMessage(entry_id, message_type.split(".", 1)[0], env.correlation_id, data,
                               env.ts, json.dumps(body, separators=(",", ":")), (ms, seq, k),
                               epoch))
    return out


def through(entry_id: str) -> tuple[int, int, int]:
    """The key past every message of entry ``entry_id``: a browser that saw that id saw the
    entry (its messages are queued together)."""
    return (*stream_id_key(entry_id), _LAST_PART)


_LAST_PART = 2**62


def resync_text(reason: str, last_id: str | None) -> str:
    return json.dumps({"kind": "resync", "reason": reason, "last_id": last_id})


@dataclass(eq=False)  # identity equality: clients live in a set
class Client:
    """One connected browser: its subscription and its bounded outgoing queue."""

    is_admin: bool
    queue_size: int
    matcher: Matcher | None = None
    queue: asyncio.Queue[str | LiveMessage] = field(init=False)
    sent_upto: tuple[int, int, int] = (0, 0, 0)
    catching_up: list[LiveMessage] | None = None
    catch_up_overflow: bool = False
    dropped: int = 0

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def accepts(self, msg: LiveMessage) -> bool:
        return self.matcher is not None and self.matcher.matches(
            msg.topic, msg.correlation_id, msg.data)

    def offer(self, item: str | LiveMessage, metrics: WebMetrics) -> None:
        """Queue ``item``; when full, drop the queued (oldest) items and queue a resync."""
        try:
            self.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        discarded = [self.queue.get_nowait() for _ in range(self.queue.qsize())]
        # Events lost: the queued ones and ``item``; an earlier resync notice is not an event.
        lost = sum(isinstance(x, LiveMessage) for x in [*discarded, item])
        self.dropped += lost
        metrics.push_dropped.inc(lost)
        last_id = item.id if isinstance(item, LiveMessage) else None
        self.queue.put_nowait(resync_text("slow-consumer", last_id))
        if isinstance(item, LiveMessage):
            self.sent_upto = max(self.sent_upto, item.key)


class LiveHub:
    """Reads the event stream once and fans it out to the registered clients."""

    def __init__(self, deps: WebDeps, metrics: WebMetrics) -> None:
        self._deps = deps
        self._metrics = metrics
        self._clients: set[Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_id = "0-0"
        self.tracker = ServiceTracker(deps.config.heartbeat_ttl_s)
        self._watcher: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.last_id = await asyncio.to_thread(self._tail_id)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_forever, name="live-hub", daemon=True)
        self._thread.start()
        self._watcher = asyncio.create_task(self._watch_services())

    async def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 3 * READ_BLOCK_MS / 1000)

    def register(self, client: Client) -> None:
        self._clients.add(client)
        self._metrics.ws_clients.set(len(self._clients))

    def unregister(self, client: Client) -> None:
        self._clients.discard(client)
        self._metrics.ws_clients.set(len(self._clients))

    def broadcast_text(self, text: str, *, admin_only: bool, topic: str) -> None:
        """Queue a hub-made message (not from the stream) to clients subscribed to ``topic``."""
        for client in list(self._clients):
            if client.matcher is None or topic not in client.matcher.topics:
                continue
            if admin_only and not client.is_admin:
                continue
            client.offer(text, self._metrics)

    async def _watch_services(self) -> None:
        """Push the service table to subscribed admins whenever an instance changes state.

        Heartbeats are Redis keys with a TTL, not events, so the hub looks at them every
        ``SERVICE_SCAN_S`` — only while someone is watching — and pushes changes.
        """
        last: list[tuple[str, str, str, str]] = []
        while True:
            await asyncio.sleep(SERVICE_SCAN_S)
            watching = any(c.matcher is not None and "service" in c.matcher.topics
                           and c.is_admin for c in self._clients)
            if not watching:
                continue
            try:
                beats = await asyncio.to_thread(heartbeats, self._deps.redis)
            except redis.RedisError as exc:
                log.warning("cannot read heartbeats: %s", exc)
                continue
            table = self.tracker.update(beats, self._deps.clock.now())
            summary = [(e["role"], e["instance"], e["status"], e["state"]) for e in table]
            if summary != last:
                last = summary
                text = json.dumps({"kind": "services", "instances": table}, default=str)
                self.broadcast_text(text, admin_only=True, topic="service")

    # -- catch-up --------------------------------------------------------------------------------

    def missed_since(self, last_id: str, limit: int) -> list[LiveMessage] | None:
        """Events after ``last_id``, or None when they are more than ``limit`` or trimmed away."""
        r: Any = self._deps.redis  # redis-py's stream return types are too loose to use
        first = r.xrange(names.EVENTS_STREAM, count=1)
        # The stream was trimmed past what the client saw (a client that saw nothing, 0-0,
        # has no gap).
        trimmed = bool(first) and stream_id_key(_text(first[0][0])) > stream_id_key(last_id)
        if trimmed and stream_id_key(last_id) != (0, 0):
            return None
        entries = r.xrange(names.EVENTS_STREAM, min="(" + last_id, count=limit + 1)
        if len(entries) > limit:
            return None
        return self._parse(entries)

    def begin_catch_up(self, client: Client) -> None:
        client.catching_up = []
        client.catch_up_overflow = False

    def finish_catch_up(self, client: Client, missed: list[LiveMessage] | None,
                        last_id: str | None) -> None:
        """Queue the missed events, then the live ones buffered meanwhile, without repeats."""
        buffered = client.catching_up or []
        client.catching_up = None
        if client.catch_up_overflow:
            missed, buffered = None, []
        if missed is None:
            client.offer(resync_text("gap", self.last_id), self._metrics)
            client.sent_upto = max(client.sent_upto, through(self.last_id))
            missed = []
        elif last_id is not None:
            client.sent_upto = max(client.sent_upto, through(last_id))
        for msg in [*missed, *buffered]:
            if msg.key > client.sent_upto and client.accepts(msg):
                client.sent_upto = msg.key
                client.offer(msg, self._metrics)

    # -- reading ---------------------------------------------------------------------------------

    def _tail_id(self) -> str:
        try:
            last: Any = self._deps.redis.xrevrange(names.EVENTS_STREAM, count=1)
        except redis.RedisError as exc:
            log.warning("cannot read the event stream tail: %s", exc)
            return "0-0"
        return _text(last[0][0]) if last else "0-0"

    def _parse(self, entries: list[Any]) -> list[LiveMessage]:
        out = []
        for entry_id, fields in entries:
            raw = fields.get(names.ENVELOPE_FIELD.encode(), fields.get(names.ENVELOPE_FIELD))
            if raw is None:
                continue
            try:
                out.extend(to_live_messages(_text(entry_id), raw))
            except ContractError as exc:
                log.warning("skipping invalid event %s: %s", _text(entry_id), exc)
        return out

    def _read_forever(self) -> None:
        while not self._stop.is_set():
            try:
                reply: Any = self._deps.redis.xread(
                    {names.EVENTS_STREAM: self.last_id}, count=READ_BATCH, block=READ_BLOCK_MS)
            except redis.RedisError as exc:
                log.warning("event stream read failed, retrying: %s", exc)
                self._stop.wait(1.0)
                continue
            for _stream, entries in reply or []:
                if not entries:
                    continue
                self.last_id = _text(entries[-1][0])
                messages = self._parse(entries)
                self._metrics.events_read.inc(len(entries))
                if messages and self._loop is not None and not self._loop.is_closed():
                    self._loop.call_soon_threadsafe(self._dispatch, messages)

    def _dispatch(self, messages: list[LiveMessage]) -> None:
        for client in list(self._clients):
            for msg in messages:
                if client.catching_up is not None:
                    if len(client.catching_up) < client.queue_size:
                        client.catching_up.append(msg)
                    else:
                        client.catch_up_overflow = True
                elif msg.key > client.sent_upto and client.accepts(msg):
                    client.sent_upto = msg.key
                    client.offer(msg, self._metrics)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
