"""Daily processing: wall time of a full daily update over a 5,000-symbol synthetic universe.

The update is what runs every evening: one new session for every symbol, all four phases
(data import → indicators → patterns → outcome statistics), through the bus, executed by worker
processes that share the batches (consumer group) — once with 1 worker process, once with 2.

Setup (not timed): a scratch database and a private redis-server; every symbol gets
``HISTORY`` sessions of bars from the synthetic market, and its indicators and patterns are
marked computed up to the last of them (``analysis_watermarks``), as after the previous
evening's run. The run with 1 worker
adds session D, the run with 2 workers session D+1: the same work each time. The worker
processes are started, have imported the package and loaded the analysis engine's compiled
kernels before the run is triggered, as a worker role that has been up since an earlier run.

Baseline measured in the same run: the bare TA-Lib time of the indicator phase's work — every
TA-Lib function of the default indicator set over the same tails, in one process, no I/O, no
bookkeeping. Printed: wall time and symbols/s per worker count, the phase times, and the ratio
of the indicator phase (1 worker) to that baseline. Last line: symbols/s with 2 workers.

Also printed, to tell "the work is too slow" from "the workers wait": per run, the share of
each phase the workers spent inside batches, and the CPU seconds per symbol of the worker
processes and of their PostgreSQL backends (read from ``/proc``; PostgreSQL on another host is
not counted) with how many cores the run got. The machine is shared: a run that got one core
of two cannot go faster with a second worker.

    .venv/bin/python bench/daily.py [--symbols N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import NamedTuple

import psycopg

from common import report, scratch_database
from tickstock.contracts.common import Timeframe
from tickstock.core.clock import LiveClock
from tickstock.core.timeutil import NEW_YORK, session_day_start_utc
from tickstock.market.calendar import nyse

HISTORY = 600  # sessions per symbol: more than the tail the analysis phases read (252 + new)
FIRST_RUN_SESSION = date(2024, 6, 3)
TARGET = 1000.0
#: Tables a daily run writes (vacuumed before each timed run, untimed)
_WRITTEN = ("bars", "indicator_values", "pattern_detections",
            "analysis_watermarks", "pattern_outcomes", "processing_batches")


class ShiftedClock(LiveClock):
    """The live clock moved by ``offset`` (to another evening): time flows, durations are real.

    The offset is computed once by the parent and passed to every worker, so the workers'
    clocks agree (phase times are read across workers: started by one, completed by another).
    """

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return super().now() + self._offset


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of the bench's own on a free port: the shared server's scratch database
    was flushed (or the server restarted) by other sessions mid-run, twice."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH; the daily bench starts its own")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def evening(session: date) -> datetime:
    return datetime.combine(session, wall_time(19, 0), tzinfo=NEW_YORK)


def seed(dsn: str, symbols: list[str], last_session: date) -> None:
    """Bars of ``HISTORY`` sessions up to ``last_session``, analysis marked done up to it, and
    that session's indicator values stored (a row per symbol and indicator, as every evening
    after the first: the run continues the EMAs and OBV from them)."""
    from tickstock.analysis.plan import plan
    from tickstock.analysis.registry import DEFAULT_INDICATORS
    from tickstock.market.providers import create_provider
    from tickstock.store.bars import write_bars

    calendar = nyse()
    provider = create_provider("synthetic", calendar)
    days = calendar.session_days(last_session - timedelta(days=HISTORY * 2), last_session)
    start = session_day_start_utc(days[-HISTORY])
    end = session_day_start_utc(last_session + timedelta(days=1))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[])", (symbols,))
        conn.execute("INSERT INTO universes (name) VALUES ('bench')")
        conn.execute("INSERT INTO universe_members (universe, symbol) "
                     "SELECT 'bench', symbol FROM symbols")
        for i in range(0, len(symbols), 250):
            frames = [provider.fetch_bars(s, Timeframe.DAY, start, end).bars
                      for s in symbols[i:i + 250]]
            write_bars(conn, frames, "synthetic")
        conn.execute(
            "INSERT INTO analysis_watermarks (symbol, timeframe, kind, last_ts) "
            "SELECT symbol, 'day', k, max(ts) FROM bars, unnest(ARRAY['indicators', "
            "'patterns']) k GROUP BY symbol, k")
        conn.execute(
            "INSERT INTO indicator_values (symbol, timeframe, ts, name, value) "
            "SELECT w.symbol, 'day', w.last_ts, n, 0.0 FROM analysis_watermarks w, "
            "unnest(%s::text[]) n WHERE w.kind = 'indicators'",
            (list(plan(DEFAULT_INDICATORS).columns),))
        for table in _WRITTEN:
            conn.execute(f"VACUUM ANALYZE {table}")


def worker_main(dsn: str, redis_url: str, offset: timedelta, name: str, *, ready: EventType,
                stop: EventType) -> None:
    """One worker process: the daily executor on a bus consumer, as the worker role runs it."""
    import threading

    from tickstock.bus.connection import connect
    from tickstock.bus.streams import Consumer, ConsumerOptions
    from tickstock.contracts import names
    from tickstock.market.providers import create_provider
    from tickstock.pipeline.daily.wiring import (
        analysis_names,
        build_executor,
        default_steps,
    )
    from tickstock.store.db import create_pool

    clock = ShiftedClock(offset)
    calendar = nyse()
    pool = create_pool(dsn, max_size=4, name=name)
    client = connect(redis_url, name=name)
    steps, setups = default_steps(pool=pool, provider=create_provider("synthetic", calendar),
                                  calendar=calendar, clock=clock)
    indicators, patterns = analysis_names()
    executor = build_executor(pool=pool, client=client, calendar=calendar, clock=clock,
                              instance=name, steps=steps, setups=setups,
                              indicator_names=indicators, pattern_names=patterns)
    consumer = Consumer(client, group=names.WORKERS_GROUP, name=name,
                        streams=(names.COMMANDS_STREAM, names.BATCHES_STREAM), clock=LiveClock(),
                        options=ConsumerOptions(block_ms=100))
    executor.register(consumer)
    halt = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), halt.set()), daemon=True).start()
    _warm_up()
    ready.set()
    consumer.run(halt)
    client.close()
    pool.close()


class Run(NamedTuple):
    wall: float  # seconds
    phases: dict[str, float]  # seconds per phase
    cpu_per_symbol: float  # CPU seconds of the workers and their PostgreSQL backends / symbol


def _warm_up() -> None:
    """Load what a worker loads once in its lifetime: the analysis engine's compiled kernels
    (~1 s of CPU per process on first use). A worker role pays it at its first batch ever, not
    at every evening's run, so the timed run starts after it, as it starts after the imports."""
    import numpy as np

    from tickstock.analysis.bars import Bars
    from tickstock.analysis.batch import compute_many
    from tickstock.analysis.registry import DEFAULT_INDICATORS, DEFAULT_PATTERNS

    n = 600
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.0, 0.01, n)))
    bars = Bars("WARM", "day", np.arange(n, dtype=np.int64) * 86_400_000_000_000, close,
                close * 1.01, close * 0.99, close, np.full(n, 1e6))
    for specs in (DEFAULT_INDICATORS, DEFAULT_PATTERNS):
        list(compute_many([bars], specs))


