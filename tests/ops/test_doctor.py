"""``tickstock doctor`` against real servers: all OK when healthy, FAIL with the fix when Redis
is stopped (a private redis-server, never the shared one), WARN for each kind of trouble."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import redis

from tickstock.bus import deadletter
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.contracts import names
from tickstock.core.clock import FrozenClock, LiveClock
from tickstock.ops import doctor, health, infra
from tickstock.ops.infra import free_port
from tickstock.ops.metrics import expected_instances
from tickstock.ops.settings import load_settings

REDIS_SERVER = shutil.which("redis-server")


def _env(db_dsn: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "TICKSTOCK_DATABASE_URL": db_dsn,
        "TICKSTOCK_REDIS_URL": redis_url,
        "TICKSTOCK_DATA_DIR": str(data_dir),
        "TICKSTOCK_PROVIDER": "synthetic",
        **extra,
    }


def _run_cli(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    return subprocess.run([sys.executable, "-m", "tickstock", "doctor"], env={**base, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _rows(output: str) -> dict[str, str]:
    """check name -> state, from the table."""
    rows = {}
    for line in output.splitlines()[1:]:
        for state in ("OK", "WARN", "FAIL"):
            marker = f"  {state:<5}  "
            if marker in line and not line.startswith(" "):
                rows[line.split(marker)[0].strip()] = state
    return rows


@pytest.fixture
def running_roles(redis_url: str) -> Iterator[list[str]]:
    """A heartbeat for every role ``tickstock up`` would run, written as each role does."""
    client = redis.Redis.from_url(redis_url)
    expected = expected_instances(load_settings({}))
    beats = [HeartbeatThread(client, role=role, instance=f"{role}-{i}", clock=LiveClock(),
                             interval_s=1.0, ttl_s=10.0).start()
             for role, count in expected.items() for i in range(count)]
    yield sorted(expected)
    for beat in beats:
        beat.stop()
    client.close()


def test_healthy_system_is_all_ok(
    db_dsn: str, redis_url: str, tmp_path: Path, running_roles: list[str]
) -> None:
    done = _run_cli(_env(db_dsn, redis_url, tmp_path), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert list(rows) == ["configuration", "postgres", "redis", "schema", "heartbeats",
                          "consumers", "dead letters", "daily run", "disk", "provider key"]
    assert set(rows.values()) == {"OK"}, done.stdout
    assert done.stdout.rstrip().endswith("all OK")
    for role in running_roles:
        assert f"{role} 1/1" in done.stdout


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    assert REDIS_SERVER is not None, "redis-server is needed (Debian package redis-server)"
    port = free_port()
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not infra.port_open("127.0.0.1", port):
        assert time.monotonic() < deadline, "private redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0", server
    if server.poll() is None:
        server.terminate()
        server.wait(10)


def test_redis_stopped_is_a_fail_with_the_fix(
    db_dsn: str, tmp_path: Path, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, server = private_redis
    env = _env(db_dsn, url, tmp_path, TICKSTOCK_ROLES="")
    assert health.check_redis(url).state == "OK"

    server.terminate()
    server.wait(10)
    started = time.monotonic()
    down = _run_cli(env, tmp_path)
    assert time.monotonic() - started < 60
    assert down.returncode == 1, down.stdout + down.stderr
    rows = _rows(down.stdout)
    assert rows["redis"] == "FAIL" and rows["postgres"] == "OK"
    assert [name for name, state in rows.items() if state == "FAIL"] == ["redis"]
    lines = down.stdout.splitlines()
    fix = lines[lines.index(next(line for line in lines if line.startswith("redis "))) + 1]
    assert "fix:" in fix and "start Redis or fix TICKSTOCK_REDIS_URL" in fix
    assert rows["heartbeats"] == "WARN" and "not checked: redis is unreachable" in down.stdout


def test_bad_setting_is_a_fail_naming_it(tmp_path: Path) -> None:
    done = _run_cli({"TICKSTOCK_WEB_PORT": "eighty"}, tmp_path)
    assert done.returncode == 1
    assert _rows(done.stdout) == {"configuration": "FAIL"}
    assert "TICKSTOCK_WEB_PORT" in done.stdout


def _context(db_dsn: str, redis_url: str, tmp_path: Path, **extra: str) -> doctor.Context:
    settings = load_settings(_env(db_dsn, redis_url, tmp_path, TICKSTOCK_ROLES="", **extra))
    return doctor.Context(settings, infra.resolve(settings, start=False), LiveClock())


def test_dead_letters_and_old_work_are_warnings(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    old_ms = int((now - timedelta(minutes=20)).timestamp() * 1000)
    client.xadd(names.JOBS_STREAM, {names.ENVELOPE_FIELD: "{}"}, id=f"{old_ms}-0")
    client.xgroup_create(names.JOBS_STREAM, names.WORKERS_GROUP, id="0")
    assert doctor.check_dead_letters(client).state == "OK"
    consumers = doctor.check_consumers(client, now)
    assert consumers.state == "WARN" and "1 waiting, oldest 1200s" in consumers.detail
    client.xreadgroup(names.WORKERS_GROUP, "c1", {names.JOBS_STREAM: ">"})
    assert doctor.check_consumers(client, now).state == "OK"  # delivered, idle only seconds
    deadletter.add(client, deadletter.make(names.JOBS_STREAM, "1-0", {b"x": b"y"},
                                           "unknown contract version 9", now=now), cause="version")
    letters = doctor.check_dead_letters(client)
    assert letters.state == "WARN" and "1 dead letter(s)" in letters.detail
    assert "unknown contract version 9" in letters.detail and "tickstock bus" in letters.fix
    client.close()


def test_overdue_daily_run_is_a_warning(db_dsn: str) -> None:
    # 2026-03-10 is a session; its 16:10 New York run time is 20:10 UTC (EDT since 03-08).
    clock = FrozenClock(datetime(2026, 3, 10, 22, 0, tzinfo=UTC))
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO processing_schedule (name, last_session_run)"
                     " VALUES ('daily', '2026-03-09')")
    check = doctor.check_daily_run(db_dsn, clock)
    assert check.state == "WARN"
    assert "session 2026-03-10 was due 2026-03-10 20:10Z" in check.detail
    assert "110 min late" in check.detail


class _FakeMassive(BaseHTTPRequestHandler):
    """Massive's ``/v1/marketstatus/now``: 200 for the key ``good-key``, else 401."""

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        ok = urlsplit(self.path).path == "/v1/marketstatus/now" and query.get("apiKey") == [
            "good-key"]
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"market": "open"}' if ok else b'{"status": "NOT_AUTHORIZED"}')

    def log_message(self, *args: object) -> None:
        pass


