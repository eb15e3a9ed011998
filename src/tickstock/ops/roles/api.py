"""Composition root of the pipeline API role: build its clients and the pipeline service, serve
the FastAPI app (``tickstock.pipeline.api``) on ``settings.host:settings.api_port``, beat a
heartbeat, stop on SIGTERM/SIGINT.

The API token is ``TICKSTOCK_API_TOKEN``; unset, one is generated once and kept in
``<data_dir>/api-token`` (0600), so a zero-configuration platform still has no
unauthenticated write endpoint and a local operator can read the token from that file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from tickstock.ops.roles.serving import GracefulServer, generated_secret, serve
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
    return generated_secret(Path(settings.data_dir) / TOKEN_FILE, nbytes=32,
                            what="pipeline API token (set TICKSTOCK_API_TOKEN to choose one)")


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
        server = GracefulServer(uvicorn.Config(
            app, host=settings.host, port=settings.api_port, log_config=None, access_log=False,
            proxy_headers=False))
        heartbeat.start()
        log.info("pipeline API listening on http://%s:%d (OpenAPI at /docs)", settings.host,
                 settings.api_port)
        serve(server, heartbeat, "api")
    finally:
        heartbeat.stop()
        if exporter is not None:
            exporter.close()
        client.close()
        pool.close()
        log.info("pipeline API %s stopped", instance)
