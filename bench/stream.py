"""Minute-boundary bursts of a 5,000-symbol synthetic market through the stream role.

    .venv/bin/python bench/stream.py [--symbols 5000] [--bursts 10] [--warm 60] [--processes 0]

A replay server (its own process, speaking the provider's protocol) plays a synthetic market;
the stream service (this process: the real ``massive`` client, the role's engine, real
PostgreSQL and Redis) stores, rolls up, analyses and publishes; a subscriber (its own process,
reading the bus event stream as the web role's live push does) records when events arrive.
The first ``--warm`` minutes are stored before the service starts, so it warms up from stored
bars (as after a restart) and every indicator and pattern has its history; the bursts start
once the warm-up is done.

Latency of a burst: from the wall time the provider handed the burst's last message to the
socket, to the wall time the subscriber read the last event the burst produced. The baseline is the bare
TA-Lib stream updates (``talib.stream`` handles, one per indicator of the engine's set) for the
same bars: the ratio says what storing, rolling up, detecting, alerting and publishing cost on
top of the arithmetic itself.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from typing import Any

import numpy as np
import psutil
import psycopg
from talib import stream as ta_stream

from _stream_procs import frames, provider, subscriber
from common import median, percentile, report, scratch_database, scratch_redis
from tickstock.bus.connection import connect
from tickstock.contracts import names
from tickstock.contracts.common import Timeframe
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import nyse
from tickstock.market.providers.massive import MassiveConfig, MassiveProvider
from tickstock.ops.roles.stream import FORMING_EVENTS_MAX_SYMBOLS, analysis_processes, live_engine
from tickstock.pipeline.stream.bars import MINUTE, LiveBar
from tickstock.pipeline.stream.daily_context import DailyTrends
from tickstock.pipeline.stream.feed import Backoff
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.publisher import BusEventSink
from tickstock.pipeline.stream.rollup import Rollup
from tickstock.pipeline.stream.service import StreamConfig, StreamService
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.pipeline.stream.storage import BarStore
from tickstock.store.db import create_pool

TARGET_P99_MS = 500.0


def _entry(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


#: The TA-Lib-backed indicators the live set computes (``LIVE_SPEC_NAMES`` and what its
#: patterns read): the baseline's bare stream handles, (function, parameters, inputs).
BARE_SET: tuple[tuple[str, dict[str, int], str], ...] = (
    ("RSI", {"timeperiod": 14}, "c"), ("SMA", {"timeperiod": 20}, "c"),
    ("EMA", {"timeperiod": 20}, "c"), ("MACD", {}, "c"), ("BBANDS", {"timeperiod": 20}, "c"),
    ("SMA", {"timeperiod": 50}, "c"), ("ATR", {"timeperiod": 14}, "hlc"),
)


def bare_talib_seconds(played: list[Any], warm: int) -> float:
    """Median time of one burst of bare ``talib.stream`` updates of ``BARE_SET``."""
    cols = {"h": np.array([f.high for f in played]), "l": np.array([f.low for f in played]),
            "c": np.array([f.close for f in played])}  # minutes x symbols
    symbols = cols["c"].shape[1]
    handles = [[(getattr(ta_stream, fn)(*(cols[x][:warm, i].copy() for x in inputs), **params),
                 inputs) for fn, params, inputs in BARE_SET] for i in range(symbols)]
    times = []
    for k in range(warm, len(played)):
        rows = {x: cols[x][k].tolist() for x in "hlc"}
        started = time.perf_counter()
        for i in range(symbols):
            for handle, inputs in handles[i]:
                handle.update(*(rows[x][i] for x in inputs))
        times.append(time.perf_counter() - started)
    return median(times)


async def run_bursts(db_dsn: str, redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    to_provider, provider_end = ctx.Pipe()
    from_subscriber, subscriber_end = ctx.Pipe()
    stop_subscriber = ctx.Event()
    minutes = args.warm + args.bursts
    procs = [ctx.Process(target=provider, args=(provider_end, args.symbols, minutes, args.warm)),
             ctx.Process(target=subscriber, args=(subscriber_end, redis_url, stop_subscriber))]
    for proc in procs:
        proc.start()
    loop = asyncio.get_running_loop()
    ws_url, rest_url = await loop.run_in_executor(None, to_provider.recv)
    await loop.run_in_executor(None, from_subscriber.recv)  # subscriber ready
    pool = create_pool(db_dsn, max_size=4)
    started = time.perf_counter()
    played = [f for k in range(args.sessions, 0, -1) for f in frames(args.symbols, None, k)]
    history = _history([*played, *frames(args.symbols, args.warm)])
    BarStore(pool).upsert(history)
    with psycopg.connect(db_dsn, autocommit=True) as conn:  # as autovacuum would have by now
        conn.execute("VACUUM ANALYZE bars")
    print(f"stored {args.sessions} session(s) and {args.warm} minutes of history "
          f"({len(history)} bars with the derived ones) in {time.perf_counter() - started:.1f} s")
    client = connect(redis_url, name="bench-stream")
    service = _service(pool, client, ws_url, rest_url, args.symbols, processes=args.processes)
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(service.run(stop))
    arrivals: list[tuple[tuple[int, int], float]] = []
    latencies: list[float] = []
    busy: list[float] = []
    stages: list[dict[str, float]] = []
    try:
        await service.warmed()
        print(f"warmed up from {args.warm} stored minutes of {args.symbols} symbols in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        for k in range(args.bursts):
            latency, spent = await _burst(service, client, to_provider, from_subscriber,
                                          arrivals, received=(k + 1) * args.symbols)
            latencies.append(latency)
            stages.append(spent)
            busy.append(sum(v for k, v in spent.items() if not k.startswith("cpu ")))
            cpu = ", ".join(f"{name[4:]} {1000 * v:.0f}" for name, v in sorted(spent.items())
                            if name.startswith("cpu "))
            stage = ", ".join(f"{name} {1000 * v:.0f}" for name, v in spent.items()
                              if not name.startswith("cpu "))
            print(f"burst {k + 1}: {1000 * latency:.0f} ms (processing {1000 * busy[-1]:.0f} ms: "
                  f"{stage}; {service.stats.events} events so far; CPU ms: {cpu})", flush=True)
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
        service.processor.close()
        to_provider.send("stop")
        stop_subscriber.set()
        received = await loop.run_in_executor(None, _received, from_subscriber)
        for proc in procs:
            proc.join(30)
        client.close()
        pool.close()
    return {"latencies": latencies, "busy": busy, "stages": stages,
            "stats": service.stats.snapshot(), "received": received}


def _received(conn: Any) -> int:
    """The subscriber's count of events received, sent last."""
    while True:
        what, value = conn.recv()
        if what == "done":
            return int(value)


