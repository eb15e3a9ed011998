"""Issue 9's done-when with real role processes.

The platform is ``tickstock up`` running web, api, worker and stream, and the scheduler started
beside it as an operator starts one role (``python -m tickstock scheduler``), so that killing it
leaves it dead instead of restarted; all on the test's PostgreSQL and Redis databases, with
metrics where the settings put them (``/metrics`` of the web app and the pipeline API, the
metrics ports of worker, scheduler and stream).

1. A daily run (triggered through the pipeline API) and three data-load jobs (on the bus) are in
   progress: scraping every endpoint shows the run's progress moving and the job counts changing,
   and each role's own counters (requests, batches, bars) moving with them.
2. ``tickstock doctor`` on that running platform prints all OK.
3. Killing a role (SIGKILL, no clean stop) lets its heartbeat go stale: the scraped values make the
   role-down rule's expression true for that role only (evaluated here and, when promtool is
   installed, by ``promtool test rules`` together with the target-down rule).

The platform is started once for the module: starting five Python processes is the slow part
on a loaded machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from tickstock.bus.heartbeat import read_heartbeats
from tickstock.bus.submit import submit_job
from tickstock.contracts import names
from tickstock.contracts.jobs import HistoricalLoad
from tickstock.ops.infra import free_port

from .metrics_support import (
    PROMTOOL,
    ROLE_DOWN,
    ROOT,
    Sample,
    alert_rules,
    max_without_target,
    promtool_rules_test,
    scrape,
    series_selector,
    value,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLES = ("web", "api", "worker", "scheduler", "stream")
TOKEN = "e2e-metrics-token"
UNIVERSE = "e2e"
SYMBOLS = [f"E2E{i:02d}" for i in range(1, 9)]
JOB_SYMBOLS = [("JOBA1", "JOBA2", "JOBA3"), ("JOBB1", "JOBB2", "JOBB3"), ("JOBC1", "JOBC2")]
STARTUP_TIMEOUT_S = 240.0  # five interpreters importing on a loaded machine
#: Run beside `tickstock up` (which would restart it at once), so killing it leaves it dead.
VICTIM = "scheduler"


@dataclass
class Role:
    role: str
    port: int
    metrics_path: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.metrics_path}"

    @property
    def target(self) -> dict[str, str]:
        """The labels Prometheus gives this target (``ops/prometheus/prometheus.yml``)."""
        return {"instance": f"127.0.0.1:{self.port}", "job": f"tickstock-{self.role}"}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Platform:
    roles: dict[str, Role]
    client: redis.Redis
    dsn: str
    api: str
    env: dict[str, str]
    cwd: Path
    killed: set[str] = field(default_factory=set)

    def scrape_all(self) -> dict[str, list[Sample]]:
        return {name: scrape(role.url) for name, role in self.roles.items()
                if name not in self.killed}


def _clean(dsn: str, redis_url: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'")]
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[])", (SYMBOLS,))
        conn.execute("INSERT INTO universes (name) VALUES (%s)", (UNIVERSE,))
        conn.execute("INSERT INTO universe_members (universe, symbol) SELECT %s, unnest(%s::text[])",
                     (UNIVERSE, SYMBOLS))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()


def _env(dsn: str, redis_url: str, data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    return env | {
        "TICKSTOCK_DATABASE_URL": dsn, "TICKSTOCK_REDIS_URL": redis_url,
        "TICKSTOCK_DATA_DIR": str(data_dir), "TICKSTOCK_LOG_FORMAT": "json",
        "TICKSTOCK_PROVIDER": "synthetic", "TICKSTOCK_ROLES": ",".join(ROLES),
        "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.5", "TICKSTOCK_HEARTBEAT_TTL_S": "3",
        "TICKSTOCK_API_TOKEN": TOKEN,
        "TICKSTOCK_WEB_PORT": str(ports["web"]), "TICKSTOCK_API_PORT": str(ports["api"]),
        "TICKSTOCK_WORKER_METRICS_PORT": str(ports["worker"]),
        "TICKSTOCK_SCHEDULER_METRICS_PORT": str(ports["scheduler"]),
        "TICKSTOCK_STREAM_METRICS_PORT": str(ports["stream"]),
        # The data-load jobs run the test handler of the worker tests: per symbol it upserts a
        # few bars and then waits, so the jobs are seen running.
        "TICKSTOCK_WORKER_HANDLER_MODULES": "test_worker_fixtures",
        "TICKSTOCK_TEST_SLOW_MS": "500",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "tests" / "pipeline"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }


def _wait_for(check: Callable[[], object], timeout_s: float, what: str, platform: Platform) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for name, role in platform.roles.items():
            if name not in platform.killed and role.proc.poll() is not None:
                raise AssertionError(f"{name} exited with {role.proc.returncode} while waiting "
                                     f"for {what}:\n{role.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {r.role}\n{r.output()[-1500:]}" for r in platform.roles.values())
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{logs}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _ready(platform: Platform) -> bool:
    beating = {beat.role for beat in read_heartbeats(platform.client)}
    return all(role.role in beating and _answers(role.url) for role in platform.roles.values())


@pytest.fixture(scope="module")
def platform(session_db_dsn: str, session_redis_url: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    _clean(session_db_dsn, session_redis_url)
    tmp = tmp_path_factory.mktemp("platform")
    ports = {role: free_port() for role in ROLES}
    env = _env(session_db_dsn, session_redis_url, tmp / "data", ports)
    supervised = [r for r in ROLES if r != VICTIM]
    up = _start(["up", "--no-demo", "--roles", ",".join(supervised)], env, tmp / "up.log")
    victim = _start([VICTIM], env, tmp / f"{VICTIM}.log")
    roles = {name: Role(name, ports[name], "/metrics" if name in ("web", "api") else "/",
                        victim if name == VICTIM else up, tmp / f"{name if name == VICTIM else 'up'}.log")
             for name in ROLES}
    client = redis.Redis.from_url(session_redis_url)
    found = Platform(roles, client, session_db_dsn, f"http://127.0.0.1:{ports['api']}", env, tmp)
    try:
        _wait_for(lambda: _ready(found), STARTUP_TIMEOUT_S, "every role's heartbeat and metrics",
                  found)
        yield found
    finally:
        for proc in (up, victim):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # `tickstock up` stops its roles first
        for proc in (up, victim):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        client.close()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tickstock", *args], env=env,
                                cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)


# -- 1. a daily run and jobs in progress ---------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    at: float
    role: str
    samples: list[Sample]

    def get(self, name: str, **labels: str) -> float | None:
        return value(self.samples, name, **labels)

    def jobs(self, status: str) -> float:
        return self.get("tickstock_jobs", job_type="job.historical_load", status=status) or 0.0


def _trigger_run_and_jobs(platform: Platform) -> str:
    run_id = "e2e-metrics-run"
    response = httpx.post(f"{platform.api}/runs", params={"wait": 0},
                          json={"run_id": run_id, "universes": [UNIVERSE],
                                "skip_market_check": True},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 202, response.text
    for symbols in JOB_SYMBOLS:
        submit_job(platform.client, HistoricalLoad(
            symbols=symbols, start=datetime(2024, 1, 1, tzinfo=UTC),
            end=datetime(2024, 2, 1, tzinfo=UTC), requested_by="e2e"), source="e2e-test")
    return run_id


def _observe_until_done(platform: Platform, run_id: str, timeout_s: float) -> list[Observation]:
    seen: list[Observation] = []

    def done() -> bool:
        for role, samples in platform.scrape_all().items():
            seen.append(Observation(time.monotonic(), role, samples))
        last = seen[-1]
        return (last.get("tickstock_run_info", run_id=run_id, status="completed") == 1
                and last.jobs("completed") == len(JOB_SYMBOLS))

    started = time.monotonic()
    _wait_for(done, timeout_s, f"run {run_id} and the jobs to complete", platform)
    print(f"run and jobs done in {time.monotonic() - started:.1f}s, {len(seen)} scrapes")
    return seen


def test_every_endpoint_shows_the_run_progress_and_job_counts_moving(platform: Platform) -> None:
    before = platform.scrape_all()
    assert set(before) == set(ROLES)
    run_id = _trigger_run_and_jobs(platform)
    seen = _observe_until_done(platform, run_id, timeout_s=120)

    # Progress: every endpoint reports it; in time order it only grows, passes through values
    # between 0 and 1 and ends at 1 with the run completed.
    progress = [(o.at, o.get("tickstock_run_progress_ratio")) for o in seen
                if o.get("tickstock_run_info", run_id=run_id) == 1]
    values = [p for _, p in sorted(progress) if p is not None]
    assert values == sorted(values), values
    assert any(0 < p < 1 for p in values), values
    assert values[-1] == 1.0
    assert {o.role for o in seen if o.get("tickstock_run_progress_ratio") is not None} == set(ROLES)
    phases_done = [o.get("tickstock_run_phase_items", phase="data_import", state="processed")
                   for o in seen if o.role == "api"]
    assert phases_done[-1] == len(SYMBOLS)

    # Jobs: the counts change while they run and every endpoint ends with the three completed.
    counts = [(o.jobs("running"), o.jobs("completed")) for o in seen]
    assert len(set(counts)) >= 3, counts  # e.g. none yet, one running, ..., all completed
    final = platform.scrape_all()
    for role, samples in final.items():
        assert value(samples, "tickstock_jobs", job_type="job.historical_load",
                     status="completed") == len(JOB_SYMBOLS), role
        assert value(samples, "tickstock_run_progress_ratio") == 1.0, role
        assert value(samples, "tickstock_role_instances", role="worker") == 1, role

    # Each role's own counters moved with the work it did.
    worker_before, worker = before["worker"], final["worker"]
    assert (value(worker, "tickstock_daily_symbols_total", phase="data_import",
                  result="processed") or 0) == len(SYMBOLS)
    assert (value(worker, "tickstock_bars_ingested_total", source="synthetic") or 0) > 0
    received = value(worker, "tickstock_bus_messages_received_total", stream=names.JOBS_STREAM)
    assert received == len(JOB_SYMBOLS)
    assert (value(worker_before, "tickstock_bus_messages_received_total",
                  stream=names.JOBS_STREAM) or 0) == 0
    assert value(final["api"], "tickstock_api_http_requests_total", route="/runs", method="POST",
                 status="202") == 1
    assert (value(final["worker"], "tickstock_db_pool_requests_total", pool="worker") or 0) > (
        value(worker_before, "tickstock_db_pool_requests_total", pool="worker") or 0)


# -- 2. the doctor agrees the platform is healthy -------------------------------------------------
def test_doctor_on_the_running_platform_is_all_ok(platform: Platform) -> None:
    done = subprocess.run([sys.executable, "-m", "tickstock", "doctor"], env=platform.env,
                          cwd=platform.cwd, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("all OK"), done.stdout
    for role in ROLES:
        assert f"{role} 1/1" in done.stdout


# -- 3. a killed role ----------------------------------------------------------------------------
def _role_down(scrapes: dict[str, list[Sample]]) -> dict[str, bool]:
    """The role-down rule's expression over the targets' scrapes, per role."""
    assert next(r for r in alert_rules() if r["alert"] == "TickStockRoleDown")["expr"] == ROLE_DOWN
    by_labels = max_without_target(scrapes.values(), "tickstock_role_instances")
    return {dict(labels)["role"]: v == 0 for labels, v in by_labels.items()}


def test_a_killed_role_goes_stale_and_fires_role_down(platform: Platform, tmp_path: Path) -> None:
    alive = platform.scrape_all()
    assert _role_down(alive) == dict.fromkeys(ROLES, False)
    victim = platform.roles[VICTIM]
    beat = next(b for b in read_heartbeats(platform.client) if b.pid == victim.proc.pid)

    victim.proc.send_signal(signal.SIGKILL)  # no clean stop: the heartbeat key must expire
    victim.proc.wait(10)
    platform.killed.add("scheduler")
    _wait_for(lambda: value(scrape(platform.roles["api"].url), "tickstock_role_instances",
                            role="scheduler") == 0, 30, "the scheduler heartbeat to go stale",
              platform)
    dead = platform.scrape_all()
    assert platform.client.exists(names.heartbeat_key("scheduler", beat.instance)) == 0
    assert not _answers(victim.url)
    for samples in dead.values():
        assert value(samples, "tickstock_heartbeat_age_seconds", role="scheduler") is None
    assert _role_down(dead) == {role: role == "scheduler" for role in ROLES}

    if PROMTOOL:
        _promtool_fires(platform, alive, dead, tmp_path)


def _promtool_fires(platform: Platform, alive: dict[str, list[Sample]],
                    dead: dict[str, list[Sample]], tmp: Path) -> None:
    """The scrapes as Prometheus stores them: 0..45 s alive, from 60 s the killed target gone
    (its ``up`` 0, its series marked stale); the rules fire after their ``for``."""
    series = []
    for name, role in platform.roles.items():
        gone = name in platform.killed
        series.append({"series": series_selector("up", role.target),
                       "values": " ".join(["1"] * 4 + ["0" if gone else "1"] * 10)})
        for sample in alive[name]:
            if sample.name != "tickstock_role_instances":
                continue
            # A target that stops answering gets staleness markers: its series end at once.
            now = None if gone else value(dead[name], sample.name, **sample.labels)
            after = "stale" if now is None else f"{now:g}"
            points = [f"{sample.value:g}"] * 4 + [after] + ["_" if gone else after] * 9
            series.append({"series": series_selector(sample.name, {**sample.labels, **role.target}),
                           "values": " ".join(points)})
    scheduler = platform.roles["scheduler"].target
    promtool_rules_test(PROMTOOL or "", tmp, series, [
        {"eval_time": "45s", "alertname": "TickStockRoleDown", "exp_alerts": []},
        {"eval_time": "2m30s", "alertname": "TickStockRoleDown",
         "exp_alerts": [{"exp_labels": {"role": "scheduler", "severity": "critical"}}]},
        {"eval_time": "3m15s", "alertname": "TickStockTargetDown",
         "exp_alerts": [{"exp_labels": {**scheduler, "severity": "warning"}}]},
    ])
