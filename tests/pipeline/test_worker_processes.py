"""Faults with real ``tickstock worker`` processes against real PostgreSQL and Redis:

- ``kill -9`` of the worker in the middle of a job: another worker claims and completes it; no
  job is lost, none completes twice, no stored row is duplicated;
- Redis restarted under running workers and the web role: they reconnect and carry on, queued
  jobs and commands are not lost, the web's live fan-out reads on;
- seed compatibility: a seed-shaped data-load message on ``tickstock.jobs.data_load`` runs as
  a normal job, a cancel on ``tickstock.jobs.control`` cancels it.

The workers run the test handler of ``test_worker_fixtures`` (registered by
``worker_test_handlers`` through ``TICKSTOCK_WORKER_HANDLER_MODULES``), which upserts bars and
sleeps per symbol.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool
from test_worker_fixtures import BARS_PER_SYMBOL, SLOW_MS_VARIABLE
from tests.bus.redis_server import PrivateRedis, _free_port

from tickstock.bus import deadletter
from tickstock.bus.connection import connect
from tickstock.bus.events import EventReader
from tickstock.bus.heartbeat import read_heartbeats
from tickstock.bus.inspection import queued
from tickstock.bus.streams import StreamPublisher
from tickstock.bus.submit import send_command, submit_job
from tickstock.contracts import Envelope, JobStatus, names
from tickstock.contracts.commands import Cancel
from tickstock.contracts.jobs import HistoricalLoad
from tickstock.core.clock import LiveClock
from tickstock.store.db import create_pool
from tickstock.store.jobs import JobStore

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 1, tzinfo=UTC)


class WorkerProcess:
    """``python -m tickstock <role>`` (a worker with the test handler, or the web role); its
    log in ``log``."""

    def __init__(self, env: dict[str, str], log: Path, role: str = "worker") -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tickstock", role], env=env, stdout=out,
                stderr=subprocess.STDOUT)
        self.instance = f"{role}-{os.uname().nodename}-{self.process.pid}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def spawn(db_dsn: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts worker processes on ``redis_url``; every one is stopped at the end."""
    started: list[WorkerProcess] = []

    def start(redis_url: str, *, slow_ms: int = 0, role: str = "worker",
              **settings: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
        env.update({
            "TICKSTOCK_DATABASE_URL": db_dsn, "TICKSTOCK_REDIS_URL": redis_url,
            "TICKSTOCK_DATA_DIR": str(tmp_path / "data"),
            "TICKSTOCK_WORKER_HANDLER_MODULES": "worker_test_handlers",
            "TICKSTOCK_BUS_CLAIM_IDLE_S": "3", "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.5",
            "TICKSTOCK_HEARTBEAT_TTL_S": "3", "TICKSTOCK_LOG_FORMAT": "console",
            SLOW_MS_VARIABLE: str(slow_ms),
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep)})
        env.update({f"TICKSTOCK_{k.upper()}": v for k, v in settings.items()})
        worker = WorkerProcess(env, tmp_path / f"{role}-{len(started)}.log", role)
        started.append(worker)
        return worker

    yield start
    for worker in started:  # all at once: each drains its own threads
        if worker.alive():
            worker.process.send_signal(signal.SIGTERM)
    for worker in started:
        worker.stop()


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=2, name="test-processes")
    yield p
    p.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis").start()
    yield server
    server.stop()


def _load(*symbols: str) -> HistoricalLoad:
    return HistoricalLoad(symbols=symbols, start=T0, end=T1, requested_by="tester")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30,
          workers: tuple[WorkerProcess, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-3000:]}" for w in workers)
            raise AssertionError(f"{what}: not reached in {timeout}s\n{logs}")
        time.sleep(0.1)


def _ready(client: redis.Redis, *workers: WorkerProcess) -> None:
    """Wait until every worker consumes (its heartbeat says so). Starting a worker imports the
    whole pipeline, which takes many seconds on a busy machine; the faults begin after."""
    def consuming() -> bool:
        states = {h.instance: h.state for h in read_heartbeats(client)}
        return all(states.get(w.instance) in ("running", "busy") for w in workers)

    _wait(consuming, "workers consuming", timeout=120, workers=workers)


def _all_finished(store: JobStore, job_ids: list[str]) -> bool:
    return all((j := store.get(i)) is not None and j.finished for i in job_ids)


