"""Real pipeline workers for web tests: consumers of the commands and batches streams running
the daily-run executor in threads, exactly as ``tickstock worker`` registers it, over real data
(../shared/data/daily through the files provider) with a clock frozen on the evening of the
data set's last session. The web app under test only talks to them through Redis and
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import redis
from psycopg_pool import ConnectionPool

from tickstock.bus.streams import Consumer, ConsumerOptions
from tickstock.contracts import names
from tickstock.core.clock import FrozenClock, LiveClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.market.calendar import nyse
from tickstock.market.providers import create_provider
from tickstock.pipeline.daily.wiring import analysis_names, build_executor, default_steps
from tickstock.pipeline.jobs.data_load import DataLoadJobs
from tickstock.pipeline.worker import Worker, WorkerOptions

#: The evening of the last session in the real data set: the run processes that session.
LAST_DAY = datetime.combine(date(2017, 12, 6), clock_time(19, 0), tzinfo=NEW_YORK)


@contextmanager
def daily_workers(pool: ConnectionPool, client: redis.Redis, shared_data: Path, *,
                  count: int = 2, batch_size: int = 2, history_years: int = 2) -> Iterator[None]:
    """``count`` workers executing daily runs until the block ends."""
    calendar = nyse()
    clock = FrozenClock(LAST_DAY)
    provider = create_provider("files", calendar, files_dir=shared_data / "daily")
    steps, setups = default_steps(pool=pool, provider=provider, calendar=calendar, clock=clock,
                                  history_years=history_years)
    indicators, patterns = analysis_names()
    running: list[tuple[threading.Thread, threading.Event]] = []
    for i in range(count):
        name = f"web-test-worker-{i}"
        consumer = Consumer(client, group=names.WORKERS_GROUP, name=name,
                            streams=(names.COMMANDS_STREAM, names.BATCHES_STREAM),
                            clock=LiveClock(), options=ConsumerOptions(block_ms=50))
        build_executor(pool=pool, client=client, calendar=calendar, clock=clock, instance=name,
                       steps=steps, setups=setups, batch_size=batch_size,
                       indicator_names=indicators, pattern_names=patterns).register(consumer)
        stop = threading.Event()
        thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True, name=name)
        thread.start()
        running.append((thread, stop))
    try:
        yield
    finally:
        for _, stop in running:
            stop.set()
        for thread, _ in running:
            thread.join(timeout=15)


@contextmanager
def load_worker(pool: ConnectionPool, client: redis.Redis, shared_data: Path) -> Iterator[None]:
    """One worker executing data-load jobs (the handlers ``tickstock worker`` registers) over
    ../shared/data/daily, until the block ends."""
    calendar = nyse()
    provider = create_provider("files", calendar, files_dir=shared_data / "daily")
    jobs = DataLoadJobs(providers=lambda name: provider, calendar=calendar)
    worker = Worker(name="web-test-loader", client=client, pool=pool, clock=LiveClock(),
                    handlers=jobs.handlers(), options=WorkerOptions(block_ms=50))
    thread = threading.Thread(target=worker.run, daemon=True, name="web-test-loader")
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join(timeout=15)