def timed_run(dsn: str, redis_url: str, session: date, workers: int) -> Run:
    """Wall seconds of one daily run with ``workers`` processes, seconds per phase, CPU."""
    import redis

    from tickstock.bus.submit import send_command
    from tickstock.contracts.commands import TriggerDailyProcessing

    # A day passes between two evenings: autovacuum has cleaned up after the previous run.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in _WRITTEN:
            conn.execute(f"VACUUM ANALYZE {table}")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs, readies = [], []
    offset = evening(session) - LiveClock().now()
    for i in range(workers):
        ready = ctx.Event()
        proc = ctx.Process(target=worker_main, args=(dsn, redis_url, offset,
                                                      f"bench-worker-{session}-{i}"),
                           kwargs={"ready": ready, "stop": stop})
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(120):
            raise SystemExit("a worker process did not start")
    client = redis.Redis.from_url(redis_url)
    run_id = f"bench-{session}"
    poll = psycopg.connect(dsn, autocommit=True)
    worker_pids = [int(proc.pid or 0) for proc in procs]
    before = {pid: _cpu_seconds(pid) for pid in (*worker_pids, *_backends(poll))}
    started = time.perf_counter()
    send_command(client, TriggerDailyProcessing(run_id=run_id, universes=("bench",),
                                                skip_market_check=True), source="bench")
    status = _wait_finished(poll, run_id)
    wall = time.perf_counter() - started
    used = {pid: _cpu_seconds(pid) - before.get(pid, 0.0)
            for pid in (*worker_pids, *_backends(poll))}
    poll.close()
    stop.set()
    for proc in procs:
        proc.join(30)
    client.close()
    if status != "completed":
        raise SystemExit(f"run {run_id} ended {status}")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT phase, extract(epoch FROM completed_at - started_at) FROM "
                            "processing_run_phases WHERE run_id = %s", (run_id,)).fetchall()
        shares = conn.execute("SELECT worker, count(*) FROM processing_batches WHERE run_id = %s"
                              " GROUP BY 1 ORDER BY 1", (run_id,)).fetchall()
        # Seconds the workers spent inside batches, per phase (claim to completion, same clock)
        busy = {str(p): float(v) for p, v in conn.execute(
            "SELECT phase, sum(extract(epoch FROM completed_at - claimed_at)) FROM "
            "processing_batches WHERE run_id = %s GROUP BY 1", (run_id,)).fetchall()}
    print(f"  batches per worker: {', '.join(f'{w}: {n}' for w, n in shares)}", flush=True)
    cpu_workers = sum(used[pid] for pid in worker_pids)
    cpu_pg = sum(v for pid, v in used.items() if pid not in worker_pids)
    symbols = int(conn_symbols(dsn))
    print(f"  CPU per symbol: workers {1000 * cpu_workers / symbols:.2f} ms, PostgreSQL "
          f"{1000 * cpu_pg / symbols:.2f} ms; the run got {(cpu_workers + cpu_pg) / wall:.2f} "
          f"of the machine's {os.cpu_count()} cores", flush=True)
    # Busy share: batch seconds over phase wall x workers; the rest is waiting for the last
    # batch of a phase, publishing, claiming and completing.
    print("  busy share per phase: " + ", ".join(
        f"{p} {busy.get(str(p), 0.0) / max(float(s) * workers, 1e-9):.0%}" for p, s in rows),
        flush=True)
    return Run(wall, {str(p): max(float(s), 0.0) for p, s in rows},
               (cpu_workers + cpu_pg) / symbols)