def _events_of(store: JobStore, job_id: str, event_type: str) -> int:
    return [e.type for e in store.events(job_id)].count(event_type)


def _assert_bars_once(dsn: str, expected: int) -> None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT (symbol, timeframe, ts)) "
                           "FROM bars").fetchone()
    assert row == (expected, expected)


def test_kill_9_mid_job_another_worker_completes_it(  # type: ignore[no-untyped-def]
        spawn, pool, redis_url, db_dsn) -> None:
    client = connect(redis_url, name="test-kill")
    store = JobStore(pool, LiveClock())
    workers = (spawn(redis_url, slow_ms=250), spawn(redis_url, slow_ms=250))
    _ready(client, *workers)
    job_ids = [submit_job(client, _load(*(f"J{n}S{i}" for i in range(8))), source="test").id
               for n in range(3)]
    by_instance = {w.instance: w for w in workers}

    def running_victim() -> str | None:
        for job_id in job_ids:
            job = store.get(job_id)
            if job and job.status is JobStatus.RUNNING and job.processed >= 2:
                return job_id
        return None

    _wait(lambda: running_victim() is not None, "a job half done", workers=workers)
    victim_id = running_victim()
    assert victim_id is not None
    victim_job = store.get(victim_id)
    assert victim_job is not None and victim_job.worker in by_instance
    victim = by_instance[victim_job.worker]
    victim.kill()  # SIGKILL: no clean-up, its entry stays pending with the dead consumer
    survivor = next(w for w in workers if w is not victim)
    _wait(lambda: _all_finished(store, job_ids), "every job finished", workers=workers)
    assert survivor.stop() == 0

    for job_id in job_ids:
        job = store.get(job_id)
        assert job is not None and (job.status, job.processed, job.failed) == (
            JobStatus.COMPLETED, 8, 0)
        assert _events_of(store, job_id, "job.completed") == 1
        assert len(store.symbol_results(job_id)) == 8
    resumed = store.get(victim_id)
    assert resumed is not None and resumed.worker == survivor.instance
    assert resumed.attempts == 2 and _events_of(store, victim_id, "job.started") == 2
    assert victim_job.processed < 8  # it really was killed in the middle
    _assert_bars_once(db_dsn, 3 * 8 * BARS_PER_SYMBOL)
    completed = [env.correlation_id for _, env in EventReader(client, clock=LiveClock()).recent(
        5000) if env.type == "job.completed"]
    assert sorted(completed) == sorted(job_ids)  # announced once each
    assert client.xpending(names.JOBS_STREAM, names.WORKERS_GROUP)["pending"] == 0
    assert client.xlen(names.DEAD_LETTER_STREAM) == 0
    client.close()


def _publish_when_up(client: redis.Redis, envelope: Envelope) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            StreamPublisher(client).publish(names.JOBS_STREAM, envelope)
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _web_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening (yet)


