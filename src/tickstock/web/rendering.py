"""Server-rendered pages: one Jinja2 environment per app, and the context every page gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tickstock.core.timeutil import iso
from tickstock.web.security import Principal, csrf_token, deps_of

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _fmt_time(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | None) -> str:
    return "" if value is None else iso(value)


def _json_default(value: object) -> str:
    return iso(value) if isinstance(value, datetime) else str(value)


def create_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["utc"] = _fmt_time
    env.filters["iso"] = _iso
    # ``|tojson`` escapes <, >, & and ' so JSON is safe inside <script> blocks.
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "default": _json_default}
    return templates


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the user, CSRF token, version and the page's own context."""
    deps = deps_of(request)
    templates: Jinja2Templates = request.app.state.templates
    base = {
        "user": principal.user if principal else None,
        "csrf_token": csrf_token(request),
        "version": deps.config.version,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)
