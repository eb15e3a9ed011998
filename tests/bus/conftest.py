"""Bus test helpers: a client on the session's Redis database and a consumer factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tickstock.bus.connection import connect
from tickstock.bus.streams import Consumer, ConsumerOptions
from tickstock.contracts import names
from tickstock.core.clock import LiveClock


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url, name="test")
    yield c
    c.close()


def make_consumer(client: redis.Redis, name: str = "c1", *,
                  streams: tuple[str, ...] = (names.JOBS_STREAM,), **options: object) -> Consumer:
    opts = ConsumerOptions(**{"block_ms": 50, "claim_idle_ms": 300, "claim_every_s": 0.0,
                              **options})  # type: ignore[arg-type]
    return Consumer(client, group=names.WORKERS_GROUP, name=name, streams=streams,
                    clock=LiveClock(), options=opts)
