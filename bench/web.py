"""The web role under load, against raw baselines measured in the same run.

1. Status endpoint: requests/s and p99 latency of ``GET /api/processing/daily/status`` (admin
   API token; token check, four PostgreSQL reads, the market calendar) served by a real
   ``tickstock web`` process, under a keep-alive load generator of ``CONNECTIONS`` connections.
   Baseline: a bare Starlette ``GET /status`` returning constant JSON on the same uvicorn
   (``_web_servers.py bare``) under the same generator.
2. Push latency: ``CLIENTS`` WebSocket clients subscribed to pattern detections; an event is
   published on the event stream (XADD, as the pipeline does) and the time until each client
   has it is recorded. Baseline: a raw Redis pub/sub -> WebSocket echo (``_web_servers.py
   echo``) with the same clients and the same envelope bytes.

Servers run in their own processes; this process is the load generator and the clients (the
machine has 2 cores: one for the server, one for the generator). Rounds alternate baseline and
TickStock; medians of the rounds are printed. Result: p99 push latency to 500 browsers as a
ratio to the raw echo's (the status endpoint's numbers are printed beside their baseline).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import uvloop
import websockets
from psycopg.rows import dict_row

from common import median, percentile, report, scratch_database, scratch_redis
from tickstock.bus.events import EventPublisher
from tickstock.contracts import Envelope
from tickstock.contracts.events import PatternDetected
from tickstock.store import users

HERE = Path(__file__).resolve().parent
CONNECTIONS = 16
DURATION_S = 4.0
HTTP_ROUNDS = 3
CLIENTS = 500
EVENTS = 20
EVENT_GAP_S = 0.15
PUSH_ROUNDS = 3
ECHO_CHANNEL = "bench:web:echo"
SEQ = re.compile(rb"bench_(\d+)")
LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run ``cmd`` until the block ends; ready when ``port`` accepts connections."""
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{cmd} exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{cmd} did not listen on {port}")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(15)


# -- HTTP load ------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


