"""Durable streams: at-least-once delivery, ack after the handler, retries, claims, dead letters."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import redis

from tickstock.bus import deadletter
from tickstock.bus.streams import StreamPublisher
from tickstock.contracts import Envelope, names
from tickstock.contracts import commands as c
from tickstock.contracts import jobs as j
from tickstock.core.errors import ContractError

from .conftest import make_consumer

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 2, 1, tzinfo=UTC)


def _job(symbol: str = "AAPL") -> Envelope:
    return Envelope.create(j.HistoricalLoad(symbols=(symbol,), start=T0, end=T1), source="test")


def _drain(consumer, rounds: int = 40) -> None:  # type: ignore[no-untyped-def]
    stop = threading.Event()
    timer = threading.Timer(10, stop.set)
    timer.start()
    try:
        consumer.run(stop, drain=True)
    finally:
        timer.cancel()
    assert not stop.is_set(), "drain did not finish within 10 s"


def test_publish_consume_ack(client: redis.Redis) -> None:
    publisher = StreamPublisher(client)
    sent = [_job(s) for s in ("AAPL", "MSFT", "IBM")]
    publisher.publish(names.JOBS_STREAM, sent[0])
    publisher.publish_many(names.JOBS_STREAM, sent[1:])
    seen: list[Envelope] = []
    consumer = make_consumer(client, count=10)
    consumer.register("job.historical_load", seen.append)
    _drain(consumer)
    assert seen == sent
    assert consumer.pending() == 0
    assert client.xlen(names.DEAD_LETTER_STREAM) == 0


def test_work_queued_before_the_group_exists_is_delivered(client: redis.Redis) -> None:
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    seen: list[Envelope] = []
    consumer = make_consumer(client)
    consumer.register("job.historical_load", seen.append)
    _drain(consumer)
    assert len(seen) == 1


def test_each_entry_goes_to_one_consumer(client: redis.Redis) -> None:
    StreamPublisher(client).publish_many(names.JOBS_STREAM, [_job() for _ in range(40)])
    seen: dict[str, list[str]] = {"a": [], "b": []}
    consumers = []
    for name in seen:
        consumer = make_consumer(client, name, count=3)
        consumer.register("job.historical_load", lambda e, n=name: seen[n].append(e.id))
        consumers.append(consumer)
    while sum(c.poll(block_ms=10) for c in consumers):
        pass
    assert len(seen["a"]) + len(seen["b"]) == 40
    assert not set(seen["a"]) & set(seen["b"])
    assert seen["a"] and seen["b"]


def test_failed_handler_is_retried_then_dead_lettered(client: redis.Redis) -> None:
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    attempts: list[int] = []

    def flaky(envelope: Envelope) -> None:
        attempts.append(1)
        raise RuntimeError(f"attempt {len(attempts)} failed")

    consumer = make_consumer(client, max_deliveries=3, claim_idle_ms=50)
    consumer.register("job.historical_load", flaky)
    _drain(consumer)
    assert len(attempts) == 3
    [(_, letter)] = deadletter.read(client)
    assert "gave up after 3 deliveries" in letter.reason
    assert "attempt 3 failed" in letter.reason
    assert letter.stream == names.JOBS_STREAM and letter.deliveries == 4
    assert Envelope.decode(letter.original).type == "job.historical_load"


def test_handler_succeeding_on_retry_is_acked_once(client: redis.Redis) -> None:
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    calls: list[int] = []

    def second_time_lucky(envelope: Envelope) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database blip")

    consumer = make_consumer(client, claim_idle_ms=50)
    consumer.register("job.historical_load", second_time_lucky)
    _drain(consumer)
    assert len(calls) == 2
    assert client.xlen(names.DEAD_LETTER_STREAM) == 0


def test_contract_error_from_handler_dead_letters_at_once(client: redis.Redis) -> None:
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())

    def refuse(envelope: Envelope) -> None:
        raise ContractError("universe 'nope' does not exist")

    consumer = make_consumer(client)
    consumer.register("job.historical_load", refuse)
    _drain(consumer)
    [(_, letter)] = deadletter.read(client)
    assert letter.reason == "refused by handler: universe 'nope' does not exist"
    assert letter.message_type == "job.historical_load"


def test_entries_of_a_dead_consumer_are_claimed(client: redis.Redis) -> None:
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    dead = make_consumer(client, "dead")
    dead.ensure_groups()
    # The dead consumer read the entry and never acknowledged it.
    client.xreadgroup(names.WORKERS_GROUP, "dead", {names.JOBS_STREAM: ">"}, count=1)
    seen: list[Envelope] = []
    alive = make_consumer(client, "alive", claim_idle_ms=200)
    alive.register("job.historical_load", seen.append)
    assert alive.poll(block_ms=10) == 0  # not idle long enough yet
    time.sleep(0.25)
    _drain(alive)
    assert len(seen) == 1
    assert alive.pending() == 0


def test_a_slow_live_consumer_keeps_its_entry(client: redis.Redis) -> None:
    """The lease thread renews an entry while its handler runs longer than claim_idle_ms."""
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    runs: list[str] = []

    def slow(envelope: Envelope) -> None:
        runs.append("slow")
        time.sleep(1.0)

    slow_consumer = make_consumer(client, "slow", claim_idle_ms=300)
    slow_consumer.register("job.historical_load", slow)
    thief = make_consumer(client, "thief", claim_idle_ms=300)
    thief.register("job.historical_load", lambda e: runs.append("thief"))
    stop = threading.Event()
    worker = threading.Thread(target=slow_consumer.run, args=(stop,), kwargs={"drain": True})
    worker.start()
    while not runs:
        time.sleep(0.01)
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        thief.poll(claim=True, block_ms=20)
    worker.join(timeout=5)
    assert runs == ["slow"]


def test_malformed_and_misplaced_entries_are_dead_lettered(client: redis.Redis) -> None:
    stream = names.JOBS_STREAM
    client.xadd(stream, {"envelope": b"{not json"})
    client.xadd(stream, {"other": b"x"})
    client.xadd(stream, {"envelope": b"x", "more": b"y"})
    cmd = Envelope.create(c.Cancel(job_id="x"), source="t")
    StreamPublisher(client).publish(stream, cmd)  # a command on the jobs stream
    StreamPublisher(client).publish(stream, _job())  # a good one after all the junk
    seen: list[Envelope] = []
    consumer = make_consumer(client, count=10)
    consumer.register("job.historical_load", seen.append)
    consumer.register("command.cancel", seen.append)
    _drain(consumer)
    assert [e.type for e in seen] == ["job.historical_load"]
    reasons = [letter.reason for _, letter in reversed(deadletter.read(client))]
    assert reasons[0].startswith("not JSON")
    assert "exactly one field 'envelope'" in reasons[1]
    assert "exactly one field 'envelope'" in reasons[2]
    assert "does not belong on tickstock:jobs:stream" in reasons[3]


def test_unhandled_types(client: redis.Redis) -> None:
    publisher = StreamPublisher(client)
    publisher.publish(names.COMMANDS_STREAM, Envelope.create(c.Cancel(job_id="x"), source="t"))
    publisher.publish(names.JOBS_STREAM, _job())
    consumer = make_consumer(client, streams=(names.COMMANDS_STREAM, names.JOBS_STREAM),
                             ack_unhandled_on=frozenset({names.COMMANDS_STREAM}))
    _drain(consumer)
    [(_, letter)] = deadletter.read(client)
    assert letter.reason.startswith("no handler for 'job.historical_load'")
    assert consumer.pending() == 0


def test_stream_deleted_under_a_consumer_is_recreated(client: redis.Redis) -> None:
    seen: list[Envelope] = []
    consumer = make_consumer(client)
    consumer.register("job.historical_load", seen.append)
    consumer.poll(block_ms=10)
    client.delete(names.JOBS_STREAM)  # what a Redis restart without persistence looks like
    consumer.poll(block_ms=10)
    StreamPublisher(client).publish(names.JOBS_STREAM, _job())
    _drain(consumer)
    assert len(seen) == 1
