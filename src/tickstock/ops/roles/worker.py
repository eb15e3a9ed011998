"""Composition root of the worker role: build the clients, load the job handlers, consume the
durable streams (and the legacy job channels) until SIGTERM/SIGINT or, with ``drain``, until
nothing is pending."""

from __future__ import annotations

import logging

from tickstock.bus.connection import connect
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.core.clock import LiveClock
from tickstock.ops import infra, metrics
from tickstock.ops.roles.signals import stop_on_signals
from tickstock.ops.settings import Settings
from tickstock.pipeline.jobs import load_handler_modules
from tickstock.pipeline.seed_compat import SeedCompatSubscriber
from tickstock.pipeline.worker import INSTALLERS, Worker, WorkerOptions
from tickstock.store.db import create_pool

log = logging.getLogger(__name__)


def run(settings: Settings, instance: str, drain: bool = False, **options: object) -> None:
    """Run one worker until stopped (``drain``: until the streams are empty and nothing is
    pending, which tests and batch use rely on)."""
    endpoints = infra.resolve(settings, start=False)
    handlers = load_handler_modules(settings.worker_handler_modules)
    clock = LiveClock()
    pool = create_pool(endpoints.postgres.url, min_size=1, max_size=4, name=instance)
    client = connect(endpoints.redis.url, name=instance)
    exporter = metrics.start_role_metrics(
        settings, "worker", instance, database_url=endpoints.postgres.url,
        redis_url=endpoints.redis.url, pool=pool, redis=client)
    heartbeat = HeartbeatThread(client, role="worker", instance=instance, clock=clock,
                                interval_s=settings.heartbeat_interval_s,
                                ttl_s=settings.heartbeat_ttl_s).start()
    worker = Worker(name=instance, client=client, pool=pool, clock=clock, handlers=handlers,
                    heartbeat=heartbeat,
                    options=WorkerOptions(claim_idle_s=settings.bus_claim_idle_s,
                                          max_deliveries=settings.bus_max_deliveries))
    worker.install(INSTALLERS)
    legacy = None if drain else SeedCompatSubscriber(client, source=instance, clock=clock).start()
    stop_on_signals(worker.stop, doing="stopping at the next symbol boundary")
    log.info("worker %s consuming; job types: %s", instance, ", ".join(sorted(handlers)) or "-")
    try:
        worker.run(drain=drain)
    finally:
        if legacy is not None:
            legacy.stop()
        heartbeat.stop()
        exporter.close()
        client.close()
        pool.close()
        log.info("worker %s stopped", instance)
