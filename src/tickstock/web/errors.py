"""Errors as the caller needs them: JSON with a clear message for the API, pages for browsers.

JSON body: ``{"error": "<short code>", "message": "<what went wrong and what to do>",
"details": [...]}``. Codes follow the error tree of ``tickstock.core.errors``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from tickstock.core.errors import (
    ContractError,
    DataValidationError,
    NotFoundError,
    StoreError,
    TickStockError,
)
from tickstock.web.rendering import render
from tickstock.web.security import AdminRequired, LoginRequired, resolve_principal

log = logging.getLogger(__name__)

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid",
          429: "too_many_requests", 503: "unavailable"}


class ErrorBody(BaseModel):
    """What every error response of the API carries."""

    error: str = Field(examples=["invalid"], description="Short code of the kind of error.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: list[Any] = Field(default_factory=list,
                               description="Per-field problems of an invalid request.")


#: Documented on every API route, so /docs shows the body errors really have.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (401, "Not signed in and no API token"), (403, "Not allowed (role or CSRF token)"),
        (422, "The request is invalid; details name the fields"))}


def error_body(status: int, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": _CODES.get(status, "error"), "message": message, "details": details or []}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/ws", "/health", "/metrics", "/openapi", "/docs")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _respond(request: Request, status: int, message: str, details: list[Any] | None = None,
             headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        principal = resolve_principal(request)
        return render(request, "error.html", principal, status_code=status,
                      status=status, message=message)
    return JSONResponse(error_body(status, message, details), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        out.append({"field": loc, "message": err.get("msg", "invalid")})
    return out


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(AdminRequired)
    async def _admin(request: Request, exc: AdminRequired) -> Response:
        return _respond(request, 403, "This page is for administrators.")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _respond(request, exc.status_code, str(exc.detail),
                        headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details[:3])
        return _respond(request, 422, f"invalid request: {summary}", details)

    @app.exception_handler(TickStockError)
    async def _domain(request: Request, exc: TickStockError) -> Response:
        if isinstance(exc, NotFoundError):
            return _respond(request, 404, str(exc))
        if isinstance(exc, DataValidationError | ContractError):
            return _respond(request, 422, str(exc))
        if isinstance(exc, StoreError):
            log.error("store error: %s", exc)
            return _respond(request, 503, "the database is unavailable; try again shortly")
        log.error("unhandled TickStock error: %s", exc)
        return _respond(request, 500, "internal error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost middleware sends this response, then re-raises so the
        # server logs the traceback.
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _respond(request, 500, "internal error: the failure is logged")

    @app.exception_handler(psycopg.OperationalError)
    async def _db_down(request: Request, exc: psycopg.OperationalError) -> Response:
        log.error("database unavailable: %s", exc)
        return _respond(request, 503, "the database is unavailable; try again shortly")
