"""The worker in-process against real PostgreSQL and Redis: the job lifecycle, idempotent
redelivery, failures, cancellation at symbol boundaries, shutdown hand-over, dead letters,
the read model, events and the seed-compat channels."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg_pool import ConnectionPool
from test_worker_fixtures import BARS_PER_SYMBOL, HANDLERS, SLOW_MS_VARIABLE
from tests.bus.redis_server import PrivateRedis

from tickstock.bus import deadletter
from tickstock.bus.connection import connect
from tickstock.bus.events import EventReader
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.bus.readmodel import read_job
from tickstock.bus.streams import StreamPublisher
from tickstock.bus.submit import send_command, submit_job
from tickstock.contracts import Envelope, JobStatus, names
from tickstock.contracts.commands import Cancel
from tickstock.contracts.jobs import FileImport, HistoricalLoad
from tickstock.core.clock import LiveClock
from tickstock.pipeline.seed_compat import SeedCompatSubscriber
from tickstock.pipeline.worker import Worker, WorkerOptions
from tickstock.store.db import create_pool
from tickstock.store.jobs import JobStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=4, name="test-worker")
    yield p
    p.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url, name="test-worker")
    yield c
    c.close()


@pytest.fixture
def make_worker(pool: ConnectionPool, client: redis.Redis) -> Callable[..., Worker]:
    return _worker_factory(pool, client)


@pytest.fixture
def private_client(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client of a Redis server of this test alone: pub/sub channels ignore the logical
    database, so the legacy channels of the shared server would be shared with every other
    test session on the machine."""
    server = PrivateRedis(tmp_path / "redis").start()
    c = connect(server.url, name="test-worker")
    yield c
    c.close()
    server.stop()


def _worker_factory(pool: ConnectionPool, client: redis.Redis) -> Callable[..., Worker]:
    def make(name: str = "w1", heartbeat: HeartbeatThread | None = None) -> Worker:
        return Worker(name=name, client=client, pool=pool, clock=LiveClock(),
                      handlers=HANDLERS,
                      options=WorkerOptions(claim_idle_s=0.5, block_ms=50),
                      heartbeat=heartbeat)
    return make


def _load(*symbols: str) -> HistoricalLoad:
    return HistoricalLoad(symbols=symbols, start=T0, end=T1, requested_by="tester")


def _event_types(client: redis.Redis, job_id: str) -> list[str]:
    return [env.type for _, env in EventReader(client, clock=LiveClock()).recent(1000)
            if env.correlation_id == job_id]