def test_provider_key_is_verified(db_dsn: str, redis_url: str, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeMassive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for key, state in (("good-key", "OK"), ("revoked", "FAIL")):
            ctx = _context(db_dsn, redis_url, tmp_path, TICKSTOCK_PROVIDER="massive",
                           MASSIVE_API_KEY=key, TICKSTOCK_MASSIVE_BASE_URL=base)
            check = doctor.check_provider_key(ctx.settings)
            assert check.state == state, check
            assert key not in check.detail + check.fix
        assert "MASSIVE_API_KEY" in check.fix
    finally:
        server.shutdown()
        server.server_close()
    unreachable = _context(db_dsn, redis_url, tmp_path, TICKSTOCK_PROVIDER="massive",
                           MASSIVE_API_KEY="good-key", TICKSTOCK_MASSIVE_BASE_URL=base)
    assert doctor.check_provider_key(unreachable.settings).state == "WARN"
    missing = load_settings({"TICKSTOCK_PROVIDER": "massive"})
    configuration = doctor.check_configuration(missing, infra.resolve(missing, start=False))
    assert configuration.state == "FAIL" and "MASSIVE_API_KEY" in configuration.fix


def test_disk_check_reports_the_data_directory(db_dsn: str, redis_url: str,
                                               tmp_path: Path) -> None:
    ctx = _context(db_dsn, redis_url, tmp_path / "not-yet")
    check = doctor.check_disk(ctx.settings, ctx.endpoints)
    usage = shutil.disk_usage(tmp_path)
    assert f"{usage.free / doctor.GIB:.1f} GiB free" in check.detail
    assert str(tmp_path) in check.detail and "no embedded server" in check.detail
    assert check.state == "OK"
