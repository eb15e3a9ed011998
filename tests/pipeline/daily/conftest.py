"""Fixtures of the daily-run tests; the harness itself is ``daily_harness``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daily_harness import LAST_DAY, Harness

from tickstock.bus.connection import connect
from tickstock.core.clock import FrozenClock
from tickstock.store.db import create_pool


@pytest.fixture
def harness(db_dsn: str, redis_url: str, shared_data: Path) -> Iterator[Harness]:
    pool = create_pool(db_dsn, max_size=10)
    client = connect(redis_url, name="daily-test")
    h = Harness(db_dsn, pool, client, FrozenClock(LAST_DAY), shared_data)
    yield h
    h.stop_workers()
    client.close()
    pool.close()
