"""``/ws``: the live-push WebSocket (protocol in ``tickstock.web.live``).

Client → server: ``{"op": "subscribe", "topics": [...], "filters": {...}, "last_id": "..."}``.
Server → client: ``{"kind": "hello"}``, ``{"kind": "event", "id", "type", "ts", "data", ...}``,
``{"kind": "resync", "reason", "last_id"}``, ``{"kind": "services", ...}``,
``{"kind": "subscribed", "topics"}`` (the subscription is in force),
``{"kind": "error", "message"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from tickstock.core.errors import NotFoundError
from tickstock.web.live import Client, LiveHub, LiveMessage
from tickstock.web.live_filters import ADMIN_TOPICS, Matcher, Subscribe
from tickstock.web.metrics import WebMetrics
from tickstock.web.reads import market as market_reads
from tickstock.web.security import deps_of, resolve_principal

log = logging.getLogger(__name__)
router = APIRouter()
POLICY_VIOLATION = 1008
MAX_CLIENT_MESSAGE = 64 * 1024


def _same_origin(ws: WebSocket) -> bool:
    """Refuse cross-site WebSocket hijacking: a browser's Origin must be this host."""
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser (programmatic client with a token)
        return True
    return urlsplit(origin).netloc == ws.headers.get("host")


@router.websocket("/ws")
async def live(ws: WebSocket) -> None:
    principal = await run_in_threadpool(resolve_principal, ws)
    if principal is None or not _same_origin(ws):
        await ws.close(code=POLICY_VIOLATION)
        return
    await ws.accept()
    hub: LiveHub = ws.app.state.hub
    metrics: WebMetrics = ws.app.state.metrics
    deps = deps_of(ws)
    client = Client(is_admin=principal.user.is_admin, queue_size=deps.config.ws_queue_size)
    hub.register(client)
    writer = asyncio.create_task(_write(ws, client, metrics))
    try:
        await ws.send_text(json.dumps({"kind": "hello", "last_id": hub.last_id,
                                       "user": principal.name}))
        while True:
            raw = await ws.receive_text()
            await _handle(ws, hub, client, raw)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(client)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await writer


async def _handle(ws: WebSocket, hub: LiveHub, client: Client, raw: str) -> None:
    if len(raw) > MAX_CLIENT_MESSAGE:
        await _error(ws, client, "message too large")
        return
    try:
        sub = Subscribe.model_validate_json(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        await _error(ws, client, f"invalid subscribe message: {where}: {err['msg']}")
        return
    forbidden = sorted(set(sub.topics) & ADMIN_TOPICS) if not client.is_admin else []
    if forbidden:
        await _error(ws, client, f"topics {', '.join(forbidden)} need the admin role")
        return
    deps = deps_of(ws)
    members = None
    if sub.filters.universe is not None:
        try:
            members = await run_in_threadpool(market_reads.universe_symbols, deps.pool,
                                              sub.filters.universe)
        except NotFoundError as exc:
            await _error(ws, client, str(exc))
            return
    client.matcher = Matcher(sub, members)
    if sub.last_id is not None:
        hub.begin_catch_up(client)
        missed: list[LiveMessage] | None
        try:
            missed = await run_in_threadpool(hub.missed_since, sub.last_id,
                                             deps.config.ws_catchup_limit)
        except Exception as exc:  # Redis down: the page resyncs over REST
            log.warning("catch-up failed: %s", exc)
            missed = None
        hub.finish_catch_up(client, missed, sub.last_id)
    # The page knows from here on every matching event reaches it (after any catch-up).
    client.offer(json.dumps({"kind": "subscribed", "topics": list(sub.topics)}),
                 ws.app.state.metrics)


async def _error(ws: WebSocket, client: Client, message: str) -> None:
    if not client.queue.full():
        client.queue.put_nowait(json.dumps({"kind": "error", "message": message}))


async def _write(ws: WebSocket, client: Client, metrics: WebMetrics) -> None:
    while True:
        item = await client.queue.get()
        if isinstance(item, LiveMessage):
            await ws.send_text(item.text)
            lag = time.time() - item.epoch
            metrics.push_latency.observe(max(0.0, lag))
        else:
            await ws.send_text(item)
