"""HTTP request metrics for an app that has none of its own (the pipeline API).

The web app counts its requests itself (``tickstock_web_http_*``, ``web/metrics.py``); the
pipeline API gets the same two families under its own prefix from ``instrument_http``, added by
its composition root before the server starts::

    metrics_http.instrument_http(app, "api")   # tickstock_api_http_requests_total, ..._seconds

Routes are labelled by their path template (``/runs/{run_id}``), so cardinality stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter
    latency: Histogram


def create_http_metrics(prefix: str, registry: CollectorRegistry = REGISTRY) -> HttpMetrics:
    """``tickstock_<prefix>_http_requests_total{route, method, status}`` and
    ``tickstock_<prefix>_http_request_seconds{route, method}`` in ``registry``."""
    return HttpMetrics(
        Counter(f"tickstock_{prefix}_http_requests",
                "HTTP requests by route template, method and status.",
                ["route", "method", "status"], registry=registry),
        Histogram(f"tickstock_{prefix}_http_request_seconds",
                  "HTTP request latency by route template.", ["route", "method"],
                  buckets=LATENCY_BUCKETS, registry=registry),
    )


def route_template(request: Request) -> str:
    """The matched route's path template; ``unmatched`` for a 404 (never the raw path)."""
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


def instrument_http(
    app: Any, prefix: str, registry: CollectorRegistry = REGISTRY
) -> HttpMetrics:
    """Count and time every request of a FastAPI/Starlette ``app`` (before it serves)."""
    found = create_http_metrics(prefix, registry)

    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 by the server
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = route_template(request)
            found.requests.labels(route, request.method, str(status)).inc()
            found.latency.labels(route, request.method).observe(time.perf_counter() - started)

    app.middleware("http")(record)
    return found
