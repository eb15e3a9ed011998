"""The stream's event sink writes what ``Envelope.create(...).encode()`` would, faster."""

from __future__ import annotations

import math
import re
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
from tickstock.contracts.events import (
    BarLive,
    BarLiveBatch,
    Event,
    IndicatorAlert,
    IndicatorAlertBatch,
    PatternDetected,
    PatternDetectedBatch,
    ServiceError,
)
from tickstock.core.clock import FrozenClock
from tickstock.core.errors import ContractError
from tickstock.core.ids import new_id
from tickstock.pipeline.stream.bars import AlertEvent, BarEvent, DetectionEvent, FinalBars, LiveBar
from tickstock.pipeline.stream.publisher import (
    BATCH_ALERTS,
    BATCH_BARS,
    BATCH_DETECTIONS,
    BusEventSink,
    encode_events,
)

TS = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
# a producer clock in another zone: the envelope time is written in UTC either way
NOW = datetime(2024, 3, 1, 10, 31, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))


def _detection(symbol: str = "AAPL", *, ts: datetime = TS, pattern: str = "cdl_hammer",
               strength: float | None = 1.0e-7, agrees: bool | None = None) -> PatternDetected:
    return PatternDetected(symbol=symbol, timeframe=Timeframe.MIN5, ts=ts, pattern=pattern,
                           direction="bullish", confidence=0.75, strength=strength,
                           price=181.25, levels={"stop": 180.5} if strength else {},
                           daily_agrees=agrees, source="live")


def _alert(symbol: str = "BRK.B", *, ts: datetime = TS, threshold: float | None = 70.0,
           message: str | None = 'rsi_14 crossed above 70 — "quoted"') -> IndicatorAlert:
    return IndicatorAlert(symbol=symbol, timeframe=Timeframe.MIN1, ts=ts, indicator="rsi_14",
                          value=71.5, condition="cross_above", threshold=threshold,
                          message=message)


