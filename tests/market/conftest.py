"""Fixtures of the market tests: a pool on the clean test database, the calendar."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.store.db import create_pool


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    pool = create_pool(db_dsn, min_size=1, max_size=4, name="market-tests")
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def calendar() -> MarketCalendar:
    return nyse()