def cpu_by_role() -> dict[str, float]:
    """CPU seconds used so far by this machine's processes, by what they are: this process
    (the stream role), its analysis processes, the provider and subscriber, PostgreSQL,
    Redis -- a burst's CPU is what it costs the 2 cores, whichever process spends it."""
    me = psutil.Process()
    roles: dict[str, float] = {}
    for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        try:
            times = proc.info["cpu_times"]
            cmdline = " ".join(proc.info["cmdline"] or [])
            name = proc.info["name"] or ""
            if proc.pid == me.pid:
                role = "stream role"
            elif "postgres" in name or "postgres" in cmdline:
                role = "postgresql"
            elif "redis-server" in name:
                role = "redis"
            elif "multiprocessing" in cmdline and proc.ppid() == me.pid:
                role = "children"
            else:
                continue
            roles[role] = roles.get(role, 0.0) + times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, TypeError):
            continue
    return roles


async def _burst(service: StreamService, client: Any, to_provider: Any, from_subscriber: Any,
                 arrivals: list[tuple[tuple[int, int], float]], *,
                 received: int) -> tuple[float, dict[str, float]]:
    """One burst: its latency and the processing time it cost, by stage."""
    loop = asyncio.get_running_loop()
    cpu_before = cpu_by_role()
    before = dict(service.stats.stage_s)
    to_provider.send("next")
    _, sent_at = await loop.run_in_executor(None, to_provider.recv)
    while service.stats.received < received:
        await asyncio.sleep(0.002)
    await service.drain()
    last = _entry(client.xrevrange(names.EVENTS_STREAM, count=1)[0][0].decode())
    reached = await _arrival(loop, from_subscriber, arrivals, last)
    cpu = {f"cpu {k}": v - cpu_before.get(k, 0.0) for k, v in cpu_by_role().items()}
    return reached - sent_at, {k: v - before.get(k, 0.0) for k, v in service.stats.stage_s.items()} | cpu


