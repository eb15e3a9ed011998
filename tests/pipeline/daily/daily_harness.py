"""The daily-run harness: real PostgreSQL and Redis, real data (../shared/data/daily via the files
provider), worker consumers running in threads exactly as the worker role runs them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import psycopg
import redis
from psycopg_pool import ConnectionPool

from tickstock.analysis.bars import Bars
from tickstock.bus.streams import Consumer, ConsumerOptions
from tickstock.contracts import names
from tickstock.contracts.commands import Command
from tickstock.contracts.common import Timeframe
from tickstock.contracts.envelope import Envelope
from tickstock.core.clock import FrozenClock, LiveClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import nyse
from tickstock.market.providers import create_provider
from tickstock.pipeline.daily.wiring import (
    DailyExecutor,
    analysis_names,
    build_executor,
    default_steps,
)
from tickstock.store.bars import bars_between
from tickstock.store.runs import RunRecord, RunRepository

#: The evening of the last session in the real data set.
LAST_DAY = datetime.combine(date(2017, 12, 6), clock_time(19, 0), tzinfo=NEW_YORK)


def real_symbols(shared_data: Path, count: int) -> list[str]:
    files = sorted((shared_data / "daily").glob("*.csv.gz"))
    return [f.name.removesuffix(".csv.gz") for f in files][:count]


def seed_universe(dsn: str, universe: str, symbols: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[]) "
                     "ON CONFLICT DO NOTHING", (symbols,))
        conn.execute("INSERT INTO universes (name) VALUES (%s)", (universe,))
        conn.execute("INSERT INTO universe_members (universe, symbol) "
                     "SELECT %s, unnest(%s::text[])", (universe, symbols))


@dataclass
class Harness:
    dsn: str
    pool: ConnectionPool
    client: redis.Redis
    clock: FrozenClock
    shared_data: Path
    threads: list[tuple[threading.Thread, threading.Event]] = field(default_factory=list)

    @property
    def runs(self) -> RunRepository:
        return RunRepository(self.pool)

    def executor(self, instance: str, batch_size: int = 10,
                 history_years: float = 6) -> DailyExecutor:
        calendar = nyse()
        provider = create_provider("files", calendar, files_dir=self.shared_data / "daily")
        steps, setups = default_steps(pool=self.pool, provider=provider, calendar=calendar,
                                      clock=self.clock, history_years=history_years)
        indicators, patterns = analysis_names()
        return build_executor(pool=self.pool, client=self.client, calendar=calendar,
                              clock=self.clock, instance=instance, steps=steps, setups=setups,
                              batch_size=batch_size, indicator_names=indicators,
                              pattern_names=patterns)

    def start_workers(self, count: int, batch_size: int = 10,
                      history_years: float = 6) -> None:
        for i in range(count):
            name = f"worker-thread-{i}"
            consumer = Consumer(self.client, group=names.WORKERS_GROUP, name=name,
                                streams=(names.COMMANDS_STREAM, names.BATCHES_STREAM),
                                clock=LiveClock(), options=ConsumerOptions(block_ms=50))
            self.executor(name, batch_size, history_years).register(consumer)
            stop = threading.Event()
            thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
            thread.start()
            self.threads.append((thread, stop))

    def stop_workers(self) -> None:
        for _, stop in self.threads:
            stop.set()
        for thread, _ in self.threads:
            thread.join(timeout=10)
        self.threads.clear()

    def send(self, command: Command) -> str:
        from tickstock.bus.submit import send_command

        return send_command(self.client, command, source="test").id

    def answer(self, command_id: str, timeout_s: float = 30) -> Envelope:
        from tickstock.bus.events import EventReader

        reader = EventReader(self.client, clock=LiveClock())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, env in reader.recent(1000):
                if getattr(env.data, "command_id", None) == command_id:
                    return env
            time.sleep(0.05)
        raise AssertionError(f"no answer to command {command_id}")

    def wait_run(self, run_id: str, timeout_s: float = 120) -> RunRecord:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.runs.get_run(run_id)
            if not run.active:
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} still {self.runs.get_run(run_id).status}")

    def stored_bars(self, symbol: str) -> Bars:
        with self.pool.connection() as conn:
            b = bars_between(conn, symbol, Timeframe.DAY,
                             datetime(1990, 1, 1, tzinfo=NEW_YORK),
                             datetime(2100, 1, 1, tzinfo=NEW_YORK))
        return Bars(symbol, "day", b.ts, b.open, b.high, b.low, b.close, b.volume)

    def stored_values(self, symbol: str) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        with psycopg.connect(self.dsn) as conn:
            for name, ts, value in conn.execute(
                    "SELECT name, ts, value FROM indicator_values WHERE symbol = %s", (symbol,)):
                out.setdefault(name, {})[_ns(ts)] = value
        return out


def _ns(ts: datetime) -> int:
    return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1000
