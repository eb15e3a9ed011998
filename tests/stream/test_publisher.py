"""The stream's event sink writes what ``Envelope.create(...).encode()`` would, faster."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tickstock.bus.connection import connect
from tickstock.contracts import names
from tickstock.contracts.common import Timeframe
from tickstock.contracts.envelope import MAX_MESSAGE_BYTES, Envelope
from tickstock.contracts.events import BarLive, Event, IndicatorAlert, PatternDetected
from tickstock.core.clock import FrozenClock
from tickstock.core.errors import ContractError
from tickstock.core.ids import new_id
from tickstock.pipeline.stream.bars import BarEvent, LiveBar
from tickstock.pipeline.stream.publisher import BusEventSink, encode_events

TS = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
# a producer clock in another zone: the envelope time is written in UTC either way
NOW = datetime(2024, 3, 1, 10, 31, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))


def _events() -> list[Event]:
    return [
        PatternDetected(symbol="AAPL", timeframe=Timeframe.MIN5, ts=TS, pattern="cdl_hammer",
                        direction="bullish", confidence=0.75, strength=1.0e-7, price=181.25,
                        levels={"stop": 180.5}, source="live"),
        IndicatorAlert(symbol="BRK.B", timeframe=Timeframe.MIN1, ts=TS, indicator="rsi_14",
                       value=71.5, condition="cross_above", threshold=70.0,
                       message='rsi_14 crossed above 70 — "quoted"'),
        BarLive(symbol="MSFT", timeframe=Timeframe.MIN1, ts=TS, open=1.0, high=2.5, low=0.5,
                close=2.0, volume=1.5e9, vwap=None, trades=12, final=True,
                indicators={"rsi_14": 55.125, "macd_12_26_9.hist": -3.0e-5}),
    ]


def test_encoded_events_decode_to_the_envelopes_create_makes() -> None:
    events = _events()
    raws = encode_events(events, source="stream-host-1", ts=NOW)
    decoded = [Envelope.decode(raw) for raw in raws]
    for got, event in zip(decoded, events, strict=True):
        want = Envelope.decode(Envelope.create(event, source="stream-host-1", ts=NOW).encode())
        assert got.model_copy(update={"id": want.id}) == want
        assert got.data == event
    assert len({e.id for e in decoded}) == len(events)
    assert [e.id for e in decoded] == sorted(e.id for e in decoded)  # n-th of the call, in order


def test_encoding_refuses_an_oversized_event_and_a_bad_source_or_time() -> None:
    big = BarLive(symbol="MSFT", timeframe=Timeframe.MIN1, ts=TS, open=1.0, high=1.0, low=1.0,
                  close=1.0, volume=1.0,
                  indicators={f"x{i:06d}": float(i) for i in range(MAX_MESSAGE_BYTES // 10)})
    with pytest.raises(ContractError, match="too large"):
        encode_events([big], source="s", ts=NOW)
    with pytest.raises(ContractError, match="source"):
        encode_events(_events(), source="", ts=NOW)
    with pytest.raises(ValueError, match="timezone"):
        encode_events(_events(), source="s", ts=datetime(2024, 3, 1, 15, 30))


def test_sink_appends_every_event_in_order_and_mirrors_it(redis_url: str) -> None:
    client = connect(redis_url, name="test-sink")
    pubsub = client.pubsub()
    pubsub.subscribe(names.EVENTS_CHANNEL)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    events = _events() * 700  # more than one script call's chunk
    # pub/sub channels span Redis's logical databases: other sessions publish there too
    source = f"stream-test-{new_id()}"
    sink = BusEventSink(client, source=source, clock=FrozenClock(NOW))
    assert sink.publish(events) == len(events)
    entries = client.xrange(names.EVENTS_STREAM)
    stored = [Envelope.decode(fields[names.ENVELOPE_FIELD.encode()]) for _, fields in entries]
    assert [e.data for e in stored] == events
    mirrored = []
    while len(mirrored) < len(stored) and (message := pubsub.get_message(timeout=2.0)):
        envelope = Envelope.decode(message["data"])
        if envelope.source == source:
            mirrored.append(envelope)
    assert mirrored == stored
    pubsub.close()
    client.close()


def test_sink_raises_when_redis_is_down() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    sink = BusEventSink(client, source="stream-test", clock=FrozenClock(NOW))
    with pytest.raises(redis.ConnectionError):
        sink.publish(_events())


_PRICE = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)
_VALUE = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.builds(np.float64, _PRICE))




@st.composite
def _bars(draw: st.DrawFn) -> LiveBar:
    start = TS + timedelta(minutes=draw(st.integers(min_value=0, max_value=10**6)))
    prices = draw(st.lists(_PRICE, min_size=4, max_size=4))
    return LiveBar(draw(st.from_regex(r"[A-Z]{1,5}(\.[A-Z])?", fullmatch=True)),
                   draw(st.sampled_from(list(Timeframe))), start, start + timedelta(minutes=1),
                   *prices, draw(st.floats(min_value=0, max_value=1e12)),
                   draw(st.one_of(st.none(), _PRICE)),
                   draw(st.one_of(st.none(), st.integers(min_value=0, max_value=10**9))))


@settings(max_examples=300, deadline=None)
@given(bar=_bars(), final=st.booleans(),
       indicators=st.dictionaries(st.from_regex(r"[a-z0-9_.]{1,24}", fullmatch=True), _VALUE,
                                  max_size=25))
def test_a_bar_event_encodes_exactly_as_its_model(bar: LiveBar, final: bool,
                                                  indicators: dict[str, float]) -> None:
    event = BarEvent(bar, final, indicators)
    fast, slow = encode_events([event, event.model()], source="stream-test", ts=NOW)
    assert fast.replace(b'.0","type"', b'.1","type"') == slow  # the same bytes but the id's n
    if all(math.isfinite(v) for v in indicators.values()):  # the engine sends finite ones only
        assert Envelope.decode(fast).data == event.model()
