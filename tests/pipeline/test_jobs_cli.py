"""``tickstock jobs`` and ``tickstock bus`` against real PostgreSQL and Redis, with a worker
running in-process (the test handler of ``test_worker_fixtures``)."""

from __future__ import annotations

import getpass
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from click.testing import CliRunner, Result
from psycopg_pool import ConnectionPool
from test_worker_fixtures import BARS_PER_SYMBOL, HANDLERS, SLOW_MS_VARIABLE

from tickstock.bus.connection import connect
from tickstock.bus.events import EventPublisher
from tickstock.cli import context
from tickstock.cli.main import cli
from tickstock.contracts import JobStatus, names
from tickstock.contracts import events as ev
from tickstock.core.clock import LiveClock
from tickstock.pipeline.worker import Worker, WorkerOptions
from tickstock.store.db import create_pool
from tickstock.store.jobs import JobStore


@pytest.fixture
def env(db_dsn: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TICKSTOCK_DATABASE_URL", db_dsn)
    monkeypatch.setenv("TICKSTOCK_REDIS_URL", redis_url)
    context.settings.cache_clear()
    yield
    context.settings.cache_clear()


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=4, name="test-cli")
    yield p
    p.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url, name="test-cli")
    yield c
    c.close()


@pytest.fixture
def worker(pool: ConnectionPool, client: redis.Redis) -> Iterator[Callable[[], Worker]]:
    """Starts a worker thread on demand; stopped at the end of the test."""
    started: list[tuple[Worker, threading.Thread]] = []

    def start() -> Worker:
        w = Worker(name="w1", client=client, pool=pool, clock=LiveClock(), handlers=HANDLERS,
                   options=WorkerOptions(claim_idle_s=0.5, block_ms=50))
        thread = threading.Thread(target=w.run, daemon=True)
        thread.start()
        started.append((w, thread))
        return w

    yield start
    for w, thread in started:
        w.stop()
        thread.join(timeout=10)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _submitted_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    first = result.output.split()
    assert first[0] == "submitted", result.output
    return first[1]


