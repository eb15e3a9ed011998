"""``tickstock api`` and ``tickstock scheduler`` as the processes an operator starts: heartbeat,
health, token-protected writes, OpenAPI, leader lease between two schedulers, clean stop."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from proc_support import RoleProcess, heartbeat_of, role_env, start_role, wait_for

from tickstock.contracts import names
from tickstock.contracts.commands import TriggerDailyProcessing
from tickstock.contracts.envelope import decode
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.ops.infra import free_port
from tickstock.ops.roles.api import api_token
from tickstock.ops.settings import load_settings
from tickstock.pipeline.commands import CATCH_UP_REQUESTER
from tickstock.pipeline.scheduler import LEASE_NAME, latest_due_session
from tickstock.store.db import create_pool
from tickstock.store.leases import LeaseRepository
from tickstock.store.schedule import ScheduleRepository

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "role-test-token"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_api_process_serves_health_openapi_and_token_protected_writes(
    db_dsn: str, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    port = free_port()
    env = role_env(db_dsn, redis_url, tmp_path, TICKSTOCK_API_PORT=str(port),
                   TICKSTOCK_API_TOKEN=TOKEN)
    api = start_role("api", "api", env=env, log_dir=tmp_path)
    try:
        wait_for(lambda: (b := heartbeat_of(client, api)) is not None and b.state == "running",
                 60, "the api heartbeat", api)
        beat = heartbeat_of(client, api)
        assert beat is not None and beat.role == "api"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            health = http.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["checks"] == {"database": "ok", "redis": "ok"}
            spec = http.get("/openapi.json").json()
            assert {"/runs", "/schedule", "/runs/{run_id}/cancel", "/imports/retry"} <= \
                set(spec["paths"])
            assert http.get("/runs").status_code == 401
            assert http.post("/runs", json={}).status_code == 401
            assert client.xlen(names.COMMANDS_STREAM) == 0  # nothing reached the bus
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert http.get("/runs", headers=auth).json()["total"] == 0
            # No worker runs here: the command is queued and reported as submitted.
            sent = http.post("/runs", params={"wait": 0}, json={"universes": ["sp500"]},
                             headers=auth)
            assert sent.status_code == 202 and sent.json()["status"] == "submitted"
            assert client.xlen(names.COMMANDS_STREAM) == 1
            assert "tickstock_build_info" in http.get("/metrics").text
        assert api.terminate() == 0
        assert heartbeat_of(client, api) is None  # a clean stop removes the heartbeat at once
    finally:
        if api.proc.poll() is None:
            api.kill()


def test_api_token_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = load_settings({"TICKSTOCK_DATA_DIR": str(tmp_path)})
    token = api_token(settings)
    assert len(token) >= 32
    path = tmp_path / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert api_token(settings) == token
    chosen = load_settings({"TICKSTOCK_DATA_DIR": str(tmp_path), "TICKSTOCK_API_TOKEN": "mine"})
    assert api_token(chosen) == "mine"


def _triggers(client: redis.Redis) -> list[TriggerDailyProcessing]:
    rows = client.xrange(names.COMMANDS_STREAM)
    return [decode(fields[names.ENVELOPE_FIELD.encode()]).payload(TriggerDailyProcessing)
            for _, fields in rows]


def test_two_scheduler_processes_one_leader_one_catch_up(
    db_dsn: str, redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    # The schedule last ran a week before the latest due session: the scheduler was down.
    calendar = nyse()
    now = LiveClock().now()
    pool = create_pool(db_dsn, max_size=2)
    schedules = ScheduleRepository(pool)
    probe = schedules.ensure(now, None)
    due = latest_due_session(probe, calendar, now)
    assert due is not None
    schedules.claim_session(due - timedelta(days=7))
    env = role_env(db_dsn, redis_url, tmp_path)
    first = start_role("scheduler-1", "scheduler", env=env, log_dir=tmp_path)
    second = start_role("scheduler-2", "scheduler", env=env, log_dir=tmp_path)
    roles = (first, second)
    leases = LeaseRepository(pool)
    try:
        def states() -> set[str]:
            beats = [heartbeat_of(client, r) for r in roles]
            return {b.state for b in beats if b is not None}

        wait_for(lambda: states() == {"running", "idle"}, 60, "a leader and a standby", *roles)
        wait_for(lambda: len(_triggers(client)) == 1, 20, "the catch-up trigger", *roles)
        trigger = _triggers(client)[0]
        assert trigger.run_id == f"daily-{due.isoformat()}"
        assert trigger.requested_by == CATCH_UP_REQUESTER and trigger.queue_if_busy
        assert schedules.get() is not None and schedules.get().last_session_run == due  # type: ignore[union-attr]

        lease = leases.get(LEASE_NAME)
        assert lease is not None
        leader: RoleProcess = next(r for r in roles
                                   if (b := heartbeat_of(client, r)) and b.instance == lease.holder)
        standby = second if leader is first else first
        assert leader.terminate() == 0  # a clean stop releases the lease at once
        wait_for(lambda: (b := heartbeat_of(client, standby)) is not None
                 and b.state == "running", 20, "the standby to take over", standby)
        taken = leases.get(LEASE_NAME)
        assert taken is not None and taken.holder != lease.holder
        assert len(_triggers(client)) == 1  # the session is not submitted twice
        assert standby.terminate() == 0
        assert leases.get(LEASE_NAME) is None
    finally:
        for role in roles:
            if role.proc.poll() is None:
                role.kill()
        pool.close()