def _wait_finished(conn: psycopg.Connection[tuple[object, ...]], run_id: str) -> str:
    while True:
        row = conn.execute("SELECT status FROM processing_runs WHERE run_id = %s",
                           (run_id,)).fetchone()
        if row is not None and row[0] in ("completed", "failed", "cancelled"):
            return str(row[0])
        time.sleep(0.05)


def conn_symbols(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM symbols").fetchone()
    return int(row[0]) if row else 0


def _backends(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """PostgreSQL backends of the scratch database but this one (the workers' connections)."""
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()").fetchall()
    return [int(str(r[0])) for r in rows]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process of this host (0 when it is not visible: a
    PostgreSQL on another host is not counted)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_talib_seconds(dsn: str, symbols: list[str]) -> float:
    """TA-Lib's own time for the indicator phase's work: its functions over the same tails."""
    from tickstock.analysis.kernels.talib_kernel import TalibKernel
    from tickstock.analysis.plan import plan
    from tickstock.analysis.registry import DEFAULT_INDICATORS
    from tickstock.pipeline.daily.steps import analysis, tails

    p = plan(DEFAULT_INDICATORS)
    n = max(p.warmup, analysis.SETTLE) + 1  # the indicator phase's tail: + the new session
    far = datetime(9999, 1, 1, tzinfo=NEW_YORK)
    with psycopg.connect(dsn) as conn:
        read = tails.read_tails(conn, symbols, "day", n, far)
    kernels = [s.kernel for s in p.indicators if isinstance(s.kernel, TalibKernel)]
    cols = [{"open": t.open, "high": t.high, "low": t.low, "close": t.close,
             "volume": t.volume} for t in read.values()]
    started = time.perf_counter()
    for columns in cols:
        for kernel in kernels:
            kernel.batch(columns)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    args = parser.parse_args()
    symbols = [f"B{i:05d}" for i in range(1, args.symbols + 1)]
    calendar = nyse()
    days = calendar.session_days(FIRST_RUN_SESSION - timedelta(days=10),
                                 FIRST_RUN_SESSION + timedelta(days=10))
    at = days.index(FIRST_RUN_SESSION)
    previous, second = days[at - 1], days[at + 1]
    # SIGTERM unwinds like Ctrl-C, so the scratch database is dropped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with scratch_database() as dsn, private_redis() as redis_url:
        t = time.perf_counter()
        seed(dsn, symbols, previous)
        print(f"setup: {len(symbols)} symbols x {HISTORY} sessions in "
              f"{time.perf_counter() - t:.1f}s", flush=True)
        results: dict[int, Run] = {}
        for workers, session in ((1, FIRST_RUN_SESSION), (2, second)):
            results[workers] = run = timed_run(dsn, redis_url, session, workers)
            shown = ", ".join(f"{k} {v:.2f}s" for k, v in run.phases.items())
            print(f"{workers} worker(s): {run.wall:.2f}s wall, {len(symbols) / run.wall:.0f} "
                  f"symbols/s ({shown})", flush=True)
        bare = bare_talib_seconds(dsn, symbols)
    indicator_phase = results[1].phases["indicators"]
    print(f"bare TA-Lib (same functions, same tails, 1 process): {bare:.2f}s")
    print(f"indicator phase / bare TA-Lib (1 worker): {indicator_phase / bare:.2f}")
    # What the work costs bounds the rate whatever the workers: every core busy with it only.
    cpu = min(r.cpu_per_symbol for r in results.values())
    if cpu > 0:
        print(f"CPU-bound limit ({os.cpu_count()} cores free, {1000 * cpu:.2f} ms CPU per "
              f"symbol): {(os.cpu_count() or 1) / cpu:.0f} symbols/s")
    print(f"symbols_per_s_1_worker = {len(symbols) / results[1].wall:.0f}")
    return report("symbols_per_s_2_workers", len(symbols) / results[2].wall, ">=", TARGET)


if __name__ == "__main__":
    sys.exit(main())
