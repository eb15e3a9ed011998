"""``tickstock replay`` and ``tickstock stream`` as the processes a user starts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tickstock.contracts import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOLS = ["SYN0001", "SYN0002", "SYN0003"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tickstock(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tickstock", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _wait(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def test_replay_and_stream_processes(db_dsn: str, redis_url: str, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    env |= {
        "TICKSTOCK_DATABASE_URL": db_dsn, "TICKSTOCK_REDIS_URL": redis_url,
        "TICKSTOCK_DATA_DIR": str(tmp_path), "TICKSTOCK_LOG_FORMAT": "json",
        "TICKSTOCK_MASSIVE_WS_URL": f"ws://127.0.0.1:{port}",
        "TICKSTOCK_MASSIVE_BASE_URL": f"http://127.0.0.1:{port}",
    }
    replay = _tickstock("replay", "--synthetic", "3", "--start", "2024-03-01", "--speed", "0",
                        "--port", str(port), env=env, log=tmp_path / "replay.log")
    stream = _tickstock("stream", "--outside-hours", "--symbols", ",".join(SYMBOLS), env=env,
                        log=tmp_path / "stream.log")
    client = redis.Redis.from_url(redis_url)
    try:
        def stored() -> int:
            with psycopg.connect(db_dsn) as conn:
                row = conn.execute("SELECT count(*) FROM bars WHERE timeframe = '1min'").fetchone()
            return int(row[0]) if row else 0

        _wait(lambda: stored() == 390 * len(SYMBOLS), 90, "a whole synthetic session stored")
        beats = [json.loads(client.get(k) or b"{}")
                 for k in client.scan_iter(match=names.HEARTBEAT_PATTERN)]
        assert [b["role"] for b in beats] == ["stream"]
        assert beats[0]["state"] in ("running", "busy")
        assert client.xlen(names.EVENTS_STREAM) > 390 * len(SYMBOLS)
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(30) == 0, (tmp_path / "stream.log").read_text()
        assert list(client.scan_iter(match=names.HEARTBEAT_PATTERN)) == []
    finally:
        for proc in (stream, replay):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
        client.close()
    output = (tmp_path / "replay.log").read_text()
    assert f"TICKSTOCK_MASSIVE_WS_URL=ws://127.0.0.1:{port}" in output
