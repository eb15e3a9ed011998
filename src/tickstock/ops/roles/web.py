"""Composition root of the web role: build clients, serve the app, stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import uvicorn
from prometheus_client import REGISTRY

from tickstock import __version__
from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.ops import infra, metrics
from tickstock.ops.roles.serving import GracefulServer, generated_secret, serve
from tickstock.ops.settings import Settings
from tickstock.store.db import create_pool
from tickstock.web.app import create_app
from tickstock.web.config import Pool, WebConfig, WebDeps

log = logging.getLogger(__name__)
SECRET_FILE = "web-secret.key"


def secret_key(settings: Settings) -> str:
    """``TICKSTOCK_SECRET_KEY``, else a key generated once and kept in ``<data_dir>`` (0600),
    so sessions survive restarts and every web instance on this machine shares it."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return generated_secret(Path(settings.data_dir) / SECRET_FILE, nbytes=48, what="web secret key")


def run(settings: Settings, instance: str, **options: object) -> None:
    """Serve pages, API and live push on ``settings.host:settings.web_port`` until stopped."""
    endpoints = infra.resolve(settings, start=False)
    # create_pool's connections return dict rows (its row_factory); the type says tuples.
    pool = cast(Pool, create_pool(endpoints.postgres.url, min_size=2, max_size=16, name="web"))
    client = connect(endpoints.redis.url, name=instance)  # its socket timeout > XREAD BLOCK 1 s
    clock = LiveClock()
    # Beating ("starting") while the app is built, so the role is visible at once.
    heartbeat = HeartbeatThread(client, role="web", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s).start()
    exporter: metrics.Exporter | None = None
    try:
        config = WebConfig(secret_key=secret_key(settings), version=__version__,
                           instance=instance, heartbeat_ttl_s=settings.heartbeat_ttl_s)
        deps = WebDeps(pool=pool, redis=client, clock=clock, config=config, calendar=nyse())
        app = create_app(deps)
        # /metrics: the app's own registry plus the process's (pools, shared state, build info).
        metrics.install_metrics(app, registries=(REGISTRY, app.state.metrics.registry))
        exporter = metrics.register_collectors(
            settings, "web", instance, database_url=endpoints.postgres.url,
            redis_url=endpoints.redis.url, pool=pool, redis=client)
        server = GracefulServer(uvicorn.Config(
            app, host=settings.host, port=settings.web_port, log_config=None, access_log=False,
            proxy_headers=False, ws_max_size=64 * 1024))
        log.info("web listening on http://%s:%d", settings.host, settings.web_port)
        serve(server, heartbeat, "web")
    finally:
        heartbeat.stop()
        if exporter is not None:
            exporter.close()
        client.close()
        pool.close()