def _web_events_read(port: int) -> float:
    """Events the web role's fan-out has read from the event stream (its own metric)."""
    found = re.search(r"^tickstock_web_events_read_total ([0-9.e+]+)$", _web_get(port, "/metrics")[1],
                      re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def test_workers_and_web_ride_out_a_redis_restart(  # type: ignore[no-untyped-def]
        spawn, pool, private_redis, db_dsn) -> None:
    client = connect(private_redis.url, name="test-restart")
    store = JobStore(pool, LiveClock())
    workers = (spawn(private_redis.url, slow_ms=200), spawn(private_redis.url, slow_ms=200))
    port = _free_port()
    web = spawn(private_redis.url, role="web", web_port=str(port), host="127.0.0.1")
    _ready(client, *workers)
    _wait(lambda: _web_get(port, "/health")[0] == 200, "web healthy", timeout=120,
          workers=(web,))
    before = [submit_job(client, _load(*(f"B{n}S{i}" for i in range(4))), source="test").id
              for n in range(10)]
    _wait(lambda: any((j := store.get(i)) is not None and j.finished for i in before),
          "a first job done", workers=workers)
    # A command just before the restart: the last queued job is to be cancelled on arrival.
    send_command(client, Cancel(job_id=before[-1]), source="test")
    read_before = _web_events_read(port)
    events_before = client.xlen(names.EVENTS_STREAM)
    queued_at_restart = len(queued(client, names.JOBS_STREAM, names.WORKERS_GROUP))
    private_redis.restart(down_s=2.0)
    after = [Envelope.create(_load(*(f"A{n}S{i}" for i in range(4))), source="test")
             for n in range(2)]
    for envelope in after:
        _publish_when_up(client, envelope)
    job_ids = before + [e.id for e in after]
    _wait(lambda: _all_finished(store, job_ids), "every job finished", timeout=45,
          workers=workers)
    _wait(lambda: {w.instance for w in workers} <= {h.instance for h in read_heartbeats(client)},
          "both heartbeats back", workers=workers)
    assert all(w.alive() for w in (*workers, web))
    assert queued_at_restart >= 3  # work was waiting in Redis while it restarted
    # The web role reconnected: healthy again, and its fan-out read every event published
    # since the restart (the stream kept the ones before, the fan-out its position).
    published_since = client.xlen(names.EVENTS_STREAM) - events_before
    assert published_since > 0
    _wait(lambda: _web_events_read(port) >= read_before + published_since,
          "the web fan-out caught up", workers=(web,))
    status, body = _web_get(port, "/health")
    assert status == 200 and json.loads(body)["redis"]["status"] == "up"
    cancelled = store.get(before[-1])
    assert cancelled is not None and (cancelled.status, cancelled.attempts) == (
        JobStatus.CANCELLED, 0)
    completed = [i for i in job_ids if i != before[-1]]
    for job_id in completed:
        job = store.get(job_id)
        assert job is not None and (job.status, job.processed) == (JobStatus.COMPLETED, 4)
        assert _events_of(store, job_id, "job.completed") == 1
    _assert_bars_once(db_dsn, len(completed) * 4 * BARS_PER_SYMBOL)
    _wait(lambda: client.xpending(names.JOBS_STREAM, names.WORKERS_GROUP)["pending"] == 0,
          "nothing pending", workers=workers)
    client.close()


def test_seed_shaped_messages_run_and_cancel_in_a_worker_process(  # type: ignore[no-untyped-def]
        spawn, pool, private_redis) -> None:
    client = connect(private_redis.url, name="test-seed")
    store = JobStore(pool, LiveClock())
    worker = spawn(private_redis.url, slow_ms=150)
    _ready(client, worker)

    def subscribed() -> bool:
        return all(n >= 1 for _, n in client.pubsub_numsub(
            names.LEGACY_DATA_LOAD_CHANNEL, names.LEGACY_CONTROL_CHANNEL))

    _wait(subscribed, "the worker listens on the seed channels", workers=(worker,))
    small = "1b9e6a52-0000-4000-8000-000000000001"
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, json.dumps({  # the seed 003 shape
        "job_id": small, "job_type": "historical_load", "symbols": ["AAPL", "MSFT"],
        "universe_type": None, "timeframes": None, "years": 1, "timespan": "day",
        "requested_by": "admin_ui", "timestamp": "2025-01-22T10:30:00"}))
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, b"not json")
    _wait(lambda: _all_finished(store, [small]), "the seed job done", workers=(worker,))
    job = store.get(small)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert (job.job_type, job.requested_by, job.processed) == (
        "job.historical_load", "admin_ui", 2)

    big = "1b9e6a52-0000-4000-8000-000000000002"
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, json.dumps({
        "job_id": big, "job_type": "multi_timeframe_load",
        "symbols": [f"S{i}" for i in range(60)], "timeframes": ["day"], "years": 2,
        "requested_by": "admin_ui", "timestamp": "2025-01-22T10:31:00"}))
    _wait(lambda: (j := store.get(big)) is not None and j.processed >= 2, "the big job running",
          workers=(worker,))
    client.publish(names.LEGACY_CONTROL_CHANNEL, json.dumps({"action": "cancel",
                                                              "job_id": big}))
    _wait(lambda: _all_finished(store, [big]), "the big job stopped", workers=(worker,))
    job = store.get(big)
    assert job is not None and job.status is JobStatus.CANCELLED and job.processed < 60
    assert job.job_type == "job.multi_timeframe_load"
    [(_, letter)] = deadletter.read(client)
    assert letter.stream == names.LEGACY_DATA_LOAD_CHANNEL
    assert letter.reason.startswith("legacy message refused: body: Invalid JSON")
    assert worker.stop() == 0
    client.close()
