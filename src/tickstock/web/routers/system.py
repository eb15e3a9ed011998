"""``/health`` and ``/metrics``: public, for load balancers and Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

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


#: Front-end files served from ``web/vendor/node_modules`` (installed by npm at setup, pinned
#: in ``web/vendor/package.json``): nothing is loaded from a CDN, so pages and /docs work offline.
VENDOR_FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "lightweight-charts.js": (("lightweight-charts", "dist",
                               "lightweight-charts.standalone.production.js"), "text/javascript"),
    "swagger-ui-bundle.js": (("swagger-ui-dist", "swagger-ui-bundle.js"), "text/javascript"),
    "swagger-ui.css": (("swagger-ui-dist", "swagger-ui.css"), "text/css"),
}


@router.get("/static/vendor/{name}", include_in_schema=False)
def vendor_file(request: Request, name: str) -> Response:
    """A pinned front-end library file (lightweight-charts, Swagger UI)."""
    if name not in VENDOR_FILES:
        return JSONResponse({"error": "not_found", "message": f"no vendor file {name!r}",
                             "details": []}, status_code=404)
    parts, media_type = VENDOR_FILES[name]
    path = request.app.state.deps.config.vendor_dir.joinpath("node_modules", *parts)
    if not path.is_file():
        return Response(f"/* {name} is not installed: run make setup */", media_type=media_type,
                        status_code=503)
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/docs", include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, with its files served by this app."""
    return get_swagger_ui_html(openapi_url=str(request.app.openapi_url),
                               title=f"{request.app.title} API",
                               swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui.css",
                               swagger_favicon_url="data:,")
