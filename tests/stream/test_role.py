"""``tickstock replay`` and ``tickstock stream`` as the processes a user starts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from massive import WebSocketClient

from tickstock.contracts import decode, names
from tickstock.contracts.events import EventBatch
from tickstock.ops.roles.stream import demo_feed
from tickstock.ops.settings import load_settings

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
        "TICKSTOCK_STREAM_METRICS_PORT": "0",
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
        def beats() -> list[tuple[str, str]]:
            return [(b["role"], b["state"]) for b in (
                json.loads(client.get(k) or b"{}")
                for k in client.scan_iter(match=names.HEARTBEAT_PATTERN))]

        # caught up: the health settles on "running" (it may be "degraded" while behind)
        _wait(lambda: beats() == [("stream", "running")], 30, "a running stream heartbeat")
        def events() -> int:  # a batch counted as the events it stands for
            entries = client.xrange(names.EVENTS_STREAM)
            return sum(len(d.symbols) if isinstance(d, EventBatch) else 1 for d in (
                decode(fields[names.ENVELOPE_FIELD.encode()]).data for _, fields in entries))

        # events are published after the bars are stored: wait for the last ones
        _wait(lambda: events() > 390 * len(SYMBOLS), 30, "events")
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


def test_without_a_provider_key_the_role_streams_the_demo_market(
        db_dsn: str, redis_url: str, tmp_path: Path) -> None:
    """``tickstock up`` on a fresh install: no key, no feed configured, no symbols yet."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    env |= {"TICKSTOCK_DATABASE_URL": db_dsn, "TICKSTOCK_REDIS_URL": redis_url,
            "TICKSTOCK_DATA_DIR": str(tmp_path), "TICKSTOCK_LOG_FORMAT": "json",
            "TICKSTOCK_STREAM_METRICS_PORT": "0"}
    stream = _tickstock("stream", env=env, log=tmp_path / "stream.log")
    client = redis.Redis.from_url(redis_url)

    def beats() -> list[dict[str, str]]:
        return [json.loads(client.get(k) or b"{}")
                for k in client.scan_iter(match=names.HEARTBEAT_PATTERN)]

    def stored(symbol: str) -> list[tuple[object, str]]:
        with psycopg.connect(db_dsn) as conn:
            return conn.execute("SELECT ts, source FROM bars WHERE timeframe = '1min' "
                                "AND symbol = %s ORDER BY ts", (symbol,)).fetchall()

    try:
        # the empty universe does not stop the role: it is up and waiting for symbols
        _wait(lambda: [b.get("state") for b in beats()] == ["idle"], 30, "an idle heartbeat")
        with psycopg.connect(db_dsn) as conn:
            conn.execute("INSERT INTO symbols (symbol) VALUES ('AAA'), ('BBB')")
            conn.execute(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, source)"
                " VALUES ('AAA', 'day', '2024-01-02', 50, 51, 49, 50.5, 1000, 'synthetic')")
        _wait(lambda: len(stored("AAA")) >= 3 and len(stored("BBB")) >= 3, 60,
              "demo minutes streamed for the new symbols")
        _wait(lambda: [b.get("state") for b in beats()] == ["running"], 30, "running")
        minutes = stored("AAA")
        assert {source for _, source in minutes} == {"live"}
        assert len({ts for ts, _ in minutes}) == len(minutes)
        with psycopg.connect(db_dsn) as conn:
            first = conn.execute("SELECT open FROM bars WHERE symbol = 'AAA' AND "
                                 "timeframe = '1min' ORDER BY ts LIMIT 1").fetchone()
        assert first is not None and abs(first[0] / 50.5 - 1) < 0.05  # continues the daily chart
        assert client.xlen(names.EVENTS_STREAM) > 0
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(30) == 0, (tmp_path / "stream.log").read_text()
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait(15)
        client.close()


def test_replay_command_plays_the_minute_file_to_the_real_client(
        shared_data: Path, tmp_path: Path) -> None:
    """``tickstock replay --file … --speed 0`` as a user runs it, the official client on the
    other end; the frame pacing of other speeds is the Player's (``test_replay``)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env |= {"TICKSTOCK_DATA_DIR": str(tmp_path), "MASSIVE_API_KEY": "file-key"}
    replay = _tickstock("replay", "--file", str(shared_data / "intraday" / "SP500_NOV2019_IDay.csv"),
                        "--speed", "0", "--port", str(port), "--exit-when-done",
                        env=env, log=tmp_path / "replay.log")
    received: list[Any] = []

    async def main() -> None:
        client = WebSocketClient(api_key="file-key", feed=f"127.0.0.1:{port}", market="stocks",
                                 secure=False, subscriptions=["AM.*"], max_reconnects=0)

        async def handle(msgs: list[Any]) -> None:
            received.extend(msgs)

        for _ in range(100):  # the process is starting
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            await asyncio.sleep(0.1)
        task = asyncio.create_task(client.connect(handle))
        deadline = time.monotonic() + 60
        while len(received) < 1563 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await client.close()
        await task

    try:
        asyncio.run(main())
        assert replay.wait(30) == 0, (tmp_path / "replay.log").read_text()
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.wait(15)
    assert len(received) == 1563  # every minute of the file, in order, named after it
    assert {m.symbol for m in received} == {"SP500"}
    starts = [m.start_timestamp for m in received]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert "played 1563 minutes" in (tmp_path / "replay.log").read_text()


@pytest.mark.parametrize(("environ", "options", "demo"), [
    ({}, {}, True),  # a fresh install: synthetic market, no feed
    ({"TICKSTOCK_PROVIDER": "files"}, {}, True),  # files have no live feed either
    ({"MASSIVE_API_KEY": "k"}, {}, False),  # a key: the real feed
    ({"TICKSTOCK_MASSIVE_WS_URL": "ws://127.0.0.1:8765"}, {}, False),  # a configured replay
    ({}, {"ws_url": "ws://127.0.0.1:8765"}, False),
    ({"MASSIVE_API_KEY": "k"}, {"demo": True}, True),
])
def test_when_the_role_plays_the_demo_market(environ: dict[str, str], options: dict[str, Any],
                                             demo: bool) -> None:
    assert demo_feed(load_settings(environ), options) is demo
