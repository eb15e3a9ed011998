"""Composition root of the pipeline API role: build its clients and the pipeline service, serve
the FastAPI app (``tickstock.pipeline.api``) on ``settings.host:settings.api_port``, beat a
heartbeat, stop on SIGTERM/SIGINT.

The API token is ``TICKSTOCK_API_TOKEN``; unset, one is generated once and kept in
``<data_dir>/api-token`` (0600), so a zero-configuration platform still has no
unauthenticated write endpoint and a local operator can read the token from that file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import redis
import uvicorn
from prometheus_client import REGISTRY
from psycopg_pool import ConnectionPool

from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.ops import infra, metrics, metrics_http
from tickstock.ops.settings import Settings
from tickstock.pipeline.api import create_app
from tickstock.pipeline.daily.service import build_service
from tickstock.store.db import create_pool

log = logging.getLogger(__name__)
TOKEN_FILE = "api-token"


def api_token(settings: Settings) -> str:
    """``TICKSTOCK_API_TOKEN``, else the token generated once under ``<data_dir>``."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = Path(settings.data_dir) / TOKEN_FILE
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another API instance wrote it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    log.info("generated the pipeline API token in %s (set TICKSTOCK_API_TOKEN to choose one)",
             path)
    return token


def health_check(pool: ConnectionPool, client: redis.Redis) -> Mapping[str, str]:
    """``{"database": "ok" | reason, "redis": "ok" | reason}`` for ``GET /health``."""
    checks: dict[str, str] = {}
    try:
        with pool.connection(timeout=3) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure is the answer, not an error of the endpoint
        checks["database"] = f"unreachable: {exc}"[:200]
    try:
        client.ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"unreachable: {exc}"[:200]
    return checks


def run(settings: Settings, instance: str, **options: object) -> None:
    """Serve the pipeline API until SIGTERM/SIGINT (uvicorn handles both and drains)."""
    endpoints = infra.resolve(settings, start=False)
    clock = LiveClock()
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=8, name=instance)
    client = connect(endpoints.redis.url, name=instance)
    heartbeat = HeartbeatThread(client, role="api", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s)
    exporter = None
    try:
        service = build_service(pool=pool, client=client, calendar=nyse(), clock=clock,
                                source=instance)
        app = create_app(service, token=api_token(settings),
                         health=lambda: health_check(pool, client))
        metrics_http.instrument_http(app, "api")
        metrics.install_metrics(app, registries=(REGISTRY,))
        exporter = metrics.register_collectors(
            settings, "api", instance, database_url=endpoints.postgres.url,
            redis_url=endpoints.redis.url, pool=pool, redis=client)
        server = _Server(uvicorn.Config(
            app, host=settings.host, port=settings.api_port, log_config=None, access_log=False,
            proxy_headers=False))
        heartbeat.start()
        threading.Thread(target=_running_once_listening, args=(server, heartbeat),
                         name="api-started", daemon=True).start()
        log.info("pipeline API listening on http://%s:%d (OpenAPI at /docs)", settings.host,
                 settings.api_port)
        server.run()
    finally:
        heartbeat.stop()
        if exporter is not None:
            exporter.close()
        client.close()
        pool.close()
        log.info("pipeline API %s stopped", instance)


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the signal after its graceful shutdown: the process then
    finishes its own clean-up (heartbeat, pools) and exits 0 instead of dying by SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _running_once_listening(server: uvicorn.Server, heartbeat: HeartbeatThread) -> None:
    """The heartbeat says ``running`` only once the socket accepts requests."""
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        heartbeat.state = "running"
