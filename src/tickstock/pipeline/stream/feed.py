"""The one provider WebSocket connection, through the official ``massive`` client.

The client authenticates and (re)subscribes by itself; it is run with ``max_reconnects=0`` so
that every lost connection comes back here, where it is counted, reported (the processor must
check each symbol for a gap after it) and retried with exponential back-off and jitter. An
authentication failure is fatal (ProviderAuthError): retrying a wrong key only gets it banned.

The client hands over each frame raw (``raw=True``): a minute boundary is thousands of
aggregates, and its own decoding (``json`` and a model object per aggregate, which the bar is
then copied from) cost this process more than orjson straight into the bars. Status messages
arrive here too; the ones reporting a problem are logged, as the client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from massive import WebSocketClient
from massive.exceptions import AuthError
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from tickstock.core.errors import ConfigurationError, ProviderAuthError
from tickstock.pipeline.stream.bars import LiveBar, minute_bar

logger = logging.getLogger(__name__)

MINUTE_CHANNEL = "AM"
SECOND_CHANNEL = "A"
STATUS = "status"
#: Statuses that report no problem (the client's own list).
OK_STATUSES = frozenset({"connected", "auth_success", "success"})


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnects: ``initial_s`` doubling up to ``max_s``, ±``jitter`` random."""

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.2
    #: A connection that stayed up this long resets the delay to ``initial_s``.
    healthy_after_s: float = 30.0

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_s, self.initial_s * 2.0 ** max(0, attempt - 1))
        return base * (1.0 + random.uniform(-self.jitter, self.jitter))


def client_endpoint(ws_url: str) -> tuple[str, bool]:
    """``(feed, secure)`` for ``WebSocketClient`` from a URL like ``wss://socket.massive.com``.

    The client builds ``ws[s]://{feed}/{market}`` itself, so a path in the URL is dropped.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigurationError(
            f"TICKSTOCK_MASSIVE_WS_URL must look like wss://host[:port], got {ws_url!r}")
    return parts.netloc, parts.scheme == "wss"


class ProviderFeed:
    """Keeps the provider connection up and hands every minute bar to ``on_minutes``.

    ``on_connect`` is called before each connection attempt (the first one too): from then on
    any minute may have been missed. ``on_seconds`` receives per-second aggregates as 1-second
    bars when ``second_aggregates`` is on; ``minute_aggregates`` off leaves the minute channel
    unsubscribed (the minutes are then built from the seconds).
    """

    def __init__(
        self,
        ws_url: str,
        api_key: str,
        symbols: Sequence[str],
        on_minutes: Callable[[list[LiveBar]], None],
        *,
        on_connect: Callable[[], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
        on_seconds: Callable[[list[LiveBar]], None] | None = None,
        second_aggregates: bool = False,
        minute_aggregates: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        if not symbols:
            raise ConfigurationError("the stream universe is empty: no symbol to subscribe")
        self.feed, self.secure = client_endpoint(ws_url)
        self.api_key = api_key
        self.topics = [f"{MINUTE_CHANNEL}.{s}" for s in symbols] if minute_aggregates else []
        if second_aggregates:
            self.topics += [f"{SECOND_CHANNEL}.{s}" for s in symbols]
        self.on_minutes = on_minutes
        self.on_connect = on_connect
        self.on_state = on_state
        self.on_seconds = on_seconds
        self.backoff = backoff or Backoff()
        self.connections = 0
        self._client: WebSocketClient | None = None
        self._stopping = False
        self._up = False

    async def run(self) -> None:
        """Connect, and reconnect after every loss, until ``stop``."""
        attempt = 0
        watcher = asyncio.create_task(self._watch_state())
        try:
            while not self._stopping:
                started = time.monotonic()
                await self._connect_once()
                if self._stopping:
                    break
                if time.monotonic() - started >= self.backoff.healthy_after_s:
                    attempt = 0
                attempt += 1
                delay = self.backoff.delay(attempt)
                logger.warning("provider connection lost; reconnecting",
                               extra={"attempt": attempt, "delay_s": round(delay, 2)})
                await asyncio.sleep(delay)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self._set_state(False)

    async def stop(self) -> None:
        self._stopping = True
        client = self._client
        if client is not None and client.websocket is not None:
            await client.close()

    async def _connect_once(self) -> None:
        client = WebSocketClient(
            api_key=self.api_key, feed=self.feed, market="stocks", secure=self.secure,
            subscriptions=list(self.topics), max_reconnects=0, raw=True,
        )
        self._client = client
        self.connections += 1
        if self.on_connect is not None:
            self.on_connect()
        try:
            await client.connect(self._on_messages, max_size=2**24)
        except AuthError as exc:
            raise ProviderAuthError(
                f"the provider refused MASSIVE_API_KEY on {self.feed}: {exc}") from None
        except (OSError, WebSocketException, TimeoutError) as exc:
            logger.warning("provider connection failed: %s", exc)
        finally:
            self._set_state(False)

    async def _on_messages(self, frame: str | bytes) -> None:
        minutes: list[LiveBar] = []
        seconds: list[LiveBar] = []
        problems: Counter[tuple[Any, Any]] = Counter()
        for m in _decode(frame):
            kind = m.get("ev")
            if kind == MINUTE_CHANNEL:
                minutes.append(_bar(m))
            elif kind == SECOND_CHANNEL and self.on_seconds is not None:
                seconds.append(_bar(m))
            elif kind == STATUS and m.get("status") not in OK_STATUSES:
                problems[(m.get("status"), m.get("message"))] += 1
        for (status, message), count in problems.items():  # one per channel: counted
            logger.warning("provider %s: %s%s", status, message, f" (x{count})" if count > 1 else "")
        self._set_state(True)
        if minutes:
            self.on_minutes(minutes)
        if seconds and self.on_seconds is not None:
            self.on_seconds(seconds)

    async def _watch_state(self) -> None:
        # The client has no "connected" callback; its websocket attribute is the truth.
        while True:
            client = self._client
            ws = client.websocket if client is not None else None
            self._set_state(ws is not None and ws.state is State.OPEN)
            await asyncio.sleep(0.25)

    def _set_state(self, up: bool) -> None:
        if up != self._up:
            self._up = up
            if self.on_state is not None:
                self.on_state(up)


def _decode(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages of a frame; what only Python's ``json`` reads (a ``NaN`` price: the
    processor counts and skips that minute) is read by it, as the client would."""
    try:
        messages: list[dict[str, Any]] = orjson.loads(frame)
    except orjson.JSONDecodeError:
        messages = json.loads(frame)
    return messages


def _bar(agg: dict[str, Any]) -> LiveBar:
    """The bar of one aggregate message (the provider's field names: sym, s/e epoch ms,
    o/h/l/c, v volume, vw the aggregate's own VWAP)."""
    start, end = agg["s"], agg.get("e")
    bar = minute_bar(agg["sym"], start, open_=agg["o"], high=agg["h"], low=agg["l"],
                     close=agg["c"], volume=agg.get("v"), vwap=agg.get("vw"))
    if end is not None and end - start < 60_000:
        bar.end = bar.start + (bar.end - bar.start) * (end - start) / 60_000
    return bar
