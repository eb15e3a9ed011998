"""Web fixtures: an app built on the real test PostgreSQL and Redis, users of each role, and
a uvicorn server on a free port for browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.ops.infra import free_port
from tickstock.store import users as user_store
from tickstock.store.db import create_pool
from tickstock.web.app import create_app
from tickstock.web.config import Pool, WebConfig, WebDeps

ADMIN = ("alice_admin", "admin-password-1")
USER = ("bob_user", "user-password-1")
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


@dataclass
class WebEnv:
    deps: WebDeps
    app: FastAPI


@pytest.fixture
def web_deps(db_dsn: str, redis_url: str) -> Iterator[WebDeps]:
    pool = cast(Pool, create_pool(db_dsn, min_size=1, max_size=8, name="web-test"))
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    config = WebConfig(secret_key=SECRET, version="test", instance="web-test",
                       client_max_failures=8)
    with pool.connection() as db:
        user_store.create_user(db, ADMIN[0], ADMIN[1], "admin")
        user_store.create_user(db, USER[0], USER[1], "user")
    yield WebDeps(pool=pool, redis=client, clock=LiveClock(), config=config, calendar=nyse())
    client.close()
    pool.close()


@pytest.fixture
def app(web_deps: WebDeps) -> FastAPI:
    return create_app(web_deps)


def csrf_of(html: str) -> str:
    return html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def login(client: httpx.Client, who: tuple[str, str]) -> str:
    """Sign ``client`` in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    res = client.post("/login", data={"username": who[0], "password": who[1],
                                      "csrf_token": token, "next": "/"},
                      follow_redirects=False)
    assert res.status_code == 303, res.text
    return csrf_of(client.get("/").text)


class Server:
    """The app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def server(app: FastAPI) -> Iterator[Server]:
    with Server(app) as running:
        yield running


def now() -> datetime:
    return datetime.now(UTC)


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


@pytest.fixture
def anon(server: Server) -> Iterator[httpx.Client]:
    with _client(server) as client:
        yield client


@pytest.fixture
def admin_client(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    with _client(server) as client:
        yield client, login(client, ADMIN)


@pytest.fixture
def user_client(server: Server) -> Iterator[tuple[httpx.Client, str]]:
    with _client(server) as client:
        yield client, login(client, USER)