def _bars(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bars").fetchone()
        return int(row[0]) if row else 0


def _in_thread(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _wait(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_job_lifecycle(make_worker, pool, client, db_dsn) -> None:  # type: ignore[no-untyped-def]
    job_id = submit_job(client, _load("AAPL", "MSFT", "FAIL1"), source="test").id
    make_worker().run(drain=True)

    store = JobStore(pool, LiveClock())
    job = store.get(job_id)
    assert job is not None
    assert (job.status, job.total, job.processed, job.failed, job.attempts) == (
        JobStatus.COMPLETED, 3, 3, 1, 1)
    assert job.requested_by == "tester" and job.worker == "w1"
    assert job.result == {"bars": 2 * BARS_PER_SYMBOL}
    assert [e.type for e in store.events(job_id)] == [
        "job.submitted", "job.started", "job.symbol_done", "job.symbol_done",
        "job.symbol_done", "job.completed"]
    results = {r["symbol"]: r["status"] for r in store.symbol_results(job_id)}
    assert results == {"AAPL": "ok", "MSFT": "ok", "FAIL1": "failed"}
    [failure] = store.open_import_failures(source_id=job_id)
    assert (failure["symbol"], failure["reason"]) == ("FAIL1", "no data from provider")
    assert _bars(db_dsn) == 2 * BARS_PER_SYMBOL

    model = read_job(client, job_id)
    assert model is not None and model.status is JobStatus.COMPLETED and model.percent == 100.0
    types = _event_types(client, job_id)
    assert types[0] == "job.submitted" and types[-1] == "job.completed"
    assert types.count("job.progress") == 4  # set_total + one per symbol


def test_redelivered_finished_job_is_not_rerun(make_worker, pool, client) -> None:  # type: ignore[no-untyped-def]
    envelope = submit_job(client, _load("AAPL"), source="test")
    make_worker().run(drain=True)
    StreamPublisher(client).publish(names.JOBS_STREAM, envelope)  # at-least-once: again
    make_worker("w2").run(drain=True)
    store = JobStore(pool, LiveClock())
    job = store.get(envelope.id)
    assert job is not None and job.attempts == 1 and job.worker == "w1"
    assert [e.type for e in store.events(envelope.id)].count("job.completed") == 1


def test_handler_error_fails_the_job_once(make_worker, pool, client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit_job(client, _load("AAPL", "BOOM", "MSFT"), source="test").id
    worker = make_worker()
    worker.run(drain=True)
    job = JobStore(pool, LiveClock()).get(job_id)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == "RuntimeError: provider exploded"
    assert job.processed == 1 and job.attempts == 1  # failed, not retried
    assert worker.consumer.pending() == 0


def test_cancel_stops_at_a_symbol_boundary(make_worker, pool, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(SLOW_MS_VARIABLE, "150")
    symbols = [f"S{i}" for i in range(20)]
    job_id = submit_job(client, _load(*symbols), source="test").id
    worker = make_worker()
    thread = _in_thread(worker)
    store = JobStore(pool, LiveClock())
    _wait(lambda: (j := store.get(job_id)) is not None and j.processed >= 2)
    command = send_command(client, Cancel(job_id=job_id), source="test")
    _wait(lambda: (j := store.get(job_id)) is not None and j.finished)
    worker.stop()
    thread.join(timeout=5)
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED
    assert 2 <= job.processed < len(symbols)
    # Stored data stays consistent: exactly the finished symbols have their bars.
    done = [r["symbol"] for r in store.symbol_results(job_id)]
    with pool.connection() as conn:
        with_bars = {r["symbol"] for r in conn.execute("SELECT DISTINCT symbol FROM bars")}
    assert set(done) <= with_bars and len(with_bars) <= len(done) + 1
    answers = [env for _, env in EventReader(client, clock=LiveClock()).recent(1000)
               if env.type == "command.accepted"]
    assert [a.data.command_id for a in answers] == [command.id]  # type: ignore[attr-defined]


def test_cancel_before_the_job_arrives(make_worker, pool, client) -> None:  # type: ignore[no-untyped-def]
    job = Envelope.create(_load("AAPL"), source="test")
    send_command(client, Cancel(job_id=job.id), source="test")
    worker = make_worker()
    worker.run(drain=True)  # the cancel first: a placeholder row
    StreamPublisher(client).publish(names.JOBS_STREAM, job)
    worker = make_worker()
    worker.run(drain=True)
    record = JobStore(pool, LiveClock()).get(job.id)
    assert record is not None and record.status is JobStatus.CANCELLED
    assert record.job_type == "job.historical_load" and record.attempts == 0


def test_cancel_of_a_finished_job_is_rejected(make_worker, client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit_job(client, _load("AAPL"), source="test").id
    make_worker().run(drain=True)
    send_command(client, Cancel(job_id=job_id), source="test")
    make_worker().run(drain=True)
    [rejected] = [env for _, env in EventReader(client, clock=LiveClock()).recent(100)
                  if env.type == "command.rejected"]
    assert "already completed" in rejected.data.reason  # type: ignore[attr-defined]


def test_stopping_hands_the_job_to_another_worker(make_worker, pool, client, db_dsn,  # type: ignore[no-untyped-def]
                                                  monkeypatch) -> None:
    monkeypatch.setenv(SLOW_MS_VARIABLE, "100")
    symbols = [f"S{i}" for i in range(10)]
    job_id = submit_job(client, _load(*symbols), source="test").id
    first = make_worker("first")
    thread = _in_thread(first)
    store = JobStore(pool, LiveClock())
    _wait(lambda: (j := store.get(job_id)) is not None and j.processed >= 2)
    first.stop()  # e.g. SIGTERM: stops at the next symbol, leaves the entry pending
    thread.join(timeout=5)
    interrupted = store.get(job_id)
    assert interrupted is not None and interrupted.status is JobStatus.RUNNING
    make_worker("second").run(drain=True)  # claims it after claim_idle_s
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert (job.attempts, job.worker, job.processed) == (2, "second", 10)
    assert _bars(db_dsn) == len(symbols) * BARS_PER_SYMBOL
    assert [e.type for e in store.events(job_id)].count("job.completed") == 1


def test_job_without_handler_is_dead_lettered(make_worker, pool, client) -> None:  # type: ignore[no-untyped-def]
    job_id = submit_job(client, FileImport(path="/nope.csv"), source="test").id
    make_worker().run(drain=True)
    [(_, letter)] = deadletter.read(client)
    assert letter.reason == "no handler for 'job.file_import' in group tickstock:group:workers"
    assert JobStore(pool, LiveClock()).get(job_id) is None


def test_heartbeat_shows_busy_while_a_job_runs(make_worker, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(SLOW_MS_VARIABLE, "300")
    beat = HeartbeatThread(client, role="worker", instance="w1", clock=LiveClock(),
                           interval_s=0.1, ttl_s=2).start()
    worker = make_worker(heartbeat=beat)
    submit_job(client, _load("AAPL", "MSFT"), source="test")
    states: set[str] = set()
    thread = threading.Thread(target=worker.run, kwargs={"drain": True})
    thread.start()
    while thread.is_alive():
        raw = client.get(names.heartbeat_key("worker", "w1"))
        if raw:
            states.add(json.loads(raw)["state"])
        time.sleep(0.05)
    beat.stop()
    assert "busy" in states


def test_seed_compat_channels(pool, private_client) -> None:  # type: ignore[no-untyped-def]
    client, make_worker = private_client, _worker_factory(pool, private_client)
    subscribers = [SeedCompatSubscriber(client, source=f"w{i}", clock=LiveClock()).start()
                   for i in range(2)]  # two workers listening: the job must still run once
    for sub in subscribers:
        assert sub.ready.wait(5)
    legacy = {"job_id": "0d4b1c1e-0000-4000-8000-000000000001", "job_type": "historical_load",
              "symbols": ["AAPL", "msft"], "universe_type": None, "timeframes": None,
              "years": 1, "timespan": "day", "requested_by": "admin_ui",
              "timestamp": "2025-01-22T10:30:00"}
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, json.dumps(legacy))
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, b"{broken")
    client.publish(names.LEGACY_DATA_LOAD_CHANNEL, json.dumps({**legacy, "job_type": "nope"}))
    _wait(lambda: client.xlen(names.JOBS_STREAM) >= 1 and client.xlen(
        names.DEAD_LETTER_STREAM) >= 2)
    time.sleep(0.3)  # the second subscriber has seen everything too
    for sub in subscribers:
        sub.stop()
    make_worker().run(drain=True)
    store = JobStore(pool, LiveClock())
    job = store.get(legacy["job_id"])  # type: ignore[arg-type]
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.job_type == "job.historical_load" and job.requested_by == "admin_ui"
    assert job.params["symbols"] == ["AAPL", "MSFT"] and job.params["timeframes"] == ["day"]
    assert client.xlen(names.JOBS_STREAM) == 1
    reasons = sorted(letter.reason for _, letter in deadletter.read(client))
    assert len(reasons) == 2
    assert reasons[0].startswith("legacy message refused: body: Invalid JSON")
    assert reasons[1].startswith("legacy message refused: job_type:")


def test_seed_compat_cancel(pool, private_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(SLOW_MS_VARIABLE, "150")
    client = private_client
    sub = SeedCompatSubscriber(client, source="w1", clock=LiveClock()).start()
    worker = _worker_factory(pool, client)()
    thread = _in_thread(worker)
    store = JobStore(pool, LiveClock())
    job_id = "0d4b1c1e-0000-4000-8000-000000000002"
    try:
        assert sub.ready.wait(5)
        client.publish(names.LEGACY_DATA_LOAD_CHANNEL, json.dumps({
            "job_id": job_id, "job_type": "multi_timeframe_load",
            "symbols": [f"S{i}" for i in range(20)], "timeframes": ["day"], "years": 2}))
        _wait(lambda: (j := store.get(job_id)) is not None and j.processed >= 1, timeout=20)
        client.publish(names.LEGACY_CONTROL_CHANNEL, json.dumps({"action": "cancel",
                                                                  "job_id": job_id}))
        _wait(lambda: (j := store.get(job_id)) is not None and j.finished)
    finally:
        worker.stop()
        sub.stop()
        thread.join(timeout=5)
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.processed < 20
