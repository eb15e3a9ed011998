"""Who is asking, and may they: sessions, API tokens, roles and CSRF.

A request is authenticated by either

* an ``Authorization: Bearer tsk_...`` API token (programmatic clients; no CSRF needed because
  a browser never attaches it on its own), or
* the signed session cookie set at login (browsers). Every state-changing request made with
  the cookie must carry the session's CSRF token, in the ``X-CSRF-Token`` header (fetch) or
  the ``csrf_token`` form field (forms) — the synchroniser-token pattern.

The user row is read on every request so disabling an account or changing a role takes
effect at once, not when a cookie expires.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, status
from starlette.requests import HTTPConnection, Request

from tickstock.store import users as user_store
from tickstock.store.users import User
from tickstock.web.config import WebDeps

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_USER = "uid"
SESSION_CSRF = "csrf"


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    via: Literal["session", "token"]

    @property
    def name(self) -> str:
        return self.user.username


class LoginRequired(Exception):
    """An anonymous browser asked for a page: send it to the login form."""


class AdminRequired(Exception):
    """A signed-in non-admin asked for an admin page."""


def deps_of(conn: HTTPConnection) -> WebDeps:
    deps: WebDeps = conn.app.state.deps
    return deps


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def csrf_token(conn: HTTPConnection) -> str:
    """The session's CSRF token, created on first use (also for anonymous login forms)."""
    token = conn.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        conn.session[SESSION_CSRF] = token
    return token


def _bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def resolve_principal(conn: HTTPConnection) -> Principal | None:
    """The authenticated caller, or None. Cached on the connection for the request."""
    if "principal" in conn.scope.get("state", {}):
        cached: Principal | None = conn.state.principal
        return cached
    deps = deps_of(conn)
    principal: Principal | None = None
    token = _bearer(conn)
    if token is not None:
        with deps.pool.connection() as db:
            user = user_store.user_for_token(db, token, deps.clock.now())
        principal = Principal(user, "token") if user is not None else None
    else:
        uid = conn.session.get(SESSION_USER)
        if isinstance(uid, int):
            with deps.pool.connection() as db:
                user = user_store.get_user(db, uid)
            if user is None or user.disabled:
                conn.session.pop(SESSION_USER, None)
            else:
                principal = Principal(user, "session")
    conn.state.principal = principal
    return principal


# -- dependencies for API routes (JSON 401 / 403) -----------------------------------------------


def api_user(request: Request) -> Principal:
    principal = resolve_principal(request)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in, or send an API token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def api_admin(principal: Principal = Depends(api_user)) -> Principal:
    if not principal.user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs the admin role")
    return principal


# -- dependencies for pages (redirect to login / 403 page) ---------------------------------------


def page_user(request: Request) -> Principal:
    principal = resolve_principal(request)
    if principal is None:
        raise LoginRequired()
    return principal


def page_admin(principal: Principal = Depends(page_user)) -> Principal:
    if not principal.user.is_admin:
        raise AdminRequired()
    return principal


# -- CSRF ----------------------------------------------------------------------------------------


async def csrf_guard(request: Request) -> None:
    """Router dependency: refuse a cookie-authenticated state change without the CSRF token.

    Every HTTP router of the app declares it, so no state-changing route can forget it.
    """
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not isinstance(expected, str) or sent is None or not hmac.compare_digest(expected, sent):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "missing or invalid CSRF token: reload the page and try again",
        )
