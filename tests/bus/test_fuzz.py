"""Property: whatever lands on a stream — junk bytes, broken envelopes, unknown versions and
types, wrong field types, 1 MB bodies, messages of the wrong kind — every bad entry ends in the
dead-letter stream with a reason, every good entry around it is handled exactly once, and the
consumer keeps going."""

from __future__ import annotations

import json
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickstock.bus import deadletter
from tickstock.bus.events import EventReader
from tickstock.bus.streams import Consumer, ConsumerOptions
from tickstock.contracts import MESSAGE_TYPES, Envelope, names
from tickstock.contracts.examples import EXAMPLES as SAMPLES
from tickstock.core.clock import LiveClock

REQUIRED = ("v", "id", "type", "ts", "source", "data")
KIND_STREAMS = {"command": names.COMMANDS_STREAM, "job": names.JOBS_STREAM,
                "batch": names.BATCHES_STREAM, "event": names.EVENTS_STREAM}


def _valid(kind: str) -> st.SearchStrategy[Envelope]:
    types = sorted(t for t, m in MESSAGE_TYPES.items() if m.kind == kind)
    return st.sampled_from(types).map(lambda t: Envelope.create(SAMPLES[t], source="fuzz"))


def _base(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return _valid(kind).map(lambda env: json.loads(env.encode()))


def _drop(obj: dict[str, Any], field: str) -> bytes:
    return json.dumps({k: v for k, v in obj.items() if k != field}).encode()


def _set(obj: dict[str, Any], field: str, value: Any) -> bytes:
    return json.dumps({**obj, field: value}).encode()


def _bad(kind: str) -> st.SearchStrategy[dict[bytes, bytes]]:
    """Entries that are invalid by construction (each strategy breaks a rule on purpose)."""
    base = _base(kind)
    wrong_kind = st.sampled_from([k for k in KIND_STREAMS if k != kind]).flatmap(_valid)
    bodies = st.one_of(
        st.binary(max_size=300),                                              # not JSON / junk
        st.text(max_size=100).map(lambda t: json.dumps(t).encode()),          # JSON, not object
        st.tuples(base, st.sampled_from(REQUIRED)).map(lambda p: _drop(*p)),  # missing field
        st.tuples(base, st.integers().filter(lambda v: v != 1)).map(
            lambda p: _set(p[0], "v", p[1])),                                  # wrong version
        st.tuples(base, st.text(max_size=30).filter(lambda t: t not in MESSAGE_TYPES)).map(
            lambda p: _set(p[0], "type", p[1])),                               # unknown type
        st.tuples(base, st.sampled_from(["ts", "id", "data", "source"]),
                  st.sampled_from([[1], 12.5, None, True])).map(
            lambda p: _set(p[0], p[1], p[2])),                                 # wrong field type
        base.map(lambda o: _set(o, "source", "x" * (1024 * 1024))),            # 1 MB body
        wrong_kind.map(lambda env: env.encode()),                              # wrong stream
    )
    return st.one_of(
        bodies.map(lambda b: {names.ENVELOPE_FIELD.encode(): b}),
        st.dictionaries(st.binary(min_size=1, max_size=10), st.binary(max_size=20),
                        max_size=3).filter(lambda d: list(d) != [names.ENVELOPE_FIELD.encode()]),
    )


def _entries(kind: str) -> st.SearchStrategy[list[tuple[bool, Any]]]:
    good = _valid(kind).map(lambda env: (True, env))
    bad = _bad(kind).map(lambda fields: (False, fields))
    return st.lists(st.one_of(good, bad), min_size=1, max_size=8)


def _add(client: redis.Redis, stream: str, entries: list[tuple[bool, Any]]) -> dict[str, Any]:
    added: dict[str, Any] = {}
    for ok, item in entries:
        fields = {names.ENVELOPE_FIELD: item.encode()} if ok else (item or {b"empty": b""})
        entry_id = client.xadd(stream, fields).decode()
        added[entry_id] = item if ok else None
    return added


FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(kind=st.sampled_from(["command", "job", "batch"]), data=st.data())
def test_durable_streams_dead_letter_bad_entries(client: redis.Redis, kind: str,
                                                 data: st.DataObject) -> None:
    client.flushdb()
    stream = KIND_STREAMS[kind]
    added = _add(client, stream, data.draw(_entries(kind)))
    handled: list[str] = []
    consumer = Consumer(client, group=names.WORKERS_GROUP, name="fuzz", streams=(stream,),
                        clock=LiveClock(), options=ConsumerOptions(count=50, block_ms=10))
    for message_type, model in MESSAGE_TYPES.items():
        if model.kind == kind:
            consumer.register(message_type, lambda env: handled.append(env.id))
    while consumer.poll(block_ms=10):
        pass
    assert consumer.pending() == 0
    good = [item.id for item in added.values() if item is not None]
    assert handled == good
    letters = {letter.entry_id: letter for _, letter in deadletter.read(client, count=100)}
    assert set(letters) == {i for i, item in added.items() if item is None}
    assert all(letter.reason and letter.stream == stream for letter in letters.values())


@FUZZ
@given(data=st.data())
def test_event_stream_dead_letters_bad_entries(client: redis.Redis, data: st.DataObject) -> None:
    client.flushdb()
    added = _add(client, names.EVENTS_STREAM, data.draw(_entries("event")))
    reader = EventReader(client, clock=LiveClock())
    _, events = reader.read("0-0", block_ms=10, count=100)
    _, again = EventReader(client, clock=LiveClock()).read("0-0", block_ms=10, count=100)
    assert [env for _, env in events] == [item for item in added.values() if item is not None]
    assert again == events
    letters = {letter.entry_id: letter for _, letter in deadletter.read(client, count=100)}
    assert set(letters) == {i for i, item in added.items() if item is None}
    assert len(letters) == client.xlen(names.DEAD_LETTER_STREAM)  # once, for two readers
