"""Usage of this process's connection pools: psycopg pools and redis-py pools.

Read from the pool objects at scrape time (no I/O). Works for the sync and asyncio flavours of
both libraries. redis-py exposes no public statistics, so its pool's connection lists are read
the way redis-py itself keeps them; an unknown layout reports only the maximum.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(eq=False)
class PoolCollector(Collector):
    """Exports every pool added with ``add_db`` / ``add_redis`` under its name."""

    db_pools: dict[str, Any] = field(default_factory=dict)
    redis_pools: dict[str, Any] = field(default_factory=dict)

    def add_db(self, name: str, pool: Any) -> None:
        """A ``psycopg_pool.ConnectionPool`` or ``AsyncConnectionPool``."""
        self.db_pools[name] = pool

    def add_redis(self, name: str, client_or_pool: Any) -> None:
        """A redis client (sync or asyncio) or its connection pool."""
        self.redis_pools[name] = getattr(client_or_pool, "connection_pool", client_or_pool)

    def describe(self) -> Iterator[Metric]:
        return iter(_families())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        db_conn, db_max, db_wait, db_req, db_wait_s, db_err, rd_conn, rd_max = families
        for name, pool in sorted(self.db_pools.items()):
            stats = pool.get_stats()
            size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
            db_conn.add_metric([name, "in_use"], max(0, size - available))
            db_conn.add_metric([name, "idle"], available)
            db_max.add_metric([name], stats.get("pool_max", 0))
            db_wait.add_metric([name], stats.get("requests_waiting", 0))
            db_req.add_metric([name], stats.get("requests_num", 0))
            db_wait_s.add_metric([name], stats.get("requests_wait_ms", 0) / 1000.0)
            db_err.add_metric([name], stats.get("requests_errors", 0)
                              + stats.get("connections_errors", 0))
        for name, pool in sorted(self.redis_pools.items()):
            in_use, idle = redis_pool_usage(pool)
            if in_use is not None and idle is not None:
                rd_conn.add_metric([name, "in_use"], in_use)
                rd_conn.add_metric([name, "idle"], idle)
            rd_max.add_metric([name], getattr(pool, "max_connections", 0) or 0)
        return iter(families)


def redis_pool_usage(pool: Any) -> tuple[int | None, int | None]:
    """``(in_use, idle)`` connections of a redis-py pool, None when its layout is unknown."""
    if hasattr(pool, "_in_use_connections") and hasattr(pool, "_available_connections"):
        # ConnectionPool (sync) and every asyncio pool
        return len(pool._in_use_connections), len(pool._available_connections)
    if hasattr(pool, "_connections") and hasattr(pool, "pool"):
        # sync BlockingConnectionPool: a queue of idle connections padded with None
        created = len(pool._connections)
        idle = sum(1 for conn in list(pool.pool.queue) if conn is not None)
        return created - idle, idle
    return None, None


def _families() -> tuple[
    GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily,
    CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, GaugeMetricFamily,
]:
    return (
        GaugeMetricFamily("tickstock_db_pool_connections",
                          "PostgreSQL pool connections by state (in_use, idle).",
                          labels=["pool", "state"]),
        GaugeMetricFamily("tickstock_db_pool_max_connections",
                          "Most connections the PostgreSQL pool may open.", labels=["pool"]),
        GaugeMetricFamily("tickstock_db_pool_waiting_requests",
                          "Callers waiting for a PostgreSQL pool connection now.", labels=["pool"]),
        CounterMetricFamily("tickstock_db_pool_requests",
                            "Connections handed out by the PostgreSQL pool.", labels=["pool"]),
        CounterMetricFamily("tickstock_db_pool_wait_seconds",
                            "Time callers spent waiting for a PostgreSQL pool connection.",
                            labels=["pool"]),
        CounterMetricFamily("tickstock_db_pool_errors",
                            "Failed PostgreSQL pool requests and connection attempts.",
                            labels=["pool"]),
        GaugeMetricFamily("tickstock_redis_pool_connections",
                          "Redis pool connections by state (in_use, idle).",
                          labels=["pool", "state"]),
        GaugeMetricFamily("tickstock_redis_pool_max_connections",
                          "Most connections the Redis pool may open.", labels=["pool"]),
    )
