"""Login and logout pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tickstock.store import audit
from tickstock.web.login import attempt_login
from tickstock.web.rendering import render
from tickstock.web.security import (
    SESSION_CSRF,
    SESSION_USER,
    client_address,
    csrf_guard,
    deps_of,
    resolve_principal,
)

router = APIRouter(dependencies=[Depends(csrf_guard)], include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only same-site relative paths: an open redirect would make phishing easy."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if resolve_principal(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", None, next=safe_next(next), error=None, username="")


@router.post("/login")
def login(
    request: Request,
    username: str = Form(max_length=64),
    password: str = Form(max_length=1024),
    next: str = Form(default="/"),
) -> Response:
    deps = deps_of(request)
    result = attempt_login(deps, username.strip(), password, client_address(request))
    if result.user is None:
        status = 429 if result.outcome == "throttled" else 401
        return render(request, "login.html", None, status_code=status, next=safe_next(next),
                      error=result.message, username=username)
    request.session.clear()  # a fresh session: no fixation of a pre-login session
    request.session[SESSION_USER] = result.user.user_id
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    principal = resolve_principal(request)
    if principal is not None:
        deps = deps_of(request)
        with deps.pool.connection() as db:
            audit.record(db, actor=principal.name, action="auth.logout", at=deps.clock.now(),
                         client=client_address(request))
    request.session.pop(SESSION_USER, None)
    request.session.pop(SESSION_CSRF, None)
    return RedirectResponse("/login", status_code=303)
