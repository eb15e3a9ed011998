"""Metrics endpoints and the scrape-time collectors, against real PostgreSQL and Redis.

Every number checked here comes from rows or stream entries the test writes through the real
stores and bus (or plain SQL where no store exists yet), scraped over HTTP like Prometheus.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
import pytest
import redis
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.routing import Mount

from tickstock.bus import deadletter
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.contracts import names
from tickstock.core.clock import FrozenClock, LiveClock
from tickstock.ops import metrics, metrics_redis
from tickstock.ops.infra import free_port
from tickstock.ops.settings import Settings, load_settings
from tickstock.store.db import create_pool
from tickstock.store.runs import NewRun, RunRepository

from .metrics_support import Sample, import_metric_modules, scrape, value

SETTINGS = load_settings({"TICKSTOCK_ROLES": "web"})


class Endpoint:
    """register_collectors + serve_metrics on a private registry, scraped over HTTP."""

    def __init__(self, settings: Settings, db_dsn: str, redis_url: str, **kwargs: object) -> None:
        self.registry = CollectorRegistry()
        self.exporter = metrics.register_collectors(
            settings, "worker", "worker-test", database_url=db_dsn, redis_url=redis_url,
            registry=self.registry, **kwargs)  # type: ignore[arg-type]
        self.server = metrics.serve_metrics(0, "127.0.0.1", self.registry)
        self.url = f"http://127.0.0.1:{self.server.port}/metrics"

    def scrape(self) -> list[Sample]:
        return scrape(self.url)

    def close(self) -> None:
        self.server.close()
        self.exporter.close()


@pytest.fixture
def endpoint(db_dsn: str, redis_url: str) -> Iterator[Endpoint]:
    found = Endpoint(SETTINGS, db_dsn, redis_url)
    yield found
    found.close()


def _insert_jobs(db_dsn: str, jobs: list[tuple[str, str, float | None]]) -> None:
    """``(job_type, status, duration_s)``; a duration means started and finished."""
    now = datetime.now(UTC)
    with psycopg.connect(db_dsn) as conn:
        for index, (job_type, status, duration) in enumerate(jobs):
            started = now - timedelta(seconds=duration) if duration is not None else None
            conn.execute(
                "INSERT INTO jobs (job_id, job_type, status, started_at, finished_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (f"job-{index}", job_type, status, started, now if duration is not None else None),
            )


def test_jobs_by_type_and_status_with_duration_histogram(endpoint: Endpoint, db_dsn: str) -> None:
    rng = random.Random(7)
    jobs: list[tuple[str, str, float | None]] = []
    for _ in range(60):
        job_type = rng.choice(["historical_load", "file_import", "recompute"])
        status = rng.choice(["submitted", "running", "completed", "failed", "cancelled"])
        finished = status in ("completed", "failed")
        jobs.append((job_type, status, round(rng.uniform(0.5, 4000), 3) if finished else None))
    _insert_jobs(db_dsn, jobs)

    samples = endpoint.scrape()
    for job_type in {j[0] for j in jobs}:
        for status in ("submitted", "running", "completed", "failed", "cancelled"):
            expected = sum(1 for j in jobs if j[0] == job_type and j[1] == status)
            assert value(samples, "tickstock_jobs", job_type=job_type, status=status) == expected
        for status in ("completed", "failed"):
            durations = [j[2] for j in jobs if j[0] == job_type and j[1] == status]
            if not durations:
                continue
            labels = {"job_type": job_type, "status": status}
            assert value(samples, "tickstock_jobs_duration_seconds_count", **labels) == len(
                durations)
            total = value(samples, "tickstock_jobs_duration_seconds_sum", **labels)
            assert total == pytest.approx(sum(d for d in durations if d is not None), abs=0.01)
            for bound in (5.0, 60.0, 600.0, 3600.0):
                below = sum(1 for d in durations if d is not None and d <= bound)
                assert value(samples, "tickstock_jobs_duration_seconds_bucket",
                             le=str(bound), **labels) == below


def test_job_counts_change_between_scrapes(endpoint: Endpoint, db_dsn: str) -> None:
    _insert_jobs(db_dsn, [("historical_load", "submitted", None)])
    before = endpoint.scrape()
    assert value(before, "tickstock_jobs", job_type="historical_load", status="submitted") == 1
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE jobs SET status = 'running', started_at = now()")
    after = endpoint.scrape()
    assert value(after, "tickstock_jobs", job_type="historical_load", status="submitted") == 0
    assert value(after, "tickstock_jobs", job_type="historical_load", status="running") == 1
    age = value(after, "tickstock_jobs_oldest_age_seconds", job_type="historical_load",
                status="running")
    assert age is not None and 0 <= age < 60


def test_run_progress_moves_as_batches_complete(endpoint: Endpoint, db_dsn: str) -> None:
    pool = create_pool(db_dsn, max_size=2)
    try:
        runs = RunRepository(pool)
        now = datetime.now(UTC)
        symbols = [f"S{i:02d}" for i in range(20)]
        runs.create_run(NewRun("run-1", "manual", ("data_import",), (), ("day",),
                               session_date=date(2026, 3, 10), symbols_total=20), now)
        batches = [symbols[i:i + 5] for i in range(0, 20, 5)]
        runs.start_phase("run-1", "data_import", batches, now)

        first = endpoint.scrape()
        assert value(first, "tickstock_run_active") == 1
        assert value(first, "tickstock_run_progress_ratio") == 0
        assert value(first, "tickstock_run_batches", phase="data_import", status="pending") == 4
        assert value(first, "tickstock_run_info", run_id="run-1", status="running") == 1

        progress = []
        for no in range(4):
            runs.claim_batch("run-1", "data_import", no, "w1", now, stale_before=now)
            runs.complete_batch("run-1", "data_import", no, now + timedelta(seconds=30 * (no + 1)),
                                processed=4, failed=1,
                                run_counters={"symbols_processed": 4, "symbols_failed": 1})
            samples = endpoint.scrape()
            progress.append(value(samples, "tickstock_run_progress_ratio"))
            assert value(samples, "tickstock_run_batches", phase="data_import",
                         status="completed") == no + 1
            assert value(samples, "tickstock_run_phase_items", phase="data_import",
                         state="processed") == 4 * (no + 1)
            assert value(samples, "tickstock_run_symbols", state="failed") == no + 1
        assert progress == [0.25, 0.5, 0.75, 1.0]
        final = endpoint.scrape()
        assert value(final, "tickstock_run_phase_info", phase="data_import",
                     status="completed") == 1
        assert value(final, "tickstock_run_phase_duration_seconds_count", phase="data_import",
                     status="completed") == 1
        assert value(final, "tickstock_run_phase_duration_seconds_sum", phase="data_import",
                     status="completed") == pytest.approx(120.0)
        runs.finish_run("run-1", "completed", now + timedelta(seconds=121))
        done = endpoint.scrape()
        assert value(done, "tickstock_run_active") == 0
        assert value(done, "tickstock_runs", status="completed") == 1
        assert value(done, "tickstock_run_elapsed_seconds") == pytest.approx(121.0, abs=0.01)
    finally:
        pool.close()


def test_daily_run_overdue_until_its_run_completes(db_dsn: str, redis_url: str) -> None:
    # Tuesday 2026-03-10 is a NYSE session; New York is on EDT (UTC-4) since 2026-03-08, so the
    # default 16:10 run time is 20:10 UTC.
    due_at = datetime(2026, 3, 10, 20, 10, tzinfo=UTC)
    clock = FrozenClock(due_at + timedelta(minutes=75))
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO processing_schedule (name, last_session_run)"
                     " VALUES ('daily', '2026-03-09')")
    found = Endpoint(SETTINGS, db_dsn, redis_url, clock=clock)
    try:
        late = found.scrape()
        assert value(late, "tickstock_schedule_enabled") == 1
        assert value(late, "tickstock_daily_run_due_timestamp_seconds") == due_at.timestamp()
        assert value(late, "tickstock_daily_run_overdue_seconds") == 75 * 60

        pool = create_pool(db_dsn, max_size=1)
        runs = RunRepository(pool)
        runs.create_run(NewRun("run-s", "scheduled", ("data_import",), (), ("day",),
                               session_date=date(2026, 3, 10)), due_at)
        running = found.scrape()
        assert value(running, "tickstock_daily_run_overdue_seconds") == 75 * 60
        runs.finish_run("run-s", "completed", due_at + timedelta(minutes=70))
        pool.close()
        done = found.scrape()
        assert value(done, "tickstock_daily_run_overdue_seconds") == 0
        assert value(done, "tickstock_daily_run_last_completed_timestamp_seconds") == (
            due_at + timedelta(minutes=70)).timestamp()
    finally:
        found.close()


def test_consumer_groups_lag_pending_and_age(endpoint: Endpoint, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stream, group = names.JOBS_STREAM, names.WORKERS_GROUP
    ids = [client.xadd(stream, {names.ENVELOPE_FIELD: f"{i}"}) for i in range(10)]
    client.xgroup_create(stream, group, id="0")
    client.xreadgroup(group, "c1", {stream: ">"}, count=3)
    client.xack(stream, group, ids[0])
    time.sleep(0.05)

    samples = endpoint.scrape()
    labels = {"stream": stream, "group": group}
    assert value(samples, "tickstock_redis_stream_length", stream=stream, kind="durable") == 10
    assert value(samples, "tickstock_consumer_group_consumers", **labels) == 1
    assert value(samples, "tickstock_consumer_group_pending", **labels) == 2
    assert value(samples, "tickstock_consumer_group_lag", **labels) == 7
    third_ms = int(ids[3].decode().split("-")[0])
    age = value(samples, "tickstock_consumer_group_oldest_undelivered_age_seconds", **labels)
    assert age is not None and age >= (time.time() * 1000 - third_ms) / 1000 - 1.0
    idle = value(samples, "tickstock_consumer_group_oldest_pending_idle_seconds", **labels)
    assert idle is not None and 0.04 <= idle < 30

    # Redis < 7 has no ``lag``: the counted fallback agrees with Redis 7's own number.
    info = client.xinfo_groups(stream)[0]
    assert metrics_redis._lag(client, stream, {"last-delivered-id": info["last-delivered-id"]}) \
        == info["lag"] == 7
    client.close()


def test_dead_letters_show_length_and_newest_time(endpoint: Endpoint, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    before = endpoint.scrape()
    assert value(before, "tickstock_redis_stream_length", kind="dead_letter") is None
    letter = deadletter.make(names.JOBS_STREAM, "1-0", {b"envelope": b"{not json"},
                             reason="malformed", group=names.WORKERS_GROUP, consumer="c1",
                             deliveries=1, now=datetime.now(UTC))
    deadletter.add(client, letter, cause="malformed")
    entry_id = client.xrevrange(names.DEAD_LETTER_STREAM, count=1)[0][0].decode()
    after = endpoint.scrape()
    assert value(after, "tickstock_redis_stream_length", kind="dead_letter") == 1
    assert value(after, "tickstock_redis_stream_last_entry_timestamp_seconds",
                 kind="dead_letter") == int(entry_id.split("-")[0]) / 1000
    client.close()


def test_heartbeats_and_role_instances(endpoint: Endpoint, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    beat = HeartbeatThread(client, role="web", instance="web-a", clock=LiveClock(),
                           interval_s=0.2, ttl_s=2.0).start()
    try:
        samples = endpoint.scrape()
        assert value(samples, "tickstock_role_instances", role="web") == 1
        assert value(samples, "tickstock_heartbeat_info", role="web", process="web-a",
                     state="starting") == 1
        age = value(samples, "tickstock_heartbeat_age_seconds", role="web", process="web-a")
        assert age is not None and 0 <= age < 2
    finally:
        beat.stop()  # deletes the key: a clean stop shows at once
    gone = endpoint.scrape()
    assert value(gone, "tickstock_role_instances", role="web") == 0
    assert value(gone, "tickstock_heartbeat_age_seconds", role="web") is None
    client.close()


def test_pool_usage_of_the_roles_clients(db_dsn: str, redis_url: str) -> None:
    pool = create_pool(db_dsn, min_size=1, max_size=3, name="worker")
    client = redis.Redis.from_url(redis_url, max_connections=5)
    client.ping()
    found = Endpoint(SETTINGS, db_dsn, redis_url, pool=pool, redis=client)
    try:
        with pool.connection():
            held = client.connection_pool.get_connection()
            busy = found.scrape()
            client.connection_pool.release(held)
        assert value(busy, "tickstock_db_pool_connections", pool="worker", state="in_use") == 1
        assert value(busy, "tickstock_db_pool_max_connections", pool="worker") == 3
        assert value(busy, "tickstock_redis_pool_connections", pool="worker", state="in_use") == 1
        assert value(busy, "tickstock_redis_pool_max_connections", pool="worker") == 5
        idle = found.scrape()
        assert value(idle, "tickstock_db_pool_connections", pool="worker", state="in_use") == 0
        assert value(idle, "tickstock_redis_pool_connections", pool="worker", state="in_use") == 0
        assert value(idle, "tickstock_redis_pool_connections", pool="worker", state="idle") == 1
        requests = value(idle, "tickstock_db_pool_requests_total", pool="worker")
        assert requests is not None and requests >= 1
    finally:
        found.close()
        client.close()
        pool.close()


def test_unreachable_sources_still_answer(redis_url: str) -> None:
    dead_pg = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    found = Endpoint(SETTINGS, dead_pg, dead_redis)
    try:
        started = time.monotonic()
        samples = found.scrape()
        assert time.monotonic() - started < 9  # within Prometheus's default scrape timeout
        assert value(samples, "tickstock_metrics_source_up", source="postgres") == 0
        assert value(samples, "tickstock_metrics_source_up", source="redis") == 0
        assert value(samples, "tickstock_build_info", role="worker") == 1
    finally:
        found.close()


def test_install_metrics_on_an_app_serves_several_registries(
    db_dsn: str, redis_url: str
) -> None:
    app_registry = CollectorRegistry()
    Counter("tickstock_test_app_hits", "hits", registry=app_registry).inc(3)
    registry = CollectorRegistry()
    exporter = metrics.register_collectors(SETTINGS, "web", "web-1", database_url=db_dsn,
                                           redis_url=redis_url, registry=registry)
    app = Starlette(routes=[Mount("/raw", app=metrics.metrics_app((registry,)))])
    metrics.install_metrics(app, registries=(registry, app_registry))

    async def get(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
            return [await http.get(path) for path in paths]

    try:
        response, mounted = asyncio.run(get("/metrics", "/raw/"))
    finally:
        exporter.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "tickstock_test_app_hits_total 3.0" in response.text
    assert 'tickstock_build_info{process="web-1",role="web",version=' in response.text
    assert "tickstock_metrics_source_up{source=\"postgres\"} 1.0" in response.text
    assert mounted.status_code == 200 and "tickstock_build_info" in mounted.text
    assert "tickstock_test_app_hits" not in mounted.text


def test_every_package_metric_and_ops_collector_fit_one_registry(
    db_dsn: str, redis_url: str
) -> None:
    """A role imports its packages' metrics and registers the ops collectors in the default
    registry: no name may collide, and every name is ``tickstock_*``."""
    modules = import_metric_modules()
    assert "tickstock.bus.metrics" in modules
    exporter = metrics.register_collectors(SETTINGS, "worker", "w", database_url=db_dsn,
                                           redis_url=redis_url, registry=REGISTRY)
    try:
        for collector in exporter.collectors:
            for family in collector.describe():  # type: ignore[attr-defined]
                assert family.name.startswith("tickstock_"), family.name
    finally:
        exporter.close()


def test_start_role_metrics_gives_further_workers_the_next_port(
    db_dsn: str, redis_url: str
) -> None:
    port = free_port()
    settings = load_settings({"TICKSTOCK_WORKER_METRICS_PORT": str(port)})
    first = metrics.start_role_metrics(settings, "worker", "w1", database_url=db_dsn,
                                       redis_url=redis_url, registry=CollectorRegistry())
    second = metrics.start_role_metrics(settings, "worker", "w2", database_url=db_dsn,
                                        redis_url=redis_url, registry=CollectorRegistry())
    try:
        assert first.server is not None and first.server.port == port
        assert second.server is not None and second.server.port > port
        assert (second.server.port - port) % metrics.WORKER_PORT_STEP == 0
        for exporter, process in ((first, "w1"), (second, "w2")):
            assert exporter.server is not None
            text = httpx.get(f"http://127.0.0.1:{exporter.server.port}/metrics", timeout=10).text
            assert f'process="{process}"' in text
    finally:
        first.close()
        second.close()
    off = metrics.start_role_metrics(load_settings({"TICKSTOCK_SCHEDULER_METRICS_PORT": "0"}),
                                     "scheduler", "s", database_url=db_dsn, redis_url=redis_url,
                                     registry=CollectorRegistry())
    assert off.server is None
    off.close()


def test_the_web_app_serves_its_own_and_the_ops_metrics(db_dsn: str, redis_url: str) -> None:
    """What the web role's composition root does: the app's registry plus the default one."""
    from tickstock.web.app import create_app
    from tickstock.web.config import WebConfig, WebDeps

    pool = create_pool(db_dsn, max_size=2, name="web")
    client = redis.Redis.from_url(redis_url)
    app = create_app(WebDeps(pool=pool, redis=client, clock=LiveClock(),  # type: ignore[arg-type]
                             config=WebConfig(secret_key="k" * 40)))
    registry = CollectorRegistry()
    exporter = metrics.register_collectors(SETTINGS, "web", "web-1", database_url=db_dsn,
                                           redis_url=redis_url, pool=pool, redis=client,
                                           registry=registry)
    metrics.install_metrics(app, registries=(registry, app.state.metrics.registry))

    async def get(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as http:
            return [await http.get(path) for path in paths]

    try:
        health, _, scraped = asyncio.run(get("/health", "/health", "/metrics"))
    finally:
        exporter.close()
        client.close()
        pool.close()
    assert health.status_code in (200, 503)
    samples = _parse(scraped.text)
    assert value(samples, "tickstock_web_http_requests_total", route="/health", method="GET",
                 status=str(health.status_code)) == 2
    assert value(samples, "tickstock_db_pool_max_connections", pool="web") == 2
    assert value(samples, "tickstock_metrics_source_up", source="redis") == 1
    assert value(samples, "tickstock_build_info", role="web", process="web-1") == 1


def _parse(text: str) -> list[Sample]:
    from prometheus_client.parser import text_string_to_metric_families

    return [Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def test_instrumented_api_counts_requests_by_route_template(db_dsn: str, redis_url: str) -> None:
    """What the pipeline API's composition root does: request metrics plus ``/metrics``."""
    from fastapi import FastAPI

    from tickstock.ops import metrics_http

    app = FastAPI()

    @app.get("/runs/{run_id}")
    def get_run(run_id: str) -> dict[str, str]:
        return {"run_id": run_id}

    registry = CollectorRegistry()
    metrics_http.instrument_http(app, "api", registry)
    metrics.install_metrics(app, registries=(registry,))

    async def get(*paths: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return [await http.get(path) for path in paths]

    *_, scraped = asyncio.run(get("/runs/a", "/runs/b", "/nowhere", "/metrics", "/metrics"))
    samples = _parse(scraped.text)
    assert value(samples, "tickstock_api_http_requests_total", route="/runs/{run_id}",
                 method="GET", status="200") == 2
    assert value(samples, "tickstock_api_http_requests_total", route="unmatched",
                 status="404") == 1
    assert value(samples, "tickstock_api_http_requests_total", route="/metrics") == 1
    assert value(samples, "tickstock_api_http_request_seconds_count", route="/runs/{run_id}") == 2
    assert not any("/runs/a" in str(s.labels) for s in samples)


def test_live_bars_behind_real_time(db_dsn: str, redis_url: str) -> None:
    # 2026-03-10 is a session: 09:30 New York (EDT) is 13:30 UTC.
    at = datetime(2026, 3, 10, 14, 0, 30, tzinfo=UTC)

    def insert(*starts: datetime) -> None:
        with psycopg.connect(db_dsn) as conn:
            conn.cursor().executemany(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, source)"
                " VALUES ('AAA', '1min', %s, 1, 1, 1, 1, 10, 'test')", [(s,) for s in starts])

    def behind(clock_at: datetime) -> float | None:
        found = Endpoint(SETTINGS, db_dsn, redis_url, clock=FrozenClock(clock_at))
        try:
            return value(found.scrape(), "tickstock_live_bars_behind_seconds")
        finally:
            found.close()

    assert behind(at) == 30 * 60 + 30  # no bar today: behind since the open
    insert(datetime(2026, 3, 9, 19, 59, tzinfo=UTC), datetime(2026, 3, 10, 13, 58, tzinfo=UTC))
    assert behind(at) == 90  # the 13:58 bar is complete at 13:59
    insert(datetime(2026, 3, 10, 13, 59, tzinfo=UTC))
    assert behind(at) == 30
    assert behind(at + timedelta(minutes=10)) == 630  # the feed stopped: it grows
    assert behind(datetime(2026, 3, 10, 21, 0, tzinfo=UTC)) == 0  # after the close


