"""What every benchmark shares: scratch servers, medians and the one result line.

A benchmark is a plain script (``.venv/bin/python bench/<name>.py``). It measures its own limit in
the same run (the machine is shared and noisy, so only ratios and medians mean anything) and ends
with exactly one line ``<metric> = <number> (target <op> <number>)`` from :func:`report`.

Servers: ``TICKSTOCK_TEST_DATABASE_URL`` / ``TICKSTOCK_TEST_REDIS_URL`` (or the ``TICKSTOCK_DATABASE_URL``
/ ``TICKSTOCK_REDIS_URL`` of a deployment). A benchmark never touches existing data: it gets a
freshly migrated scratch database, dropped afterwards, and a Redis logical database it flushes.
"""

from __future__ import annotations

import os
import statistics
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SCRATCH_REDIS_DB = 15  # the last logical database; tests lock 1..15 only while they run


def _env(*names: str) -> str:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    raise SystemExit(f"set {' or '.join(names)} to the server the benchmark may use")


def admin_dsn() -> str:
    """DSN used for CREATE/DROP DATABASE."""
    return _env("TICKSTOCK_TEST_DATABASE_URL", "TICKSTOCK_DATABASE_URL")


def redis_url(db: int = SCRATCH_REDIS_DB) -> str:
    """URL of the scratch Redis logical database (flushed by :func:`scratch_redis`)."""
    parts = urlsplit(_env("TICKSTOCK_TEST_REDIS_URL", "TICKSTOCK_REDIS_URL"))
    return urlunsplit(parts._replace(path=f"/{db}"))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated, empty database for one benchmark run; dropped on exit."""
    from tickstock.store import migrate

    admin = admin_dsn()
    name = f"ts_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(admin)._replace(path="/" + name))
    try:
        migrate.upgrade(dsn)
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_redis(db: int = SCRATCH_REDIS_DB) -> Iterator[str]:
    """The scratch Redis URL, flushed before and after."""
    import redis

    url = redis_url(db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def report(metric: str, value: float, op: str, target: float) -> int:
    """Print the result line; return the exit status (0 when the target holds)."""
    holds = {">=": value >= target, "<=": value <= target, ">": value > target, "<": value < target}[op]
    print(f"{metric} = {value:.4g} (target {op} {target:g})")
    sys.stdout.flush()
    return 0 if holds else 1
