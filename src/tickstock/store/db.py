"""Connection pools. Built by a composition root and passed down; nothing connects at import."""

from __future__ import annotations

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, name: str = "tickstock") -> ConnectionPool:
    """An open psycopg pool whose connections return rows as dicts and run in UTC."""
    pool = ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        kwargs={"row_factory": dict_row, "options": "-c timezone=UTC"},
        open=False,
    )
    pool.open(wait=True, timeout=10)
    return pool
