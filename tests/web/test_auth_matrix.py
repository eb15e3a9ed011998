"""Every route x (anonymous, user, admin) gets the right answer, and every state-changing
route refuses a session request without its CSRF token.

The access class of each route is written down here (``ACCESS``); a route the app serves but
this table does not name fails the test, so a new route cannot ship unclassified.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from tickstock.contracts import names
from tickstock.web.config import WebDeps

from .conftest import ADMIN, USER, Server, csrf_of, login

PUBLIC, LOGIN, PAGE, ADMIN_PAGE, API, ADMIN_API = (
    "public", "login", "page", "admin-page", "api", "admin-api")

ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/static/vendor/{name}"): PUBLIC,
    ("GET", "/login"): LOGIN,
    ("POST", "/login"): LOGIN,
    ("POST", "/logout"): LOGIN,
    ("GET", "/"): PAGE,
    ("GET", "/symbols"): PAGE,
    ("GET", "/symbols/{symbol}"): PAGE,
    ("GET", "/screener"): PAGE,
    ("GET", "/admin"): ADMIN_PAGE,
    ("GET", "/admin/daily-processing"): ADMIN_PAGE,
    ("GET", "/admin/historical-data"): ADMIN_PAGE,
    ("GET", "/admin/services"): ADMIN_PAGE,
    ("GET", "/admin/users"): ADMIN_PAGE,
    ("POST", "/admin/users"): ADMIN_PAGE,
    ("POST", "/admin/users/{username}"): ADMIN_PAGE,
    ("GET", "/api/processing/daily/status"): ADMIN_API,
    ("GET", "/api/processing/daily/runs/{run_id}"): ADMIN_API,
    ("POST", "/api/processing/daily/trigger"): ADMIN_API,
    ("GET", "/api/processing/daily/history"): ADMIN_API,
    ("GET", "/api/processing/daily/schedule"): ADMIN_API,
    ("POST", "/api/processing/daily/schedule"): ADMIN_API,
    ("POST", "/api/processing/daily/cancel"): ADMIN_API,
    ("GET", "/api/processing/market/status"): API,
    ("POST", "/api/processing/import/trigger"): ADMIN_API,
    ("POST", "/api/processing/indicators/trigger"): ADMIN_API,
    ("POST", "/api/processing/patterns/trigger"): ADMIN_API,
    ("POST", "/api/processing/import/retry"): ADMIN_API,
    ("GET", "/api/processing/import/failures"): ADMIN_API,
    ("POST", "/api/jobs"): ADMIN_API,
    ("GET", "/api/jobs"): ADMIN_API,
    ("GET", "/api/jobs/{job_id}"): ADMIN_API,
    ("POST", "/api/jobs/{job_id}/cancel"): ADMIN_API,
    ("POST", "/api/jobs/{job_id}/retry"): ADMIN_API,
    ("GET", "/api/universes"): API,
    ("GET", "/api/universes/{name}"): API,
    ("GET", "/api/symbols"): API,
    ("GET", "/api/bars/{symbol}"): API,
    ("GET", "/api/indicators/{symbol}"): API,
    ("GET", "/api/indicators/{symbol}/latest"): API,
    ("GET", "/api/indicator-names"): API,
    ("GET", "/api/patterns"): API,
    ("GET", "/api/pattern-names"): API,
    ("GET", "/api/patterns/outcomes"): API,
    ("GET", "/api/market/movers"): API,
    ("POST", "/api/screener"): API,
    ("GET", "/api/screens"): API,
    ("PUT", "/api/screens/{name}"): API,
    ("DELETE", "/api/screens/{name}"): API,
    ("GET", "/api/admin/users"): ADMIN_API,
    ("POST", "/api/admin/users"): ADMIN_API,
    ("POST", "/api/admin/users/{username}/role"): ADMIN_API,
    ("POST", "/api/admin/users/{username}/disabled"): ADMIN_API,
    ("GET", "/api/admin/services"): ADMIN_API,
    ("GET", "/api/admin/audit"): ADMIN_API,
}
# Path parameters name things that do not exist: a granted request then gets 404/422, never a
# change to the users the test signs in with.
SAMPLE = {"symbol": "AAPL", "run_id": "no-such-run", "job_id": "no-such-job",
          "name": "no-such-thing", "username": "nobody_here"}
QUERY = {"/api/symbols": "?q=AA", "/api/indicators/{symbol}": "?names=rsi_14",
         "/api/patterns/outcomes": "?pattern=cdl_engulfing"}
GRANTED = {200, 201, 202, 204, 303, 404, 409, 422}


def app_routes(app: FastAPI) -> tuple[set[tuple[str, str]], set[str]]:
    """(method, path) of every HTTP route and the paths of every WebSocket route."""
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop()
        if hasattr(route, "original_router"):  # an included router
            stack.extend(route.original_router.routes)
        elif isinstance(route, APIWebSocketRoute):
            sockets.add(route.path)
        elif isinstance(route, APIRoute) or getattr(route, "methods", None):
            http.update((m, route.path) for m in route.methods if m != "HEAD")
    return http, sockets


def url_of(path: str) -> str:
    return path.format(**SAMPLE) + QUERY.get(path, "")


def request(client: httpx.Client, method: str, path: str, csrf: str | None) -> httpx.Response:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    if method in ("GET", "DELETE"):
        return client.request(method, url_of(path), headers=headers)
    if path.startswith("/admin/"):  # HTML forms
        return client.request(method, url_of(path), headers=headers,
                              data={"csrf_token": csrf or "", "username": "", "action": "x"})
    return client.request(method, url_of(path), headers=headers, json={})


def expected_ok(cls: str, role: str) -> bool | None:
    """True: granted; False: refused; None: a login route, checked by its own tests."""
    if cls == LOGIN:
        return None
    if cls == PUBLIC:
        return True
    if role == "anonymous":
        return False
    if cls in (PAGE, API):
        return True
    return role == "admin"


def check(cls: str, role: str, method: str, path: str, res: httpx.Response) -> str | None:
    """What is wrong with ``res`` for this route and role, or None."""
    want = expected_ok(cls, role)
    where = f"{role} {method} {path} -> {res.status_code}"
    if res.status_code >= 500:
        return f"{where}: server error"
    if want is None or (want and res.status_code in GRANTED):
        return None
    if want:
        return f"{where}: should be granted"
    return _refusal_problem(cls, role, where, res)


def _refusal_problem(cls: str, role: str, where: str, res: httpx.Response) -> str | None:
    if cls in (PAGE, ADMIN_PAGE) and role == "anonymous":
        ok = res.status_code == 303 and res.headers["location"].startswith("/login?next=")
        return None if ok else f"{where}: should redirect to /login"
    status = 401 if role == "anonymous" else 403
    if res.status_code != status:
        return f"{where}: should be {status}"
    if cls in (ADMIN_API, API):
        body = res.json()
        if body.get("error") not in ("unauthorized", "forbidden") or not body.get("message"):
            return f"{where}: not a JSON error body: {res.text[:200]}"
    return None


def test_every_route_is_classified(app: FastAPI) -> None:
    http, sockets = app_routes(app)
    assert http == set(ACCESS), (
        f"unclassified: {sorted(http - set(ACCESS))}; gone: {sorted(set(ACCESS) - http)}")
    assert sockets == {"/ws"}


def _sweep(client: httpx.Client, role: str, csrf: str | None) -> list[str]:
    problems = []
    for (method, path), cls in sorted(ACCESS.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if cls == LOGIN:
            continue
        res = request(client, method, path, csrf)
        problem = check(cls, role, method, path, res)
        if problem:
            problems.append(problem)
    return problems


def test_anonymous_matrix(anon: httpx.Client) -> None:
    # With the login page's CSRF token, so what refuses is the missing login, not CSRF.
    csrf = csrf_of(anon.get("/login").text)
    assert _sweep(anon, "anonymous", csrf) == []


def test_user_matrix(user_client: tuple[httpx.Client, str], web_deps: WebDeps) -> None:
    client, csrf = user_client
    assert _sweep(client, "user", csrf) == []
    # Nothing an admin endpoint does happened for the user's refused requests.
    assert web_deps.redis.xlen(names.COMMANDS_STREAM) == 0
    assert web_deps.redis.xlen(names.JOBS_STREAM) == 0


def test_admin_matrix(admin_client: tuple[httpx.Client, str]) -> None:
    client, csrf = admin_client
    assert _sweep(client, "admin", csrf) == []


def test_admin_pages_show_forbidden_page_to_users(user_client: tuple[httpx.Client, str]) -> None:
    client, _ = user_client
    res = client.get("/admin/users", headers={"Accept": "text/html"})
    assert res.status_code == 403
    assert "text/html" in res.headers["content-type"] and "administrators" in res.text


def test_state_changes_without_csrf_are_refused(admin_client: tuple[httpx.Client, str],
                                                web_deps: WebDeps) -> None:
    client, csrf = admin_client
    changing = [(m, p) for (m, p), cls in ACCESS.items()
                if m in ("POST", "PUT", "DELETE") and cls != PUBLIC]
    assert len(changing) >= 20
    for method, path in changing:
        for sent in (None, "forged-" + csrf[:10]):
            res = request(client, method, path, sent)
            assert res.status_code == 403, f"{method} {path} csrf={sent} -> {res.status_code}"
            assert "CSRF" in res.text, res.text
    # Refused means nothing happened: no command, no job, still signed in.
    assert web_deps.redis.xlen(names.COMMANDS_STREAM) == 0
    assert web_deps.redis.xlen(names.JOBS_STREAM) == 0
    assert client.get("/api/admin/users").status_code == 200


def test_logout_needs_csrf(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        login(client, USER)
        assert client.post("/logout").status_code == 403
        assert client.get("/api/universes").status_code == 200


def _ws_url(server: Server) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


async def _ws_first(server: Server, cookie: str | None, sub: dict[str, Any]) -> dict[str, Any]:
    headers = {"Cookie": cookie} if cookie else {}
    async with websockets.connect(_ws_url(server), additional_headers=headers) as ws:
        hello = json.loads(await ws.recv())
        assert hello["kind"] == "hello"
        await ws.send(json.dumps(sub))
        try:
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
        except TimeoutError:
            reply = {"kind": "silent"}
        return reply


def _cookie(client: httpx.Client) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_websocket_matrix(server: Server) -> None:
    async def anonymous() -> int | None:
        try:
            async with websockets.connect(_ws_url(server)) as ws:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
        return None

    assert asyncio.run(anonymous()) in (1008, 403)
    admin_topics = {"op": "subscribe", "topics": ["run", "job"]}
    with httpx.Client(base_url=server.url) as user, httpx.Client(base_url=server.url) as admin:
        login(user, USER)
        login(admin, ADMIN)
        refused = asyncio.run(_ws_first(server, _cookie(user), admin_topics))
        assert refused["kind"] == "error" and "admin role" in refused["message"]
        market = asyncio.run(_ws_first(server, _cookie(user), {"op": "subscribe",
                                                               "topics": ["pattern"]}))
        assert market["kind"] == "subscribed"
        granted = asyncio.run(_ws_first(server, _cookie(admin), admin_topics))
        assert granted["kind"] == "subscribed"
    # A browser on another site cannot ride the session cookie (cross-site WebSocket hijack).

    async def cross_site(cookie: str) -> str:
        try:
            async with websockets.connect(_ws_url(server), origin="http://evil.example",
                                          additional_headers={"Cookie": cookie}) as ws:
                await ws.recv()
        except (websockets.ConnectionClosed, websockets.InvalidStatus):
            return "refused"
        return "accepted"

    with httpx.Client(base_url=server.url) as admin:
        login(admin, ADMIN)
        assert asyncio.run(cross_site(_cookie(admin))) == "refused"
