"""Redis restarts under a running consumer, heartbeat and event reader: they reconnect with
back-off and carry on; entries queued before or during the outage are not lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tickstock.bus.connection import connect
from tickstock.bus.events import EventPublisher, EventReader
from tickstock.bus.heartbeat import HeartbeatThread, read_heartbeats
from tickstock.bus.streams import Consumer, ConsumerOptions, StreamPublisher
from tickstock.contracts import Envelope, names
from tickstock.contracts import events as e
from tickstock.contracts import jobs as j
from tickstock.core.clock import LiveClock

from .redis_server import PrivateRedis

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    private = PrivateRedis(tmp_path / "redis").start()
    yield private
    private.stop()


def _job(n: int) -> Envelope:
    return Envelope.create(
        j.HistoricalLoad(symbols=(f"S{n}",), start=datetime(2025, 1, 1, tzinfo=UTC),
                         end=datetime(2025, 1, 2, tzinfo=UTC)), source="test")


def _publish_when_up(client: redis.Redis, envelope: Envelope) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            StreamPublisher(client).publish(names.JOBS_STREAM, envelope)
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_consumer_heartbeat_and_reader_survive_a_restart(server: PrivateRedis) -> None:
    client = connect(server.url, name="restart-test")
    seen: list[str] = []

    def slow_handler(env: Envelope) -> None:
        seen.append(env.id)
        time.sleep(0.2)  # so that work is still queued and in flight when Redis goes down

    consumer = Consumer(client, group=names.WORKERS_GROUP, name="w1",
                        streams=(names.JOBS_STREAM,), clock=LiveClock(),
                        options=ConsumerOptions(block_ms=100, claim_idle_ms=1000))
    consumer.register("job.historical_load", slow_handler)
    stop = threading.Event()
    loop = threading.Thread(target=consumer.run, args=(stop,))
    loop.start()
    beat = HeartbeatThread(client, role="worker", instance="w1", clock=LiveClock(),
                           interval_s=0.2, ttl_s=5).start()
    events: list[int] = []
    reader = EventReader(client, clock=LiveClock())

    def follow() -> None:
        for _, env in reader.follow(stop, after="0-0", block_ms=100):
            events.append(env.payload(e.JobProgress).processed)

    follower = threading.Thread(target=follow)
    follower.start()
    try:
        before = [_job(n) for n in range(8)]
        for env in before:
            _publish_when_up(client, env)
        EventPublisher(client, source="t").publish(e.JobProgress(job_id="j", processed=1))
        _wait(lambda: len(seen) >= 1 and events == [1])
        server.restart(down_s=1.5)  # most of `before` is still queued
        queued_at_restart = len(before) - len(seen)
        after = [_job(n) for n in range(8, 11)]
        for env in after:
            _publish_when_up(client, env)
        EventPublisher(client, source="t").publish(e.JobProgress(job_id="j", processed=2))
        expected = [env.id for env in before + after]
        _wait(lambda: sorted(seen) == sorted(expected) and events[-1:] == [2], timeout=30)
        _wait(lambda: [hb.instance for hb in read_heartbeats(client)] == ["w1"])
        _wait(lambda: consumer.pending() == 0)
    finally:
        stop.set()
        beat.stop()
        loop.join(timeout=10)
        follower.join(timeout=10)
        client.close()
    assert queued_at_restart >= 3
    assert len(seen) == len(set(seen)) == 11
    assert not loop.is_alive() and not follower.is_alive()


def _wait(condition, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
