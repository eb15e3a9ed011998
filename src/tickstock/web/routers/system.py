"""``/health`` and ``/metrics``: public, for load balancers and Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from tickstock.web.reads.services import postgres_health, redis_health

router = APIRouter(tags=["system"])


@router.get("/health", summary="Liveness and dependencies (503 when one is down)")
def health(request: Request) -> Response:
    deps = request.app.state.deps
    checks: dict[str, Any] = {"postgres": postgres_health(deps.pool),
                              "redis": redis_health(deps.redis)}
    ok = all(c["status"] == "up" for c in checks.values())
    body = {"status": "ok" if ok else "degraded", "version": deps.config.version,
            "instance": deps.config.instance, "live_clients": request.app.state.hub.clients,
            **checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics of this web instance",
            response_class=Response)
def metrics(request: Request) -> Response:
    data = generate_latest(request.app.state.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)


CHART_JS = ("node_modules", "lightweight-charts", "dist",
            "lightweight-charts.standalone.production.js")


@router.get("/static/vendor/lightweight-charts.js", include_in_schema=False)
def chart_library(request: Request) -> Response:
    """TradingView lightweight-charts, installed by npm at setup (``web/vendor/package.json``)."""
    path = request.app.state.deps.config.vendor_dir.joinpath(*CHART_JS)
    if not path.is_file():
        return Response("console.error('lightweight-charts is not installed: run make setup');",
                        media_type="text/javascript", status_code=503)
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})
