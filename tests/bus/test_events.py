"""The event stream: capped, mirrored on pub/sub, readable from any point, malformed entries
dead-lettered once however many readers see them."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from tickstock.bus import deadletter
from tickstock.bus.events import EventPublisher, EventReader
from tickstock.contracts import Envelope, names
from tickstock.contracts import commands as c
from tickstock.contracts import events as e
from tickstock.core.clock import LiveClock
from tickstock.core.errors import ContractError


def _progress(n: int) -> e.JobProgress:
    return e.JobProgress(job_id="job-1", total=10, processed=n, percent=n * 10.0)


def test_publish_reaches_stream_and_channel(client: redis.Redis) -> None:
    pubsub = client.pubsub()
    pubsub.subscribe(names.EVENTS_CHANNEL)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"  # type: ignore[index]
    sent = EventPublisher(client, source="w1").publish(_progress(3), correlation_id="job-1")
    assert sent is not None and sent.correlation_id == "job-1" and sent.source == "w1"
    assert _mirrored(pubsub, sent.id) == sent
    [(_, read)] = EventReader(client, clock=LiveClock()).recent(10)
    assert read == sent
    pubsub.close()


def _mirrored(pubsub: Any, envelope_id: str, timeout: float = 5) -> Envelope | None:
    """Our envelope from the channel. Pub/sub ignores the logical database, so other test
    sessions on the same server publish on this channel too: skip their messages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is None or message["type"] != "message":
            continue
        try:
            envelope = Envelope.decode(message["data"])
        except ContractError:
            continue  # someone else's junk
        if envelope.id == envelope_id:
            return envelope
    return None


def test_only_events_are_published(client: redis.Redis) -> None:
    with pytest.raises(ContractError):
        EventPublisher(client, source="w").publish(c.Cancel(job_id="x"))


def test_stream_is_capped(client: redis.Redis) -> None:
    publisher = EventPublisher(client, source="w", maxlen=100, mirror=False)
    for n in range(600):
        publisher.publish(_progress(n % 10))
    assert 100 <= client.xlen(names.EVENTS_STREAM) < 600


def test_reader_catches_up_then_follows(client: redis.Redis) -> None:
    publisher = EventPublisher(client, source="w")
    reader = EventReader(client, clock=LiveClock())
    publisher.publish(_progress(1))
    start = reader.latest_id()
    publisher.publish(_progress(2))
    cursor, events = reader.read(start, block_ms=10)
    assert [ev.payload(e.JobProgress).processed for _, ev in events] == [2]
    stop = threading.Event()
    got: list[int] = []

    def follow() -> None:
        for _, ev in reader.follow(stop, after=cursor, block_ms=50):
            got.append(ev.payload(e.JobProgress).processed)
            if len(got) == 3:
                stop.set()

    thread = threading.Thread(target=follow)
    thread.start()
    for n in (3, 4, 5):
        publisher.publish(_progress(n))
    thread.join(timeout=5)
    assert got == [3, 4, 5]


def test_malformed_events_are_skipped_and_dead_lettered_once(client: redis.Redis) -> None:
    publisher = EventPublisher(client, source="w")
    publisher.publish(_progress(1))
    client.xadd(names.EVENTS_STREAM, {"envelope": b'{"v": 9}'})
    job = Envelope.create(c.Cancel(job_id="j"), source="t")
    client.xadd(names.EVENTS_STREAM, {"envelope": job.encode()})  # a command is not an event
    publisher.publish(_progress(2))
    readers = [EventReader(client, clock=LiveClock()) for _ in range(3)]
    for reader in readers:
        _, events = reader.read("0-0", block_ms=10)
        assert [ev.payload(e.JobProgress).processed for _, ev in events] == [1, 2]
    letters = [letter for _, letter in deadletter.read(client)]
    assert sorted(letter.reason for letter in letters) == [
        "a command.cancel does not belong on the event stream",
        "unknown contract version 9 (this build speaks [1])",
    ]
    assert all(letter.stream == names.EVENTS_STREAM for letter in letters)


def test_event_times_are_utc(client: redis.Redis) -> None:
    sent = EventPublisher(client, source="w").publish(
        e.BarLive(symbol="aapl", timeframe="1min", ts=datetime(2025, 1, 2, 15, 31, tzinfo=UTC),
                  open=1, high=2, low=1, close=2, volume=10))
    assert sent is not None
    [(_, read)] = EventReader(client, clock=LiveClock()).recent()
    assert read.payload(e.BarLive).symbol == "AAPL"
    assert read.ts.tzinfo is not None
