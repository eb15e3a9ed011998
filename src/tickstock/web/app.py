"""``create_app(deps)``: the FastAPI application, built from clients made elsewhere.

No globals: the dependencies, templates, metrics and the live-push hub hang off ``app.state``
of the one app this function returns, so tests can build as many apps as they like.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from tickstock.web import errors
from tickstock.web.config import WebDeps
from tickstock.web.metrics import MetricsMiddleware, create_metrics
from tickstock.web.rendering import create_templates
from tickstock.web.routers import auth

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "tickstock_session"

API_DESCRIPTION = """
TickStock's REST API: market data, indicators, patterns, screener, daily processing and jobs.

Authenticate with an API token (`tickstock users token create NAME`) sent as
`Authorization: Bearer <token>`, or with the browser session (then state-changing calls need
the `X-CSRF-Token` header). Errors are JSON: `{"error", "message", "details"}`.
"""


def create_app(deps: WebDeps) -> FastAPI:
    """The web app. ``deps`` are open clients; the caller closes them after the app stops."""
    from tickstock.web.live import LiveHub

    metrics = create_metrics()
    hub = LiveHub(deps, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="TickStock",
        version=deps.config.version,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by the system router from local files, not a CDN
        redoc_url=None,
    )
    app.state.deps = deps
    app.state.metrics = metrics
    app.state.hub = hub
    app.state.templates = create_templates()

    app.add_middleware(
        SessionMiddleware,
        secret_key=deps.config.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=deps.config.session_max_age_s,
        same_site="lax",
        https_only=deps.config.secure_cookies,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: times everything
    errors.install(app)
    for router in _routers():
        app.include_router(router, responses=errors.ERROR_RESPONSES)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _routers() -> list[APIRouter]:
    from tickstock.web.routers import (
        admin_pages,
        api_admin,
        api_jobs,
        api_market,
        api_processing,
        live_ws,
        pages,
        system,
    )

    return [
        system.router,
        auth.router,
        pages.router,
        admin_pages.router,
        api_processing.router,
        api_jobs.router,
        api_market.router,
        api_admin.router,
        live_ws.router,
    ]
