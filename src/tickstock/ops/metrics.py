"""Prometheus metrics of every role: where they are served and what is read at scrape time.

A role's composition root (``ops/roles/<role>.py``) makes one call after building its clients
and one ``close()`` on shutdown:

worker, scheduler, stream — an HTTP server on the role's port (``TICKSTOCK_*_METRICS_PORT``;
0 disables it)::

    exporter = metrics.start_role_metrics(
        settings, "worker", instance, database_url=dsn, redis_url=url, pool=pool, redis=client,
    )
    ...
    exporter.close()

web, api — ``GET /metrics`` on the role's own FastAPI/Starlette app (the web app's own
registry, ``app.state.metrics.registry``, is served alongside the default one)::

    metrics.install_metrics(app, registries=(REGISTRY, app.state.metrics.registry))
    exporter = metrics.register_collectors(
        settings, "web", instance, database_url=dsn, redis_url=url, pool=pool, redis=client,
    )
    ...
    exporter.close()

Several workers on one machine: the first takes ``worker_metrics_port``, each further one the
first free port of ``worker_metrics_port + 10*k`` (k = 1..63), so a scrape config lists 9101,
9111, 9121, ... (``ops/prometheus/prometheus.yml``).

What an endpoint shows:

- the metrics every package defines in its ``metrics.py`` (bus, market, pipeline, web): they
  live in the default registry and appear once the role has imported them;
- ``tickstock_build_info{role, version}`` and the Python process collectors;
- this process's pool usage, ``tickstock_db_pool_*`` / ``tickstock_redis_pool_*``
  (``metrics_pools``), for the ``pool`` and ``redis`` passed in;
- the shared state read from PostgreSQL (``metrics_db``: jobs, runs, schedule; ``metrics_live``:
  stored live bars against the clock) and Redis
  (``metrics_redis``: heartbeats, streams, consumer groups, dead letters) through the
  exporter's own connections (one each), plus ``tickstock_metrics_source_up{source}`` and
  ``tickstock_metrics_collect_seconds{source}``. Every role exports the same shared state, so
  any one live role is enough; rules aggregate with ``max without (instance, job)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tickstock import __version__
from tickstock.core.clock import Clock, LiveClock
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.ops import metrics_db, metrics_live, metrics_redis
from tickstock.ops.metrics_pools import PoolCollector
from tickstock.ops.settings import Settings

log = logging.getLogger(__name__)

WORKER_PORT_STEP = 10
_MAX_WORKER_PORTS = 64
# One scrape must answer well within Prometheus's default 10 s scrape timeout.
SOURCE_TIMEOUT_S = 3.0
ROLE_PORTS: dict[str, str] = {
    "worker": "worker_metrics_port",
    "scheduler": "scheduler_metrics_port",
    "stream": "stream_metrics_port",
}


# -- exposition -------------------------------------------------------------------------------
@dataclass
class MetricsServer:
    """A running metrics HTTP server; ``close`` stops it."""

    port: int
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY,
    *, alternatives: tuple[int, ...] = (),
) -> MetricsServer:
    """Serve ``registry`` over HTTP on ``port`` (any path), else the first free alternative.

    Raises OSError naming the ports when none is free.
    """
    for candidate in (port, *alternatives):
        try:
            server, thread = start_http_server(candidate, addr=host, registry=registry)
        except OSError as exc:
            last_error = exc
            continue
        return MetricsServer(int(server.server_address[1]), server, thread)
    tried = ", ".join(str(p) for p in (port, *alternatives))
    raise OSError(f"no free metrics port on {host} (tried {tried}): {last_error}")


class _Union(Collector):
    """Several registries exposed as one (the web app keeps its metrics in its own registry)."""

    def __init__(self, registries: tuple[Collector, ...]) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


def _exposition(source: Collector, accept: str) -> tuple[bytes, str]:
    encoder, content_type = choose_encoder(accept)
    return encoder(source), content_type


def metrics_endpoint(
    registries: tuple[Collector, ...] = (REGISTRY,),
) -> Callable[[Request], Any]:
    """A Starlette/FastAPI endpoint serving ``registries`` (collected off the event loop)."""
    source = registries[0] if len(registries) == 1 else _Union(registries)

    async def endpoint(request: Request) -> Response:
        body, content_type = await run_in_threadpool(
            _exposition, source, request.headers.get("accept", "")
        )
        return Response(body, headers={"Content-Type": content_type})

    return endpoint


def install_metrics(
    app: Any, path: str = "/metrics", registries: tuple[Collector, ...] = (REGISTRY,)
) -> None:
    """Serve ``registries`` at ``GET <path>`` of a FastAPI or Starlette ``app``, replacing a
    route the app may already have there.

    The web app keeps its own metrics in ``app.state.metrics.registry`` (and serves only those
    at ``/metrics``): pass ``registries=(REGISTRY, app.state.metrics.registry)``.
    """
    # First in the list, so it wins over a route the app declared for the same path (FastAPI
    # keeps included routers as opaque entries, so such a route cannot simply be removed).
    # A FastAPI route also names itself in the request scope, so request metrics label it.
    kind = APIRoute if isinstance(app, FastAPI) else Route
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != path]
    app.router.routes.insert(0, kind(path, metrics_endpoint(registries), methods=["GET"],
                                     include_in_schema=False))


def metrics_app(registries: tuple[Collector, ...] = (REGISTRY,)) -> ASGIApp:
    """A standalone ASGI app answering every GET with the metrics (for ``app.mount``)."""
    endpoint = metrics_endpoint(registries)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    return app


# -- collectors -------------------------------------------------------------------------------
def expected_instances(settings: Settings) -> dict[str, int]:
    """Role -> instances ``tickstock up`` runs with these settings."""
    from tickstock.ops.supervisor import available_roles

    return {role: (settings.workers if role == "worker" else 1)
            for role in available_roles(settings.roles)}


@dataclass(eq=False)
class StateCollector(Collector):
    """Shared state from PostgreSQL and Redis, read at scrape time on private connections."""

    settings: Settings
    database_url: str
    redis_url: str
    clock: Clock = field(default_factory=LiveClock)
    expected: dict[str, int] | None = None
    _pool: ConnectionPool[Any] | None = None
    _redis: redis.Redis | None = None
    _calendar: MarketCalendar | None = None
    _up: dict[str, bool] = field(default_factory=dict)
    # Roles whose heartbeat this exporter has seen: a role that stops has its key expire, and
    # must then show as 0 instances rather than vanish from the scrape.
    _known_roles: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _clients(self) -> tuple[ConnectionPool[Any], redis.Redis, MarketCalendar]:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.database_url, min_size=0, max_size=1, name="metrics", open=True,
                    timeout=SOURCE_TIMEOUT_S,
                    kwargs={"connect_timeout": int(SOURCE_TIMEOUT_S), "autocommit": True,
                            "application_name": "tickstock-metrics",
                            "options": f"-c timezone=UTC -c statement_timeout="
                                       f"{int(SOURCE_TIMEOUT_S * 1000)}"},
                )
            if self._redis is None:
                # No retries: a scrape reports Redis down at once instead of waiting it out.
                self._redis = redis.Redis.from_url(
                    self.redis_url, client_name="tickstock-metrics",
                    socket_timeout=SOURCE_TIMEOUT_S, socket_connect_timeout=SOURCE_TIMEOUT_S,
                    retry=Retry(NoBackoff(), 0))
            if self._calendar is None:
                self._calendar = nyse()
            return self._pool, self._redis, self._calendar

    def describe(self) -> Iterator[Metric]:
        yield from metrics_db.describe_families()
        yield from metrics_live.describe_families()
        yield from metrics_redis.describe_families()
        yield from _source_families()

    def collect(self) -> Iterator[Metric]:
        pool, client, calendar = self._clients()
        up, seconds = _source_families()
        expected = self.expected if self.expected is not None else expected_instances(self.settings)
        sources: dict[str, Callable[[], list[Metric]]] = {
            "postgres": lambda: metrics_db.database_families(pool, self.clock, calendar,
                                                             SOURCE_TIMEOUT_S),
            "redis": lambda: self._redis_families(client, expected),
        }
        for source, read in sources.items():
            started = time.perf_counter()
            try:
                families = read()
            except Exception as exc:  # a scrape must answer even when a source is down
                self._note(source, exc)
                families = []
            else:
                self._note(source, None)
            yield from families
            up.add_metric([source], 1 if self._up[source] else 0)
            seconds.add_metric([source], time.perf_counter() - started)
        yield up
        yield seconds

    def _redis_families(self, client: redis.Redis, expected: dict[str, int]) -> list[Metric]:
        families = metrics_redis.redis_families(client, expected, sorted(self._known_roles),
                                                self.clock.now(), self.settings.heartbeat_ttl_s)
        for family in families:
            if family.name == "tickstock_role_instances":
                self._known_roles.update(s.labels["role"] for s in family.samples if s.value > 0)
        return families

    def _note(self, source: str, error: Exception | None) -> None:
        was_up = self._up.get(source, True)
        self._up[source] = error is None
        if error is not None and was_up:
            log.warning("metrics: cannot read %s: %s", source, error,
                        extra={"source": source})
        elif error is None and not was_up:
            log.info("metrics: %s readable again", source, extra={"source": source})

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if self._redis is not None:
                self._redis.close()
                self._redis = None


def _source_families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily("tickstock_metrics_source_up",
                          "1 when the last scrape could read the source, else 0.",
                          labels=["source"]),
        GaugeMetricFamily("tickstock_metrics_collect_seconds",
                          "Time the last scrape spent reading each source.", labels=["source"]),
    )


class _BuildInfo(Collector):
    def __init__(self, role: str, instance: str) -> None:
        self.role = role
        self.instance = instance

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("tickstock_build", "TickStock version of this process.",
                                labels=["role", "process"])
        info.add_metric([self.role, self.instance], {"version": __version__})
        yield info

    def describe(self) -> Iterator[Metric]:
        return self.collect()


@dataclass
class Exporter:
    """What ``register_collectors`` / ``start_role_metrics`` set up; ``close`` undoes it."""

    registry: CollectorRegistry
    collectors: list[Collector]
    state: StateCollector
    pools: PoolCollector
    server: MetricsServer | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for collector in self.collectors:
            with contextlib.suppress(KeyError):  # already unregistered
                self.registry.unregister(collector)
        self.collectors = []
        self.state.close()


def register_collectors(
    settings: Settings,
    role: str,
    instance: str,
    *,
    database_url: str,
    redis_url: str,
    pool: Any = None,
    redis: Any = None,
    registry: CollectorRegistry = REGISTRY,
    clock: Clock | None = None,
) -> Exporter:
    """Register this process's collectors in ``registry`` (build info, pools, shared state).

    ``pool``: the role's psycopg pool (sync or async); ``redis``: its redis client (sync or
    asyncio). Their usage is exported; the shared state is read on the exporter's own
    connections to ``database_url`` / ``redis_url``.
    """
    pools = PoolCollector()
    if pool is not None:
        pools.add_db(role, pool)
    if redis is not None:
        pools.add_redis(role, redis)
    state = StateCollector(settings, database_url, redis_url, clock=clock or LiveClock())
    collectors: list[Collector] = [_BuildInfo(role, instance), pools, state]
    registered: list[Collector] = []
    try:
        for collector in collectors:
            registry.register(collector)
            registered.append(collector)
    except ValueError:
        for collector in registered:
            registry.unregister(collector)
        raise
    return Exporter(registry, collectors, state, pools)


def role_metrics_port(settings: Settings, role: str) -> int:
    """The configured metrics port of a role served by ``start_role_metrics``."""
    if role not in ROLE_PORTS:
        raise ValueError(f"role {role!r} serves /metrics on its own app; see install_metrics")
    port: int = getattr(settings, ROLE_PORTS[role])
    return port


def start_role_metrics(
    settings: Settings,
    role: str,
    instance: str,
    *,
    database_url: str,
    redis_url: str,
    pool: Any = None,
    redis: Any = None,
    registry: CollectorRegistry = REGISTRY,
    clock: Clock | None = None,
) -> Exporter:
    """``register_collectors`` plus the metrics HTTP server on the role's port (0: none)."""
    exporter = register_collectors(settings, role, instance, database_url=database_url,
                                   redis_url=redis_url, pool=pool, redis=redis,
                                   registry=registry, clock=clock)
    port = role_metrics_port(settings, role)
    if port == 0:
        return exporter
    alternatives = tuple(port + WORKER_PORT_STEP * k for k in range(1, _MAX_WORKER_PORTS)
                         if port + WORKER_PORT_STEP * k <= 65535) if role == "worker" else ()
    try:
        exporter.server = serve_metrics(port, settings.host, registry, alternatives=alternatives)
    except OSError:
        exporter.close()
        raise
    log.info("metrics on http://%s:%d/metrics", settings.host, exporter.server.port,
             extra={"port": exporter.server.port})
    return exporter