def _service(pool: Any, client: Any, ws_url: str, rest_url: str, count: int,
             *, processes: int) -> StreamService:
    """The stream service as the role builds it (engine and its processes, sink, forming-event
    default)."""
    clock = LiveClock()
    sessions = SessionLookup(nyse())
    symbols = tuple(frames(count, 1)[0].symbols)
    processes = analysis_processes(processes, count)
    print(f"analysis in {processes} process(es)", flush=True)
    processor = LiveProcessor(writer=BarStore(pool), engine=live_engine(sessions, processes),
                              sessions=sessions,
                              sink=BusEventSink(client, source="bench-stream", clock=clock),
                              forming_events=count <= FORMING_EVENTS_MAX_SYMBOLS,
                              daily=DailyTrends(BarStore(pool), sessions, symbols))
    return StreamService(
        StreamConfig(symbols=symbols, ws_url=ws_url, api_key="bench-key", outside_hours=True,
                     backoff=Backoff(initial_s=0.05, max_s=0.5)),
        processor=processor, store=BarStore(pool), calendar=nyse(), clock=clock,
        history=MassiveProvider(nyse(), MassiveConfig("bench-key", rest_url, retries=0)))


def _history(played: list[Any]) -> list[LiveBar]:
    """The minutes of ``played`` and the derived bars they complete (as a running role would
    have stored them), so the warm-up starts every timeframe's state as after a restart."""
    rollup = Rollup(SessionLookup(nyse()))
    bars: list[LiveBar] = []
    for frame in played:
        minutes = [LiveBar(b.symbol, Timeframe.MIN1, b.start, b.start + MINUTE, b.open, b.high,
                           b.low, b.close, b.volume, b.vwap, b.trades) for b in frame.bars()]
        bars.extend(minutes)
        bars.extend(rollup.add_many(minutes))
    return bars


async def _arrival(loop: asyncio.AbstractEventLoop, conn: Any,
                   arrivals: list[tuple[tuple[int, int], float]], last: tuple[int, int]) -> float:
    """Wall time at which the subscriber had read entry ``last``."""
    while True:
        for entry, at in arrivals:
            if entry >= last:
                return at
        cursor, at = await loop.run_in_executor(None, conn.recv)
        arrivals.append((_entry(cursor), at))
        del arrivals[:-50]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--warm", type=int, default=60,
                        help="minutes of the bursts' session stored before the service starts")
    parser.add_argument("--sessions", type=int, default=1,
                        help="whole earlier sessions stored before those (0: the platform's first "
                             "day, when the derived timeframes' indicators are still warming up)")
    parser.add_argument("--processes", type=int, default=0,
                        help="analysis processes (0: the role's default for the universe)")
    args = parser.parse_args()
    with scratch_database() as db_dsn, scratch_redis() as redis_url:
        result = asyncio.run(run_bursts(db_dsn, redis_url, args))
    bare = bare_talib_seconds(frames(args.symbols, args.warm + args.bursts), args.warm)
    latencies = [1000 * s for s in result["latencies"]]
    per_bar = median(result["busy"]) / args.symbols
    print(f"symbols = {args.symbols}, bursts = {args.bursts}, events = {result['stats']['events']} "
          f"published, {result['received']} received (a batch's events each counted)")
    print(f"burst_p50_ms = {median(latencies):.0f}")
    stages = result["stages"]
    print("processing per burst by stage (median ms): " + ", ".join(
        f"{name} {1000 * median([s.get(name, 0.0) for s in stages]):.0f}"
        for name in ("roll_up", "analyse", "events", "store_wait", "detections", "publish")))
    print(f"processing per bar = {1e6 * per_bar:.1f} us; bare TA-Lib stream updates "
          f"({len(BARE_SET)} indicators) per bar = {1e6 * bare / args.symbols:.2f} us; "
          f"ratio = {per_bar / (bare / args.symbols):.0f}x")
    return report("burst_p99_ms", percentile(latencies, 99), "<=", TARGET_P99_MS)


if __name__ == "__main__":
    raise SystemExit(main())
