"""Operator views of the streams: what is queued (not delivered to the group yet), where an
envelope is, and the sizes of streams and groups."""

from __future__ import annotations

from datetime import UTC, datetime

import redis

from tickstock.bus.inspection import find, queued, stream_info
from tickstock.bus.streams import StreamPublisher
from tickstock.contracts import Envelope, names
from tickstock.contracts import jobs as j

from .conftest import make_consumer


def _job(symbol: str) -> Envelope:
    return Envelope.create(j.HistoricalLoad(symbols=(symbol,), start=datetime(2025, 1, 1, tzinfo=UTC),
                                            end=datetime(2025, 2, 1, tzinfo=UTC)), source="test")


def test_queued_is_what_the_group_has_not_been_given(client: redis.Redis) -> None:
    assert queued(client, names.JOBS_STREAM, names.WORKERS_GROUP) == []  # no stream yet
    envelopes = [_job(s) for s in ("A", "B", "C")]
    StreamPublisher(client).publish_many(names.JOBS_STREAM, envelopes)
    client.xadd(names.JOBS_STREAM, {names.ENVELOPE_FIELD: b"junk"})  # left to the consumers
    assert queued(client, names.JOBS_STREAM, names.WORKERS_GROUP) == envelopes  # no group yet
    consumer = make_consumer(client, count=1)
    taken: list[str] = []
    consumer.register("job.historical_load", lambda env: taken.append(env.id))
    consumer.poll(block_ms=10)
    assert taken == [envelopes[0].id]
    assert queued(client, names.JOBS_STREAM, names.WORKERS_GROUP) == envelopes[1:]
    assert queued(client, names.JOBS_STREAM, names.WORKERS_GROUP, limit=1) == envelopes[1:2]
    # find sees delivered and undelivered entries alike
    assert find(client, names.JOBS_STREAM, envelopes[0].id) == envelopes[0]
    assert find(client, names.JOBS_STREAM, envelopes[2].id) == envelopes[2]
    assert find(client, names.JOBS_STREAM, "no-such-id") is None


def test_stream_info_counts_entries_groups_and_pending(client: redis.Redis) -> None:
    missing = stream_info(client, names.JOBS_STREAM)
    assert (missing.length, missing.groups) == (0, ())
    StreamPublisher(client).publish_many(names.JOBS_STREAM, [_job(s) for s in ("A", "B", "C")])
    consumer = make_consumer(client, count=2)
    consumer.register("job.historical_load", lambda env: None)
    consumer.ensure_groups()
    client.xreadgroup(names.WORKERS_GROUP, "slow", {names.JOBS_STREAM: ">"}, count=1)  # pending
    info = stream_info(client, names.JOBS_STREAM)
    [group] = info.groups
    assert info.length == 3
    assert (group.name, group.consumers, group.pending, group.lag) == (
        names.WORKERS_GROUP, 1, 1, 2)