def test_bars_ingested_count_every_store_write_path(db_dsn: str) -> None:
    import numpy as np

    from tickstock.contracts.common import Timeframe
    from tickstock.market.bars import BarFrame
    from tickstock.store.bars import insert_new, write_bars

    def frame(symbol: str, days: int, close: float) -> BarFrame:
        ts = np.array([int(datetime(2024, 1, 2 + d, tzinfo=UTC).timestamp()) * 10**9
                       for d in range(days)], dtype=np.int64)
        ones = np.ones(days)
        return BarFrame(symbol, Timeframe.DAY, ts, ones, ones * 2, ones / 2, ones * close,
                        ones * 100)

    def counted(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"source": "metrics-test"}) or 0.0

    before = counted("tickstock_bars_ingested_total"), counted("tickstock_bars_changed_total")
    with psycopg.connect(db_dsn) as conn:
        assert insert_new(conn, [frame("AAA", 3, 1.0)], "metrics-test") is not None
        write_bars(conn, [frame("AAA", 3, 1.0), frame("BBB", 2, 1.0)], "metrics-test")
        write_bars(conn, [frame("AAA", 3, 1.5)], "metrics-test")  # all three change
    assert counted("tickstock_bars_ingested_total") - before[0] == 3 + 5 + 3
    assert counted("tickstock_bars_changed_total") - before[1] == 3 + 2 + 3