async def _connection(port: int, request: bytes, until: float, lat: list[float],
                      errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            found = LENGTH.search(head)
            await reader.readexactly(int(found.group(1)) if found else 0)
            lat.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()


def http_load(port: int, path: str, headers: dict[str, str]) -> Load:
    """Keep-alive GETs of ``path`` from ``CONNECTIONS`` connections for ``DURATION_S``."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()

    async def run() -> Load:
        warm: list[float] = []
        await _connection(port, request, time.perf_counter() + 0.5, warm, [])
        lat: list[float] = []
        errors: list[int] = []
        start = time.perf_counter()
        await asyncio.gather(*(_connection(port, request, start + DURATION_S, lat, errors)
                               for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - start
        return Load(len(lat) / elapsed, 1000 * percentile(lat, 50), 1000 * percentile(lat, 99),
                    len(errors))

    return uvloop.run(run())


# -- push latency ---------------------------------------------------------------------------------


async def _client(url: str, headers: dict[str, str], subscribe: str | None, *,
                  got: list[list[float]], stop: asyncio.Event, opened: list[int]) -> None:
    async with websockets.connect(url, additional_headers=headers, max_queue=None,
                                  open_timeout=120) as ws:
        if subscribe is not None:
            await ws.recv()  # hello
            await ws.send(subscribe)
        opened.append(1)
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(decode=False), 0.5)
            except TimeoutError:
                continue
            found = SEQ.search(raw)
            if found:
                got[int(found.group(1))].append(time.perf_counter())


def push_latency(url: str, headers: dict[str, str], subscribe: str | None,
                 publish: Callable[[Envelope], None]) -> list[float]:
    """Seconds from publishing each event to each client receiving it."""

    async def run() -> list[float]:
        got: list[list[float]] = [[] for _ in range(EVENTS)]
        stop = asyncio.Event()
        opened: list[int] = []
        tasks = []
        for i in range(CLIENTS):  # connect in steps of 25: no connection storm on the listener
            tasks.append(asyncio.create_task(
                _client(url, headers, subscribe, got=got, stop=stop, opened=opened)))
            if (i + 1) % 25 == 0:
                await _wait(lambda n=i + 1: len(opened) >= n, 120, tasks)  # type: ignore[misc]
        log(f"  {len(opened)} clients connected to {url}")
        await asyncio.sleep(1.0)  # subscriptions applied
        sent = []
        for seq in range(EVENTS):
            payload = envelope(seq)
            sent.append(time.perf_counter())
            publish(payload)
            await asyncio.sleep(EVENT_GAP_S)
        await _wait(lambda: all(len(g) == CLIENTS for g in got), 30, tasks)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        missing = sum(CLIENTS - len(g) for g in got)
        if missing:
            raise SystemExit(f"{missing} deliveries missing")
        return [t - sent[seq] for seq, times in enumerate(got) for t in times]

    return uvloop.run(run())


async def _wait(done: Callable[[], bool], timeout: float,
                tasks: list[asyncio.Task[None]]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        failed = [t.exception() for t in tasks if t.done() and t.exception() is not None]
        if failed or time.monotonic() > deadline:
            for t in tasks:
                t.cancel()
            raise RuntimeError(f"clients failed or timed out: {failed[:1]!r}")
        await asyncio.sleep(0.05)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def envelope(seq: int) -> Envelope:
    event = PatternDetected(symbol="AAPL", timeframe="day", ts=datetime(2024, 1, 2, tzinfo=UTC),
                            pattern=f"bench_{seq}", direction="bullish", confidence=0.8)
    return Envelope.create(event, source="bench")


# -- the run --------------------------------------------------------------------------------------


def admin_token(dsn: str) -> str:
    with psycopg.connect(dsn, row_factory=dict_row, autocommit=True) as db:
        user = users.create_user(db, "bench_admin", "bench-password-1", "admin")
        _, secret = users.create_token(db, user.user_id, "bench", datetime.now(UTC))
    return secret


def tickstock_env(dsn: str, redis_url: str, port: int, data_dir: str) -> dict[str, str]:
    return {"TICKSTOCK_DATABASE_URL": dsn, "TICKSTOCK_REDIS_URL": redis_url,
            "TICKSTOCK_WEB_PORT": str(port), "TICKSTOCK_DATA_DIR": data_dir,
            "TICKSTOCK_SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnop",
            "TICKSTOCK_LOG_LEVEL": "WARNING"}


def measure_http(token: str, port: int, bare_port: int) -> tuple[list[Load], list[Load]]:
    auth = {"Authorization": f"Bearer {token}"}
    bare, ours = [], []
    for i in range(HTTP_ROUNDS):
        log(f"http round {i + 1}/{HTTP_ROUNDS}")
        bare.append(http_load(bare_port, "/status", {}))
        ours.append(http_load(port, "/api/processing/daily/status", auth))
    return bare, ours


def measure_push(token: str, port: int, echo_port: int,
                 redis_url: str) -> tuple[list[list[float]], list[list[float]]]:
    client = redis.Redis.from_url(redis_url)
    bus = EventPublisher(client, source="bench")
    auth = {"Authorization": f"Bearer {token}"}
    sub = '{"op": "subscribe", "topics": ["pattern"]}'

    def to_stream(env: Envelope) -> None:
        bus.publish_envelope(env)

    def to_channel(env: Envelope) -> None:
        client.publish(ECHO_CHANNEL, env.encode())

    raw_rounds, our_rounds = [], []
    for i in range(PUSH_ROUNDS):
        log(f"push round {i + 1}/{PUSH_ROUNDS}")
        raw_rounds.append(push_latency(f"ws://127.0.0.1:{echo_port}/ws", {}, None, to_channel))
        our_rounds.append(push_latency(f"ws://127.0.0.1:{port}/ws", auth, sub, to_stream))
    client.close()
    return raw_rounds, our_rounds


@contextmanager
def servers(env: dict[str, str], port: int, bare_port: int, echo_port: int,
            redis_url: str) -> Iterator[None]:
    helper = [sys.executable, str(HERE / "_web_servers.py")]
    with server([*helper, "bare", str(bare_port)], bare_port), \
            server([*helper, "echo", str(echo_port), redis_url], echo_port), \
            server([sys.executable, "-m", "tickstock", "web"], port, env):
        yield


def _ms(rounds: list[list[float]], pct: float) -> float:
    return median([1000 * percentile(r, pct) for r in rounds])


def main() -> int:
    with scratch_database() as dsn, scratch_redis() as redis_url, \
            tempfile.TemporaryDirectory() as data_dir:
        token = admin_token(dsn)
        port, bare_port, echo_port = free_port(), free_port(), free_port()
        env = tickstock_env(dsn, redis_url, port, data_dir)
        with servers(env, port, bare_port, echo_port, redis_url):
            bare, ours = measure_http(token, port, bare_port)
            raw_push, our_push = measure_push(token, port, echo_port, redis_url)
    b_rps, o_rps = median([x.rps for x in bare]), median([x.rps for x in ours])
    print(f"status endpoint ({CONNECTIONS} keep-alive connections, {DURATION_S:g} s x "
          f"{HTTP_ROUNDS} rounds, medians):")
    print(f"  bare Starlette GET /status (baseline): {b_rps:8.0f} req/s  "
          f"p50 {median([x.p50_ms for x in bare]):6.2f} ms  "
          f"p99 {median([x.p99_ms for x in bare]):6.2f} ms")
    print(f"  tickstock /api/processing/daily/status: {o_rps:7.0f} req/s  "
          f"p50 {median([x.p50_ms for x in ours]):6.2f} ms  "
          f"p99 {median([x.p99_ms for x in ours]):6.2f} ms  "
          f"errors {sum(x.errors for x in ours)}")
    print(f"  ratio tickstock/bare req/s: {o_rps / b_rps:.3f}")
    print(f"push latency, event published -> received by each of {CLIENTS} WebSocket clients "
          f"({EVENTS} events x {PUSH_ROUNDS} rounds, medians of rounds):")
    print(f"  raw Redis pub/sub -> WebSocket echo (baseline): p50 {_ms(raw_push, 50):6.2f} ms  "
          f"p99 {_ms(raw_push, 99):6.2f} ms  max {_ms(raw_push, 100):6.2f} ms")
    print(f"  tickstock event stream -> live hub -> /ws:        p50 {_ms(our_push, 50):6.2f} ms  "
          f"p99 {_ms(our_push, 99):6.2f} ms  max {_ms(our_push, 100):6.2f} ms")
    print(f"status_rps = {o_rps:.0f}; status_p99_ms = {median([x.p99_ms for x in ours]):.1f}; "
          f"push_p99_ms = {_ms(our_push, 99):.1f}")
    # The result is the ratio: both fan-outs share the same clients on the same noisy machine.
    return report("web_push_p99_vs_raw_echo", _ms(our_push, 99) / _ms(raw_push, 99), "<=", 1.5)


if __name__ == "__main__":
    raise SystemExit(main())

