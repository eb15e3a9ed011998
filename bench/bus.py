"""End-to-end throughput of the bus against raw Redis, measured in the same run.

    bus: StreamPublisher.publish_many -> Consumer.poll (XREADGROUP, decode and validate each
         envelope against the contract, run the handler, XACK in one MULTI per batch)
    raw: pipelined XADD of the same encoded bytes -> XREADGROUP -> pipelined XACK, no decoding

Messages are ``batch.run_phase`` envelopes of 20 symbols (the high-volume stream of a daily
run), sent in batches of ``BATCH``. Each round measures raw then bus back to back; the result
is the median of the rounds' ratios (a shared, noisy machine drifts between rounds, much less
within one). Target: the bus keeps at least half of raw Redis' rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from common import median, report, scratch_redis
from tickstock.bus.connection import connect
from tickstock.bus.streams import Consumer, ConsumerOptions, StreamPublisher
from tickstock.contracts import Envelope, names
from tickstock.contracts.common import Phase
from tickstock.contracts.jobs import RunPhaseBatch
from tickstock.core.clock import LiveClock

MESSAGES = 10_000
BATCH = 100
ROUNDS = 7
STREAM = names.BATCHES_STREAM
GROUP = names.WORKERS_GROUP
FIELD = names.ENVELOPE_FIELD.encode()


def envelopes(n: int) -> list[Envelope]:
    symbols = tuple(f"SYM{i}" for i in range(20))
    return [Envelope.create(RunPhaseBatch(run_id="bench-run", phase=Phase.INDICATORS,
                                          batch_no=i, symbols=symbols),
                            source="bench", correlation_id="bench-run") for i in range(n)]


def _fresh(client: redis.Redis) -> None:
    client.delete(STREAM)
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)


def raw_round(client: redis.Redis, payloads: list[bytes]) -> float:
    """Messages per second of pipelined XADD, XREADGROUP and XACK without the bus."""
    _fresh(client)
    start = time.perf_counter()
    for i in range(0, len(payloads), BATCH):
        pipe = client.pipeline(transaction=False)
        for raw in payloads[i:i + BATCH]:
            pipe.xadd(STREAM, {FIELD: raw}, maxlen=100_000, approximate=True)
        pipe.execute()
    done = 0
    while done < len(payloads):
        reply: Any = client.xreadgroup(GROUP, "raw", {STREAM: ">"}, count=BATCH)
        ids = [entry_id for _, entries in reply for entry_id, _ in entries]
        client.xack(STREAM, GROUP, *ids)
        done += len(ids)
    return len(payloads) / (time.perf_counter() - start)


def bus_round(client: redis.Redis, messages: list[Envelope]) -> float:
    """Messages per second through tickstock.bus: publish, consume with a group, ack."""
    _fresh(client)
    handled = 0

    def handler(envelope: Envelope) -> None:
        nonlocal handled
        handled += 1

    consumer = Consumer(client, group=GROUP, name="bus", streams=(STREAM,), clock=LiveClock(),
                        options=ConsumerOptions(count=BATCH, block_ms=100,
                                                claim_every_s=3600.0))
    consumer.register(RunPhaseBatch.message_type, handler)
    publisher = StreamPublisher(client)
    start = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        publisher.publish_many(STREAM, messages[i:i + BATCH])
    while handled < len(messages):
        consumer.poll()
    rate = len(messages) / (time.perf_counter() - start)
    if consumer.pending() != 0:
        raise SystemExit("bus round left entries pending: acknowledgement is broken")
    return rate


def measure(label: str, run: Callable[[], float], rates: list[float]) -> None:
    rate = run()
    rates.append(rate)
    print(f"  {label:4} {rate:>10,.0f} msg/s")


def main() -> int:
    messages = envelopes(MESSAGES)
    payloads = [m.encode() for m in messages]
    print(f"bus throughput: {MESSAGES} messages of {len(payloads[0])} bytes, batches of {BATCH}")
    raw_rates: list[float] = []
    bus_rates: list[float] = []
    with scratch_redis() as url:
        client = connect(url, name="bench-bus")
        bus_round(client, messages[:500])  # warm up: pydantic's validators, connections
        for n in range(ROUNDS):
            print(f"round {n + 1}")
            measure("raw", lambda: raw_round(client, payloads), raw_rates)
            measure("bus", lambda: bus_round(client, messages), bus_rates)
        client.close()
    ratios = [bus / raw for raw, bus in zip(raw_rates, bus_rates, strict=True)]
    print(f"median raw {median(raw_rates):,.0f} msg/s, bus {median(bus_rates):,.0f} msg/s; "
          f"ratios {', '.join(f'{r:.2f}' for r in ratios)}")
    return report("bus_vs_raw_throughput_ratio", median(ratios), ">=", 0.5)


if __name__ == "__main__":
    raise SystemExit(main())
