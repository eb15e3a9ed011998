"""Cost of one metrics scrape's shared state on a database that has been running for a while.

Every role exports the shared state (jobs, runs, heartbeats, streams), read at scrape time, so a
scrape costs what those queries cost. The data: ``JOBS`` finished and waiting jobs over three
types, a daily run with four phases of ``BATCHES`` batches each, durable streams with consumer
groups and dead letters in Redis. Limit measured in the same run: one sequential scan of the
jobs table (``SELECT count(*) ... WHERE finished_at IS NOT NULL``), which any exact job count or
duration histogram needs at least once. Result: scrape time over that scan.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import psycopg
import redis
from prometheus_client import CollectorRegistry

from common import median, report, scratch_database, scratch_redis
from tickstock.contracts import names
from tickstock.ops import metrics
from tickstock.ops.settings import load_settings
from tickstock.store.db import create_pool
from tickstock.store.runs import NewRun, RunRepository

JOBS = 200_000
BATCHES = 500
STREAM_ENTRIES = 20_000
ROUNDS = 9


def seed_database(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO jobs (job_id, job_type, status, submitted_at, started_at, finished_at)"
            " SELECT 'j' || i, (ARRAY['job.historical_load','job.file_import','job.recompute'])"
            "[1 + i %% 3], CASE WHEN i %% 50 = 0 THEN 'submitted' WHEN i %% 7 = 0 THEN 'failed'"
            " ELSE 'completed' END, now() - make_interval(mins => i %% 10000),"
            " now() - make_interval(mins => i %% 10000),"
            " CASE WHEN i %% 50 = 0 THEN NULL"
            " ELSE now() - make_interval(mins => i %% 10000) + make_interval(secs => i %% 4000) END"
            " FROM generate_series(1, %s) AS i", (JOBS,))
        conn.execute("UPDATE jobs SET started_at = NULL WHERE status = 'submitted'")
        conn.execute("ANALYZE jobs")
    pool = create_pool(dsn, max_size=2)
    try:
        runs = RunRepository(pool)
        now = datetime.now(UTC)
        phases = ("data_import", "indicators", "patterns", "outcomes")
        symbols = [f"S{i:05d}" for i in range(BATCHES * 10)]
        runs.create_run(NewRun("run-bench", "scheduled", phases, (), ("day",),
                               session_date=date(2026, 11, 27), symbols_total=len(symbols)), now)
        for phase in phases[:2]:
            runs.start_phase("run-bench", phase,
                             [symbols[i:i + 10] for i in range(0, len(symbols), 10)], now)
        for no in range(BATCHES // 2):
            runs.claim_batch("run-bench", "indicators", no, "w1", now, stale_before=now)
            runs.complete_batch("run-bench", "indicators", no, now + timedelta(seconds=1),
                                processed=10, failed=0, run_counters={})
    finally:
        pool.close()


def seed_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    for stream in names.DURABLE_STREAMS:
        pipe = client.pipeline(transaction=False)
        for i in range(STREAM_ENTRIES // len(names.DURABLE_STREAMS)):
            pipe.xadd(stream, {names.ENVELOPE_FIELD: f"{i}"})
        pipe.execute()
        client.xgroup_create(stream, names.WORKERS_GROUP, id="0")
        client.xreadgroup(names.WORKERS_GROUP, "c1", {stream: ">"}, count=100)
    for i in range(1000):
        client.xadd(names.DEAD_LETTER_STREAM, {"reason": f"bench {i}"})
    client.close()


def timed(run: object, rounds: int = ROUNDS) -> float:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        seconds.append(time.perf_counter() - started)
    return median(seconds)


def main() -> int:
    with scratch_database() as dsn, scratch_redis() as url:
        seed_database(dsn)
        seed_redis(url)
        collector = metrics.StateCollector(load_settings({}), dsn, url)
        try:
            families = list(collector.collect())  # warm: connections, calendar
            assert any(f.name == "tickstock_jobs" for f in families)
            scrape_s = timed(lambda: list(collector.collect()))
        finally:
            collector.close()
        with psycopg.connect(dsn) as conn:
            scan_s = timed(lambda: conn.execute(
                "SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL").fetchone())
        registry = CollectorRegistry()
        exporter = metrics.register_collectors(load_settings({}), "worker", "bench",
                                               database_url=dsn, redis_url=url, registry=registry)
        try:
            from prometheus_client import generate_latest

            exposition_s = timed(lambda: generate_latest(registry))
        finally:
            exporter.close()
    print(f"jobs: {JOBS}, batches: {BATCHES * 2}, stream entries: {STREAM_ENTRIES}")
    print(f"median jobs-table scan: {scan_s * 1000:.1f} ms")
    print(f"median shared-state collect: {scrape_s * 1000:.1f} ms")
    print(f"median full exposition: {exposition_s * 1000:.1f} ms")
    return report("ops_scrape_over_jobs_scan", scrape_s / scan_s, "<=", 8)


if __name__ == "__main__":
    raise SystemExit(main())
