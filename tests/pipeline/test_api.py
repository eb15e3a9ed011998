"""The pipeline HTTP API end to end: real PostgreSQL and Redis, commands answered by the real
command handlers consuming the commands stream in a thread (as a worker does)."""

from __future__ import annotations

import threading
import time as time_module
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import httpx
import psycopg
import pytest
import redis
import uvicorn
from psycopg_pool import ConnectionPool

from tickstock.bus.connection import connect
from tickstock.bus.streams import Consumer, ConsumerOptions
from tickstock.contracts import names
from tickstock.core.clock import FrozenClock, LiveClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import nyse
from tickstock.ops.infra import free_port
from tickstock.pipeline.api import create_app
from tickstock.pipeline.daily.service import build_service
from tickstock.pipeline.daily.wiring import build_executor
from tickstock.store.db import create_pool

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# A Saturday: the market is closed and Friday's session is complete and unprocessed.
SATURDAY = datetime.combine(date(2024, 11, 30), time(12, 0), tzinfo=NEW_YORK)


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) SELECT 'S' || g FROM generate_series(1, 30) g")
        conn.execute("INSERT INTO universes (name) VALUES ('test30')")
        conn.execute("INSERT INTO universe_members (universe, symbol) SELECT 'test30', symbol "
                     "FROM symbols")
    pool = create_pool(db_dsn, max_size=6)
    yield pool
    pool.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url, name="test-api")
    yield c
    c.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SATURDAY)


@pytest.fixture
def api(pool: ConnectionPool, client: redis.Redis, clock: FrozenClock) -> Iterator[httpx.Client]:
    executor = build_executor(pool=pool, client=client, calendar=nyse(), clock=clock,
                              instance="worker-test", steps={}, batch_size=10)
    consumer = Consumer(client, group=names.WORKERS_GROUP, name="worker-test",
                        streams=(names.COMMANDS_STREAM,), clock=LiveClock(),
                        options=ConsumerOptions(block_ms=50))
    executor.register(consumer)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    service = build_service(pool=pool, client=client, calendar=nyse(), clock=clock,
                            source="api-test")
    app = create_app(service, token=TOKEN, health=lambda: {"database": "ok", "redis": "ok"})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time_module.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        yield http
    server.should_exit = True
    serving.join(timeout=5)
    stop.set()
    thread.join(timeout=5)


def test_health_is_open_and_everything_else_needs_the_token(api: httpx.Client) -> None:
    assert api.get("/health").json()["status"] == "ok"
    for method, path in [("get", "/runs"), ("get", "/runs/current"), ("get", "/schedule"),
                         ("post", "/runs"), ("put", "/schedule"), ("post", "/imports/retry"),
                         ("post", "/runs/x/cancel"), ("post", "/indicators"),
                         ("post", "/patterns"), ("post", "/imports")]:
        response = api.request(method, path, json={})
        assert response.status_code == 401, (method, path)
        wrong = api.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, (method, path)
    assert api.get("/runs", headers={"X-API-Token": TOKEN}).status_code == 200
    spec = api.get("/openapi.json").json()
    assert {"/health", "/runs", "/runs/current", "/runs/{run_id}", "/schedule",
            "/runs/{run_id}/cancel", "/imports", "/imports/retry", "/indicators",
            "/patterns"} <= set(spec["paths"])


