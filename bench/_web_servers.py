"""The raw baselines of ``bench/web.py``, each a uvicorn server in its own process (the same
uvicorn, event loop and HTTP parser the web role runs on):

    bare PORT            a bare Starlette app: ``GET /status`` returns a small constant JSON
    echo PORT REDIS_URL  a raw Redis pub/sub -> WebSocket echo: every message published on the
                         channel is sent as is to every connected socket, no queues, no filters

Usage: ``python bench/_web_servers.py bare 8123`` (stops on SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

ECHO_CHANNEL = "bench:web:echo"


def bare_app() -> Starlette:
    async def status(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "run": None, "open_failures": 0})

    return Starlette(routes=[Route("/status", status)])


def echo_app(redis_url: str) -> Starlette:
    sockets: set[WebSocket] = set()

    async def fan_out() -> None:
        client = aioredis.Redis.from_url(redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe(ECHO_CHANNEL)
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            text = message["data"].decode()
            for ws in list(sockets):
                with contextlib.suppress(Exception):
                    await ws.send_text(text)

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        sockets.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sockets.discard(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(fan_out())
        yield
        task.cancel()

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    app = bare_app() if kind == "bare" else echo_app(argv[2])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