def _wait(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_submit_list_show_watch(env, pool, worker) -> None:  # type: ignore[no-untyped-def]
    job_id = _submitted_id(run("jobs", "submit", "historical-load", "--symbols", "aapl,MSFT,FAIL1",
                               "--start", "2024-01-01", "--end", "2024-02-01"))
    listed = run("jobs", "list")
    assert listed.exit_code == 0
    [line] = [x for x in listed.output.splitlines() if x.startswith(job_id)]
    assert "job.historical_load" in line and " queued " in line
    assert line.endswith(f"cli:{getpass.getuser()}")  # who asked
    queued = run("jobs", "show", job_id)
    assert "queued (no worker has started it yet)" in queued.output
    assert '"symbols": ["AAPL", "MSFT", "FAIL1"]' in queued.output

    worker()
    watched = run("jobs", "watch", job_id, "--timeout", "20")
    assert watched.exit_code == 0, watched.output
    assert f"job {job_id} completed: 3/3 processed, 1 failed" in watched.output

    shown = run("jobs", "show", job_id)
    assert shown.exit_code == 0
    assert "status        completed" in shown.output
    assert "symbols       2 ok, 1 failed" in shown.output
    assert "FAIL1" in shown.output and "no data from provider" in shown.output
    assert f'result        {{"bars": {2 * BARS_PER_SYMBOL}}}' in shown.output
    assert shown.output.count("job.symbol_done") == 3 and "job.completed" in shown.output
    completed = run("jobs", "list", "--status", "completed")
    assert job_id in completed.output and "3/3 (1 failed)" in completed.output
    assert job_id not in run("jobs", "list", "--status", "queued").output


def test_watch_shows_live_progress_and_cancel_stops_the_job(  # type: ignore[no-untyped-def]
        env, pool, worker, monkeypatch) -> None:
    monkeypatch.setenv(SLOW_MS_VARIABLE, "150")
    symbols = ",".join(f"S{i}" for i in range(60))
    job_id = _submitted_id(run("jobs", "submit", "multi-timeframe-load", "--symbols", symbols,
                               "--years", "0.5"))
    worker()
    store = JobStore(pool, LiveClock())
    _wait(lambda: (j := store.get(job_id)) is not None and j.processed >= 2)
    cancelled = run("jobs", "cancel", job_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.output.startswith(f"cancel of {job_id} accepted:")
    watched = run("jobs", "watch", job_id, "--timeout", "20")
    assert watched.exit_code == 1
    assert f"job {job_id} cancelled:" in watched.output
    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.CANCELLED and job.processed < 60
    again = run("jobs", "cancel", job_id)
    assert again.exit_code == 1 and "rejected: job" in again.output
    assert "already cancelled" in again.output


def test_watch_follows_a_running_job_to_its_end(env, worker, client, redis_url,  # type: ignore[no-untyped-def]
                                                monkeypatch) -> None:
    monkeypatch.setenv(SLOW_MS_VARIABLE, "100")
    job_id = _submitted_id(run("jobs", "submit", "historical-load", "--symbols",
                               "A,B,FAILX,C,D,E", "--years", "1"))
    results: list[Result] = []
    watcher = threading.Thread(target=lambda: results.append(
        run("jobs", "watch", job_id, "--timeout", "30")))
    watcher.start()  # on a queued job: it waits for the job to start
    _wait(lambda: _following(client, redis_url, "cli-jobs-watch"))
    worker()
    watcher.join(timeout=40)
    [watched] = results
    assert watched.exit_code == 0, watched.output
    assert "started on w1 (attempt 1)" in watched.output  # seen live, from the event stream
    assert "FAILX failed: no data from provider" in watched.output
    assert f"job {job_id} completed: 6/6 processed, 1 failed" in watched.output


@pytest.mark.parametrize(("args", "message"), [
    (["historical-load"], "historical-load: give exactly one of symbols (non-empty) and universe"),
    (["historical-load", "--symbols", "AAPL", "--universe", "sp500"], "give exactly one of"),
    (["historical-load", "--symbols", "AA PL"], "--symbols: String should match pattern"),
    (["historical-load", "--symbols", "AAPL", "--start", "2024-02-01", "--end", "2024-01-01"],
     "start 2024-02-01T00:00:00+00:00 must be before end"),
    (["historical-load", "--symbols", "AAPL", "--timeframes", "2min"], "--timeframes"),
    (["historical-load", "--symbols", "AAPL", "--path", "x.csv"],
     "--path does not apply to historical-load"),
    (["file-import"], "file-import: --path: Field required"),
    (["universe-seed"], "universe-seed: --universe: Field required"),
    (["nightly"], "'nightly' is not one of 'file-import', 'historical-load'"),
])
def test_submit_refuses_bad_options_naming_them(env, client, args, message) -> None:  # type: ignore[no-untyped-def]
    result = run("jobs", "submit", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert client.xlen(names.JOBS_STREAM) == 0  # nothing was queued


def test_unknown_job_and_unreachable_redis(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["jobs", "show", "no-such-job"])
    assert result.exit_code != 0
    assert "no job no-such-job: not in the database and not queued" in str(result.exception)
    monkeypatch.setenv("TICKSTOCK_REDIS_URL", "redis://127.0.0.1:1/0")
    context.settings.cache_clear()
    result = CliRunner().invoke(cli, ["bus", "dead-letters"])
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in str(result.exception)
    assert "TICKSTOCK_REDIS_URL" in str(result.exception)


def test_bus_tail_prints_typed_events(env, client) -> None:  # type: ignore[no-untyped-def]
    publisher = EventPublisher(client, source="tester")
    publisher.publish(ev.JobProgress(job_id="j1", total=4, processed=1, percent=25.0),
                      correlation_id="j1")
    publisher.publish(ev.ServiceError(role="worker", instance="w9", error="disk full"))
    publisher.publish(ev.JobFailed(job_id="j1", total=4, processed=2, error="provider down"),
                      correlation_id="j1")
    result = run("bus", "tail", "--last", "10", "--count", "3")
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 3
    assert " job.progress tester j1 total=4 processed=1 percent=25.0" in lines[0]
    assert " service.error tester role=worker instance=w9 error=disk full" in lines[1]
    assert " job.failed tester j1 total=4 processed=2 error=provider down" in lines[2]

    only_jobs = run("bus", "tail", "--last", "10", "--type", "job.", "--count", "2", "--json")
    decoded = [json.loads(x) for x in only_jobs.output.splitlines()]
    assert [d["type"] for d in decoded] == ["job.progress", "job.failed"]


def _following(client: redis.Redis, redis_url: str, name: str) -> bool:
    """A CLI client ``name`` of this test's database is blocked reading the event stream."""
    db = int(redis_url.rsplit("/", 1)[1])
    return any(c.get("name") == name and c.get("cmd") == "xread" and int(c.get("db", -1)) == db
               for c in client.client_list())


def test_bus_tail_follows_live_events(env, client, redis_url) -> None:  # type: ignore[no-untyped-def]
    publisher = EventPublisher(client, source="tester")
    publisher.publish(ev.JobProgress(job_id="old"))  # before the tail: not shown

    def publish_later() -> None:
        _wait(lambda: _following(client, redis_url, "cli-bus-tail"))
        for n in range(3):
            publisher.publish(ev.JobProgress(job_id="j2", processed=n), correlation_id="j2")

    thread = threading.Thread(target=publish_later)
    thread.start()
    result = run("bus", "tail", "--job", "j2", "--count", "3", "--timeout", "15")
    thread.join()
    lines = result.output.splitlines()
    assert len(lines) == 3 and all(" job.progress tester j2" in x for x in lines)
    assert "processed=2" in lines[2]


def test_bus_dead_letters_and_streams(env, client, worker) -> None:  # type: ignore[no-untyped-def]
    assert run("bus", "dead-letters").output == "no dead letters\n"
    client.xadd(names.JOBS_STREAM, {names.ENVELOPE_FIELD: b'{"v": 9}'})
    client.xadd(names.JOBS_STREAM, {b"junk": b"x" * 500})
    w = worker()
    _wait(lambda: client.xlen(names.DEAD_LETTER_STREAM) == 2)
    result = run("bus", "dead-letters")
    assert result.exit_code == 0
    assert "reason: unknown contract version 9 (this build speaks [1])" in result.output
    assert "reason: entry must have exactly one field 'envelope', has ['junk']" in result.output
    assert result.output.count(f"{names.JOBS_STREAM}") == 2
    assert len(run("bus", "dead-letters", "--json", "--count", "1").output.splitlines()) == 1
    _wait(lambda: w.consumer.pending() == 0)
    streams = run("bus", "streams").output
    assert f"{names.JOBS_STREAM:32}        2 entries" in streams
    assert f"group {names.WORKERS_GROUP}" in streams and "pending      0" in streams


def test_cancel_without_a_worker_is_queued(env, client) -> None:  # type: ignore[no-untyped-def]
    started = datetime.now(UTC)
    result = run("jobs", "cancel", "some-job", "--wait", "0.3")
    assert result.exit_code == 0
    assert "cancel of some-job queued" in result.output
    [(_, fields)] = client.xrange(names.COMMANDS_STREAM)
    command = json.loads(fields[names.ENVELOPE_FIELD.encode()])
    assert command["type"] == "command.cancel" and command["data"]["job_id"] == "some-job"
    assert datetime.fromisoformat(command["ts"]) >= started.replace(microsecond=0)


def test_watch_of_a_dead_lettered_job_says_so(env, worker) -> None:  # type: ignore[no-untyped-def]
    job_id = _submitted_id(run("jobs", "submit", "file-import", "--path", "/nope.csv"))
    worker()  # has no file-import handler: the job is dead-lettered and never gets a row
    watched = run("jobs", "watch", job_id, "--timeout", "20")
    assert watched.exit_code == 1
    assert f"job {job_id} was dead-lettered and never ran: no handler for 'job.file_import'" in (
        watched.output)