def _events() -> list[Event]:
    """Events the sink sends one to an entry."""
    return [
        ServiceError(role="stream", instance="stream-1", error='redis slow — "quoted"'),
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
    assert sink.publish([*events, _detection()]) == len(events) + 1
    entries = client.xrange(names.EVENTS_STREAM)
    stored = [Envelope.decode(fields[names.ENVELOPE_FIELD.encode()]) for _, fields in entries]
    assert [e.data for e in stored[:-1]] == events
    assert stored[-1].data.split() == [_detection()]  # type: ignore[attr-defined]
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


_NAMES = st.from_regex(r"[a-z0-9_.]{1,24}", fullmatch=True)


@st.composite
def _group(draw: st.DrawFn) -> list[BarEvent]:
    """Bar events of one timeframe, start time and ``final`` (what one batch carries)."""
    first = draw(_bars())
    final = draw(st.booleans())
    names = draw(st.lists(_NAMES, max_size=6, unique=True))
    out = []
    for bar in [first, *draw(st.lists(_bars(), max_size=6))]:
        bar.timeframe, bar.start, bar.end = first.timeframe, first.start, first.end
        indicators = draw(st.dictionaries(st.sampled_from(names), _VALUE)) if names else {}
        out.append(BarEvent(bar, final, indicators))
    return out


def _batch_model(group: list[BarEvent]) -> BarLiveBatch:
    """The ``bar.live_batch`` a group of bar events stands for, built and checked by pydantic."""
    names = list(dict.fromkeys(k for e in group for k in e.indicators))
    bars = [e.bar for e in group]
    return BarLiveBatch(
        timeframe=bars[0].timeframe, ts=bars[0].start, final=group[0].final,
        symbols=tuple(b.symbol for b in bars), open=tuple(b.open for b in bars),
        high=tuple(b.high for b in bars), low=tuple(b.low for b in bars),
        close=tuple(b.close for b in bars), volume=tuple(b.volume for b in bars),
        vwap=tuple(b.vwap for b in bars), trades=tuple(b.trades for b in bars),
        indicators={k: tuple(_finite(e.indicators.get(k)) for e in group) for k in names})


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@settings(max_examples=300, deadline=None)
@given(group=_group())
def test_bar_events_encode_exactly_as_their_batch_model(group: list[BarEvent]) -> None:
    model = _batch_model(group)
    fast, slow = encode_events([*group, model], source="stream-test", ts=NOW)
    assert fast.replace(b'.0","type"', b'.1","type"') == slow  # the same bytes but the id's n
    decoded = Envelope.decode(fast).data
    assert isinstance(decoded, BarLiveBatch)
    # split, the batch is each bar's own event (non-finite values are no values)
    assert decoded.bars() == [
        BarLive(**{**e.model().model_dump(), "indicators": {
            k: v for k, v in e.indicators.items() if math.isfinite(v)}}) for e in group]


def _bar_event(symbol: str, tf: Timeframe, minute: int, final: bool = True) -> BarEvent:
    start = TS + timedelta(minutes=minute)
    bar = LiveBar(symbol, tf, start, start + timedelta(minutes=1), 1.0, 2.0, 0.5, 1.5, 10.0)
    return BarEvent(bar, final, {f"ind_{k}": 1.0 + k / 3 for k in range(17)} if final else {})


def test_bars_are_batched_by_timeframe_start_and_final_where_their_group_began() -> None:
    alert = _events()[0]
    minutes = [_bar_event(f"S{i}", Timeframe.MIN1, 0) for i in range(BATCH_BARS + 10)]
    fives = [_bar_event(f"S{i}", Timeframe.MIN5, 0) for i in range(3)]
    forming = [_bar_event("S1", Timeframe.MIN5, 0, final=False)]
    events: list[Event | BarEvent] = [alert, minutes[0], fives[0], *minutes[1:], *fives[1:],
                                      *forming, alert]
    decoded = [Envelope.decode(raw).data
               for raw in encode_events(events, source="stream-test", ts=NOW)]
    assert [type(d).__name__ for d in decoded] == [
        "ServiceError", "BarLiveBatch", "BarLiveBatch", "BarLiveBatch", "BarLiveBatch",
        "ServiceError"]
    batches = [d for d in decoded if isinstance(d, BarLiveBatch)]
    assert [(b.timeframe, len(b.symbols), b.final) for b in batches] == [
        (Timeframe.MIN1, BATCH_BARS, True), (Timeframe.MIN1, 10, True),
        (Timeframe.MIN5, 3, True), (Timeframe.MIN5, 1, False)]
    split = [bar for b in batches for bar in b.bars()]
    assert split == [e.model() for e in [*minutes, *fives, *forming]]


def test_a_batch_over_the_message_bound_is_halved() -> None:
    wide = {f"indicator_{k:04d}": 1.0 / (k + 3) for k in range(60)}  # ~1.7 kB a bar
    group = [BarEvent(e.bar, True, wide)
             for e in (_bar_event(f"S{i}", Timeframe.MIN1, 0) for i in range(BATCH_BARS))]
    raws = encode_events(group, source="stream-test", ts=NOW)
    assert len(raws) > 1 and all(len(r) <= MAX_MESSAGE_BYTES for r in raws)
    split = [bar for raw in raws for bar in Envelope.decode(raw).data.bars()]  # type: ignore[attr-defined]
    assert split == [e.model() for e in group]


def test_detections_are_batched_by_timeframe_start_and_source_as_their_model_writes_them() -> None:
    later = TS + timedelta(minutes=5)
    first = [_detection(f"S{i}", pattern=p, strength=None if i % 2 else 2.5, agrees=i % 3 == 0)
             for i in range(BATCH_DETECTIONS + 3) for p in ("cdl_hammer",)]
    second = [_detection("BRK.B", ts=later, pattern="cdl_engulfing")]
    alert = _events()[0]
    raws = encode_events([alert, *first[:2], *second, *first[2:]], source="stream-test", ts=NOW)
    decoded = [Envelope.decode(raw).data for raw in raws]
    assert [type(d).__name__ for d in decoded] == [
        "ServiceError", "PatternDetectedBatch", "PatternDetectedBatch", "PatternDetectedBatch"]
    assert [len(d.symbols) for d in decoded[1:]] == [BATCH_DETECTIONS, 3, 1]  # type: ignore[attr-defined]
    assert [x for d in decoded[1:] for x in d.split()] == [*first, *second]  # type: ignore[attr-defined]
    # the fast encoding is the model's own JSON
    batch = decoded[3]
    assert isinstance(batch, PatternDetectedBatch)
    fast, slow = encode_events([*second, batch], source="stream-test", ts=NOW)
    assert fast.replace(b'.0","type"', b'.1","type"') == slow


def test_alerts_are_batched_by_timeframe_and_start_as_their_model_writes_them() -> None:
    later = TS + timedelta(minutes=1)
    first = [_alert(f"S{i}", threshold=None if i % 2 else 70.0, message=None if i % 3 else "m")
             for i in range(BATCH_ALERTS + 2)]
    second = [_alert("AAPL", ts=later)]
    raws = encode_events([*first[:1], *second, *first[1:]], source="stream-test", ts=NOW)
    decoded = [Envelope.decode(raw).data for raw in raws]
    assert [(type(d).__name__, len(d.symbols)) for d in decoded] == [  # type: ignore[attr-defined]
        ("IndicatorAlertBatch", BATCH_ALERTS), ("IndicatorAlertBatch", 2),
        ("IndicatorAlertBatch", 1)]
    assert [x for d in decoded for x in d.split()] == [*first, *second]  # type: ignore[attr-defined]
    batch = decoded[2]
    assert isinstance(batch, IndicatorAlertBatch)
    fast, slow = encode_events([*second, batch], source="stream-test", ts=NOW)
    assert fast.replace(b'.0","type"', b'.1","type"') == slow


@st.composite
def _final_bars(draw: st.DrawFn) -> FinalBars:
    """Closed bars of a few timeframes and start times, interleaved as a chunk has them, with
    value columns (NaN and infinities among the values: no value)."""
    keys = draw(st.lists(st.tuples(st.sampled_from(list(Timeframe)), st.integers(0, 3)),
                         min_size=1, max_size=3, unique=True))
    names = tuple(draw(st.lists(_NAMES, max_size=6, unique=True)))
    bars = []
    for bar in draw(st.lists(_bars(), min_size=1, max_size=12)):
        timeframe, minute = draw(st.sampled_from(keys))
        bar.timeframe, bar.start = timeframe, TS + timedelta(minutes=minute)
        bar.end = bar.start + timedelta(minutes=1)
        bars.append(bar)
    values = np.array([[draw(_VALUE) for _ in names] for _ in bars], dtype=np.float64)
    return FinalBars(bars, names, values.reshape(len(bars), len(names)))


def _without_ids(raws: list[bytes]) -> list[bytes]:
    return [re.sub(rb'"id":"[^"]*"', b'"id":""', raw) for raw in raws]


@settings(max_examples=300, deadline=None)
@given(finals=_final_bars())
def test_final_bars_encode_as_the_bar_events_of_their_defined_values(finals: FinalBars) -> None:
    events = [BarEvent(bar, True, model.indicators)
              for bar, model in zip(finals.bars, finals.models(), strict=True)]
    raws = encode_events([finals], source="stream-test", ts=NOW)
    # byte for byte what the bar events are written as (``test_bar_events_encode_exactly...``
    # holds those to the batch model): columns in the order they first appear, null where a
    # bar has no value, absent where none has
    assert _without_ids(raws) == _without_ids(encode_events(events, source="stream-test",
                                                            ts=NOW))
    batches = [Envelope.decode(raw).data for raw in raws]
    assert all(isinstance(b, BarLiveBatch) and b.final for b in batches)
    by_group = [finals.models()[i] for rows in finals.groups() for i in rows]
    assert [bar for b in batches for bar in b.bars()] == by_group  # type: ignore[attr-defined]


def test_final_bars_are_batched_by_timeframe_and_start_where_they_are() -> None:
    minutes = [_bar_event(f"S{i}", Timeframe.MIN1, 0).bar for i in range(BATCH_BARS + 10)]
    fives = [_bar_event(f"S{i}", Timeframe.MIN5, 0).bar for i in range(3)]
    bars = [minutes[0], fives[0], *minutes[1:], *fives[1:]]
    names = ("rsi_14", "sma_20", "vwap.mid")
    values = np.array([[40.0 + i % 20, math.nan if i % 3 else 1.5, math.nan]
                       for i in range(len(bars))])
    finals = FinalBars(bars, names, values)
    alert = _events()[0]
    decoded = [Envelope.decode(raw).data
               for raw in encode_events([alert, finals, alert], source="stream-test", ts=NOW)]
    assert [type(d).__name__ for d in decoded] == [
        "ServiceError", "BarLiveBatch", "BarLiveBatch", "BarLiveBatch", "ServiceError"]
    batches = [d for d in decoded if isinstance(d, BarLiveBatch)]
    assert [(b.timeframe, len(b.symbols), list(b.indicators)) for b in batches] == [
        (Timeframe.MIN1, BATCH_BARS, ["rsi_14", "sma_20"]),
        (Timeframe.MIN1, 10, ["rsi_14", "sma_20"]), (Timeframe.MIN5, 3, ["rsi_14", "sma_20"])]
    models = finals.models()
    assert [bar for b in batches for bar in b.bars()] == [
        models[i] for i in [0, *range(2, len(bars) - 2), 1, len(bars) - 2, len(bars) - 1]]


def test_final_bars_over_the_message_bound_are_halved() -> None:
    bars = [_bar_event(f"S{i}", Timeframe.MIN1, 0).bar for i in range(BATCH_BARS)]
    names = tuple(f"indicator_{k:04d}" for k in range(60))  # ~1.7 kB a bar
    finals = FinalBars(bars, names, np.array([[1.0 / (k + 3) for k in range(60)]] * len(bars)))
    raws = encode_events([finals], source="stream-test", ts=NOW)
    assert len(raws) > 1 and all(len(r) <= MAX_MESSAGE_BYTES for r in raws)
    split = [bar for raw in raws for bar in Envelope.decode(raw).data.bars()]  # type: ignore[attr-defined]
    assert split == finals.models()


def _light(d: PatternDetected) -> DetectionEvent:
    return DetectionEvent(d.symbol, d.timeframe, d.ts, d.pattern, d.direction, d.confidence,
                          d.strength, d.price or 0.0, d.levels, {"trend": 0.5}, d.daily_agrees)


def test_detection_and_alert_events_encode_exactly_as_their_models() -> None:
    later = TS + timedelta(minutes=5)
    detections = [_light(_detection(f"S{i}", ts=later if i % 4 == 0 else TS,
                                    strength=None if i % 2 else 2.5, agrees=i % 3 == 0))
                  for i in range(2 * BATCH_DETECTIONS)]  # 3/4 at TS: two batches
    alerts = [AlertEvent(a.symbol, a.timeframe, a.ts, a.indicator, a.value, a.condition,
                         a.threshold, a.message)
              for a in (_alert(f"S{i}", threshold=None if i % 2 else 70.0,
                               message=None if i % 3 else "m") for i in range(9))]
    light = [*detections[:3], *alerts, *detections[3:]]
    models = [e.model() for e in light]
    assert _without_ids(encode_events(light, source="stream-test", ts=NOW)) == _without_ids(
        encode_events(models, source="stream-test", ts=NOW))
    decoded = [Envelope.decode(raw).data
               for raw in encode_events(light, source="stream-test", ts=NOW)]
    assert [type(d).__name__ for d in decoded] == [  # each group where its first event is
        "PatternDetectedBatch", "PatternDetectedBatch", "PatternDetectedBatch",
        "IndicatorAlertBatch"]
    split = [x for d in decoded for x in d.split()]  # type: ignore[attr-defined]
    assert sorted(split, key=repr) == sorted(models, key=repr)
