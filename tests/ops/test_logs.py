"""Structured logs: JSON off a terminal, readable on one, ids carried, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from tickstock.ops.logs import configure_logging, current_context, log_context
from tickstock.ops.settings import Settings, load_settings

DB_PASSWORD = "pw-Zq81xx"
PROVIDER_KEY = "MKEY0a9b8c7d6e5f"
API_TOKEN = "tok_4f4f4f4f4f4f"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _settings(**env: str) -> Settings:
    return load_settings({
        "TICKSTOCK_DATABASE_URL": f"postgresql://ts:{DB_PASSWORD}@db.example:5432/tickstock",
        "MASSIVE_API_KEY": PROVIDER_KEY,
        "TICKSTOCK_API_TOKEN": API_TOKEN,
        **env,
    })


def _json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_line_has_role_instance_and_ids() -> None:
    out = io.StringIO()
    configure_logging(_settings(TICKSTOCK_LOG_FORMAT="auto"), role="worker", instance="worker-h-1",
                      stream=out)
    logging.getLogger("tickstock.pipeline.jobs").info(
        "job %s done", "j-1", extra={"job_id": "j-1", "run_id": "r-9", "duration_s": 1.5})
    [entry] = _json_lines(out)
    assert entry["role"] == "worker" and entry["instance"] == "worker-h-1"
    assert entry["logger"] == "tickstock.pipeline.jobs" and entry["level"] == "info"
    assert entry["event"] == "job j-1 done"
    assert entry["job_id"] == "j-1" and entry["run_id"] == "r-9" and entry["duration_s"] == 1.5
    assert str(entry["ts"]).endswith("Z")


def test_log_context_binds_ids_for_a_block_and_its_tasks() -> None:
    out = io.StringIO()
    configure_logging(_settings(TICKSTOCK_LOG_FORMAT="json"), role="worker", instance="w",
                      stream=out)
    log = logging.getLogger("t")

    async def in_task() -> None:
        log.info("from a task")

    with log_context(correlation_id="run-1"):
        log.info("outer")
        with log_context(job_id="job-7"):
            assert current_context() == {"correlation_id": "run-1", "job_id": "job-7"}
            log.info("inner", extra={"job_id": "explicit"})
            asyncio.run(in_task())
        log.info("outer again")
    log.info("outside")
    lines = _json_lines(out)
    assert [(e.get("correlation_id"), e.get("job_id")) for e in lines] == [
        ("run-1", None), ("run-1", "explicit"), ("run-1", "job-7"), ("run-1", None), (None, None)]


def test_secrets_never_reach_the_output() -> None:
    settings = _settings(TICKSTOCK_LOG_FORMAT="json")
    out = io.StringIO()
    configure_logging(settings, role="api", instance="a", stream=out)
    log = logging.getLogger("t")
    url = settings.database_url.get_secret_value() if settings.database_url else ""
    log.warning("cannot connect to %s", url)
    log.info("GET https://api.massive.com/v1/x?apiKey=%s&limit=1", PROVIDER_KEY)
    log.info("header Authorization: Bearer %s", API_TOKEN)
    log.info("extras", extra={"password": "hunter22", "api_key": PROVIDER_KEY,
                              "params": {"token": API_TOKEN, "symbol": "AAPL"},
                              "note": f"key is {PROVIDER_KEY}"})
    try:
        raise RuntimeError(f"provider refused {PROVIDER_KEY}")
    except RuntimeError:
        log.exception("failed")
    text = out.getvalue()
    for secret in (DB_PASSWORD, PROVIDER_KEY, API_TOKEN, "hunter22"):
        assert secret not in text
    lines = _json_lines(out)
    assert lines[0]["event"] == "cannot connect to postgresql://ts:***@db.example:5432/tickstock"
    assert lines[3]["params"] == {"token": "***", "symbol": "AAPL"}
    assert "AAPL" in text and "***" in str(lines[4]["exception"])


def test_console_format_on_a_terminal_and_level_from_settings() -> None:
    out = Terminal()
    configure_logging(_settings(TICKSTOCK_LOG_LEVEL="WARNING"), role="web", instance="w",
                      stream=out)
    log = logging.getLogger("tickstock.web")
    log.info("not shown")
    with log_context(run_id="r-1"):
        log.warning("slow request", extra={"route": "/x"})
    [line] = out.getvalue().splitlines()
    assert not line.startswith("{")
    assert "WARNING" in line and "tickstock.web: slow request" in line
    assert line.endswith("[run_id=r-1 route=/x]")


_CHILD = textwrap.dedent("""
    import logging
    from tickstock.ops.logs import configure_logging
    from tickstock.ops.settings import load_settings
    configure_logging(load_settings(), role="stream", instance="stream-1")
    logging.getLogger("tickstock.x").info("hello", extra={"job_id": "j"})
""")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_a_process_writes_json_to_a_pipe() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          env=_child_env(), timeout=60, check=True)
    entry = json.loads(done.stderr.strip().splitlines()[-1])
    assert entry["role"] == "stream" and entry["job_id"] == "j" and entry["event"] == "hello"


def test_a_process_writes_readable_lines_to_a_terminal() -> None:
    leader, follower = os.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-c", _CHILD], stderr=follower,
                                 stdout=subprocess.DEVNULL, env=_child_env())
        os.close(follower)
        child.wait(60)
        chunks = []
        while select.select([leader], [], [], 0.5)[0]:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the child
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    text = b"".join(chunks).decode()
    assert "tickstock.x: hello" in text and "[job_id=j]" in text and "{" not in text


def test_a_bus_handler_logs_with_its_message_ids(redis_url: str) -> None:
    """The consumer binds each message's ids around its handler: a job's lines carry the job
    id and its correlation id without the handler passing them."""
    import threading
    from datetime import UTC, datetime

    import redis

    from tickstock.bus.streams import Consumer, ConsumerOptions
    from tickstock.bus.submit import submit_job
    from tickstock.contracts import names
    from tickstock.contracts.envelope import Envelope
    from tickstock.contracts.jobs import HistoricalLoad
    from tickstock.core.clock import LiveClock

    out = io.StringIO()
    configure_logging(_settings(TICKSTOCK_LOG_FORMAT="json"), role="worker", instance="w-1",
                      stream=out)
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()

    def handle(envelope: Envelope) -> None:
        logging.getLogger("tickstock.pipeline.jobs").info("loading %d symbols", 2)
        stop.set()

    consumer = Consumer(client, group=names.WORKERS_GROUP, name="w-1",
                        streams=(names.JOBS_STREAM,), clock=LiveClock(),
                        options=ConsumerOptions(block_ms=50))
    consumer.register(HistoricalLoad.message_type, handle)
    job = submit_job(client, HistoricalLoad(symbols=("AAA", "BBB"), requested_by="t",
                                            start=datetime(2024, 1, 1, tzinfo=UTC),
                                            end=datetime(2024, 2, 1, tzinfo=UTC)),
                     source="test", correlation_id="run-42")
    consumer.run(stop)
    client.close()
    [line] = [e for e in _json_lines(out) if e["event"] == "loading 2 symbols"]
    assert line["correlation_id"] == "run-42" and line["message_id"] == job.id
    assert line["message_type"] == "job.historical_load" and line["instance"] == "w-1"