def test_trigger_then_second_trigger_refused_then_cancel(api: httpx.Client) -> None:
    first = api.post("/runs", json={"universes": ["test30"]}, headers=AUTH)
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "accepted" and body["run_id"]
    run_id = body["run_id"]

    status = api.get(f"/runs/{run_id}", headers=AUTH).json()
    assert status["status"] == "running"
    assert status["symbols_total"] == 30
    assert status["session_date"] == "2024-11-29"  # Friday, the last complete session
    assert status["trigger_type"] == "api"
    assert [p["phase"] for p in status["phases"]] == ["data_import"]
    assert status["phases"][0]["total"] == 30
    assert api.get("/runs/current", headers=AUTH).json()["run_id"] == run_id

    second = api.post("/runs", json={"universes": ["test30"]}, headers=AUTH)
    assert second.status_code == 409
    assert second.json()["status"] == "rejected"
    assert run_id in second.json()["reason"] and "one run at a time" in second.json()["reason"]

    queued = api.post("/runs", json={"universes": ["test30"], "queue_if_busy": True},
                      headers=AUTH)
    assert queued.status_code == 202 and "queued behind" in queued.json()["note"]

    cancel = api.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert cancel.status_code == 202 and cancel.json()["status"] == "accepted"
    assert api.get(f"/runs/{run_id}", headers=AUTH).json()["status"] == "cancelled"
    # The queued trigger started when the active run ended.
    current = api.get("/runs/current", headers=AUTH).json()
    assert current["run_id"] == queued.json()["run_id"] and current["status"] == "running"

    again = api.post(f"/runs/{run_id}/cancel", headers=AUTH)
    assert again.status_code == 409 and "already cancelled" in again.json()["reason"]
    assert api.get("/runs/nope", headers=AUTH).status_code == 404


def test_invalid_triggers_are_rejected_with_the_reason(api: httpx.Client) -> None:
    unknown = api.post("/runs", json={"universes": ["nope"]}, headers=AUTH)
    assert unknown.status_code == 409 and "unknown universe(s): nope" in unknown.json()["reason"]
    bad_symbol = api.post("/imports", json={"symbols": ["ZZZZ"]}, headers=AUTH)
    assert bad_symbol.status_code == 409 and "ZZZZ" in bad_symbol.json()["reason"]
    bad_indicator = api.post("/indicators", json={"indicators": ["rsi_999"]}, headers=AUTH)
    assert bad_indicator.status_code == 409 and "rsi_999" in bad_indicator.json()["reason"]
    nothing = api.post("/imports/retry", json={}, headers=AUTH)
    assert nothing.status_code == 409 and "no open import failures" in nothing.json()["reason"]
    # Contract violations never reach the bus: the API answers 422 with the field at fault.
    invalid = api.post("/runs", json={"phases": ["bogus"]}, headers=AUTH)
    assert invalid.status_code == 422


def test_history_is_paged_newest_first(api: httpx.Client, clock: FrozenClock) -> None:
    ids = []
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        response = api.post("/imports", json={"symbols": ["S1", "S2"]}, headers=AUTH)
        assert response.status_code == 202, response.text
        ids.append(response.json()["run_id"])
        assert api.post(f"/runs/{ids[-1]}/cancel", headers=AUTH).status_code == 202
    page1 = api.get("/runs", params={"page": 1, "page_size": 2}, headers=AUTH).json()
    page2 = api.get("/runs", params={"page": 2, "page_size": 2}, headers=AUTH).json()
    assert page1["total"] == 3 and page2["total"] == 3
    assert [r["run_id"] for r in page1["items"] + page2["items"]] == ids[::-1]
    cancelled = api.get("/runs", params={"status": "cancelled"}, headers=AUTH).json()
    assert cancelled["total"] == 3


def test_schedule_get_and_set(api: httpx.Client) -> None:
    schedule = api.get("/schedule", headers=AUTH).json()
    assert schedule["enabled"] and schedule["run_at"] == "16:10"
    # From Saturday noon the next run is Monday 16:10 New York.
    assert schedule["next_run_at"] == "2024-12-02T21:10:00Z"
    changed = api.put("/schedule", json={"run_at": "17:30", "universes": ["test30"]},
                      headers=AUTH)
    assert changed.status_code == 202 and changed.json()["status"] == "accepted"
    schedule = api.get("/schedule", headers=AUTH).json()
    assert schedule["run_at"] == "17:30" and schedule["universes"] == ["test30"]
    assert schedule["next_run_at"] == "2024-12-02T22:30:00Z"
    assert schedule["updated_by"] == "api"
    early = api.put("/schedule", json={"run_at": "09:00"}, headers=AUTH)
    assert early.status_code == 409 and "before the 16:00 close" in early.json()["reason"]
    malformed = api.put("/schedule", json={"run_at": "25:00"}, headers=AUTH)
    assert malformed.status_code == 422
