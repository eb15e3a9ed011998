"""Live events onto the bus's capped event stream (and its pub/sub mirror), a burst at a time.

``tickstock.bus.events.EventPublisher`` sends one event per round trip; a minute burst is
thousands of events, so this sink wraps them in envelopes and hands them to Redis a chunk at a
time through one small Lua script (one command per chunk: redis-py's per-command packing is
what a pipeline of thousands of XADDs spends its time on) — the same stream, the same entry
field (one envelope per entry), the same cap and mirror as the bus.

Bars, detections and alerts travel many to an event: a burst's bars of one timeframe and
start time go out as ``bar.live_batch`` events of up to ``BATCH_BARS`` symbols each (a chunk's
closed bars arrive as columns, ``FinalBars``, and are written from them), its
detections and alerts as ``pattern.detected_batch`` and ``indicator.alert_batch`` events (a
few dozen entries instead of thousands, for Redis and for every reader of the stream to
handle); the web role splits them into the single events browsers receive.

Encoding is the other cost of a burst: ``Envelope.create(...).encode()`` validates a new model
and draws a UUID for every event. ``encode_events`` writes the same wire format
(``contracts.envelope``: field order, the payload's own serializer, the size bound) around each
payload's JSON, with the parts every envelope of a call shares (time, source) serialised once
and ids drawn once per call (``<uuid4>.<n>``: unique, and a valid ``Identifier``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any, cast

import numpy as np
import redis

from tickstock.bus.connection import TRANSIENT_ERRORS
from tickstock.bus.events import EVENTS_MAXLEN
from tickstock.contracts import names
from tickstock.contracts.envelope import MAX_MESSAGE_BYTES, Envelope
from tickstock.contracts.events import (
    BarLiveBatch,
    Event,
    IndicatorAlert,
    IndicatorAlertBatch,
    PatternDetected,
    PatternDetectedBatch,
)
from tickstock.core.clock import Clock
from tickstock.pipeline.stream.bars import AlertEvent, BarEvent, DetectionEvent, FinalBars, LiveEvent

logger = logging.getLogger(__name__)

_FIELD = names.ENVELOPE_FIELD.encode()
_CHUNK = 1000  # envelopes per script call: bounded memory, a short time inside Redis
#: KEYS: stream, channel. ARGV: maxlen, mirror (1/0), entry field, envelopes...
_XADD_MANY = """
local mirror = ARGV[2] == '1'
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', ARGV[3], ARGV[i])
  if mirror then redis.call('PUBLISH', KEYS[2], ARGV[i]) end
end
return #ARGV - 3
"""


class BusEventSink:
    """Publishes events as process ``source``; ``mirror`` also PUBLISHes each on the channel."""

    def __init__(self, client: redis.Redis, *, source: str, clock: Clock,
                 maxlen: int = EVENTS_MAXLEN, mirror: bool = True) -> None:
        self.client = client
        self.source = source
        self.clock = clock
        self.maxlen = maxlen
        self.mirror = mirror
        self._xadd_many = client.register_script(_XADD_MANY)

    def publish(self, events: Sequence[LiveEvent]) -> int:
        """Publish ``events`` in order; raises ``redis.ConnectionError`` when Redis is down
        (the caller counts it: events are best effort, the bars are stored)."""
        raws = encode_events(events, source=self.source, ts=self.clock.now())
        head = [self.maxlen, 1 if self.mirror else 0, _FIELD]
        for i in range(0, len(raws), _CHUNK):
            self._xadd_many(keys=[names.EVENTS_STREAM, names.EVENTS_CHANNEL],
                            args=[*head, *raws[i:i + _CHUNK]])
        return len(raws)


def encode_events(events: Sequence[LiveEvent], *, source: str, ts: datetime) -> list[bytes]:
    """``Envelope.create(e, source=source, ts=ts).encode()`` for each of ``events`` (ids aside),
    without building an envelope model per event (``Envelope.encode_payloads``); ContractError
    names an oversized one. The ``BarEvent``s, ``FinalBars``, detections and alerts (models
    or their ``DetectionEvent`` / ``AlertEvent``) become batch events (``_payloads``)."""
    return Envelope.encode_payloads(_payloads(events), source=source, ts=ts)


#: Bars of one ``bar.live_batch`` at most: about 110 kB with the live indicator set, well under
#: the message bound (a batch over it is halved).
BATCH_BARS = 250
#: Detections of one ``pattern.detected_batch`` (about 150 bytes each), alerts of one
#: ``indicator.alert_batch`` (about 130), at most.
BATCH_DETECTIONS = 500
BATCH_ALERTS = 500
_Detected = PatternDetected | DetectionEvent
_Alerted = IndicatorAlert | AlertEvent
_Batched = BarEvent | _Detected | _Alerted


def _payloads(events: Sequence[LiveEvent]) -> list[tuple[str, bytes]]:
    """(message type, payload JSON) of ``events``; bars, detections and alerts grouped into
    batches (by ``_group``), each group's where its first event was. The bars of a
    ``FinalBars`` are grouped among themselves (by timeframe and start time), where it is."""
    slots: list[Event | tuple[object, ...] | tuple[FinalBars, list[int]]] = []
    groups: dict[tuple[object, ...], list[_Batched]] = {}
    for event in events:
        if isinstance(event, FinalBars):
            slots.extend((event, rows) for rows in event.groups())
        elif isinstance(event, _Batched):
            key = _group(event)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
                slots.append(key)
            group.append(event)
        else:
            slots.append(event)
    out: list[tuple[str, bytes]] = []
    for slot in slots:
        if isinstance(slot, tuple) and isinstance(slot[0], FinalBars):
            finals, rows = cast(tuple[FinalBars, list[int]], slot)
            out.extend((BarLiveBatch.message_type, raw)
                       for raw in _batches(rows, BATCH_BARS, partial(_columns_batch, finals)))
        elif isinstance(slot, tuple):
            group = groups[slot]
            if isinstance(group[0], BarEvent):
                out.extend((BarLiveBatch.message_type, raw)
                           for raw in _batches(group, BATCH_BARS, _bar_batch))
            elif isinstance(group[0], _Detected):
                out.extend((PatternDetectedBatch.message_type, raw)
                           for raw in _batches(group, BATCH_DETECTIONS, _detection_batch))
            else:
                out.extend((IndicatorAlertBatch.message_type, raw)
                           for raw in _batches(group, BATCH_ALERTS, _alert_batch))
        else:
            out.append((slot.message_type, slot.__pydantic_serializer__.to_json(slot)))
    return out


def _group(event: _Batched) -> tuple[object, ...]:
    """What the events of one batch share."""
    if isinstance(event, BarEvent):
        return ("bar", event.bar.timeframe, event.bar.start, event.final)
    if isinstance(event, _Detected):
        return ("pattern", event.timeframe, event.ts, event.source)
    return ("alert", event.timeframe, event.ts)


def _batches(events: Sequence[Any], size: int, encode: Callable[[Sequence[Any]], bytes]
             ) -> list[bytes]:
    """``encode`` of ``events`` ``size`` at a time, a part over the message bound halved."""
    out: list[bytes] = []
    parts = [events[i:i + size] for i in range(0, len(events), size)]
    while parts:
        part = parts.pop(0)
        raw = encode(part)
        if len(raw) > _BATCH_BYTES and len(part) > 1:
            half = len(part) // 2
            parts[:0] = [part[:half], part[half:]]
        else:
            out.append(raw)
    return out


def _bar_batch(part: Sequence[BarEvent]) -> bytes:
    """The ``bar.live_batch`` payload of ``part`` (one timeframe, start time and ``final``); an
    indicator a bar has no value of is ``null`` in its column."""
    first = part[0].bar
    columns: dict[str, list[float | None]] = {}
    for i, event in enumerate(part):
        for name, value in event.indicators.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * len(part)
            column[i] = value
    return BarLiveBatch.payload_json(
        symbols=[e.bar.symbol for e in part], timeframe=first.timeframe, ts=first.start,
        final=part[0].final, open=[e.bar.open for e in part], high=[e.bar.high for e in part],
        low=[e.bar.low for e in part], close=[e.bar.close for e in part],
        volume=[e.bar.volume for e in part], vwap=[e.bar.vwap for e in part],
        trades=[e.bar.trades for e in part], indicators=columns)


def _columns_batch(finals: FinalBars, rows: Sequence[int]) -> bytes:
    """The ``bar.live_batch`` payload of ``finals``' bars at ``rows`` (one timeframe and start
    time), column by column: what ``_bar_batch`` writes for their ``BarEvent``s -- an indicator
    ``null`` where a bar has no value, absent where none has, the indicators in the order they
    first appear bar after bar."""
    bars = list(map(finals.bars.__getitem__, rows))
    block = finals.values[list(rows)]
    defined = np.isfinite(block)
    present = np.flatnonzero(defined.any(axis=0))
    order = present[np.argsort(defined.argmax(axis=0)[present], kind="stable")]
    names = [finals.names[j] for j in cast(list[int], order.tolist())]
    columns = cast(list[list[float]], block.T[order].tolist())  # NaN is written null
    first = bars[0]
    # the bars' fields as columns in one pass (tuples: written as the same JSON arrays)
    symbols, opens, highs, lows, closes, volumes, vwaps, trades = zip(
        *map(_BAR_FIELDS, bars), strict=True)
    return BarLiveBatch.payload_json(
        symbols=symbols, timeframe=first.timeframe, ts=first.start, final=True, open=opens,
        high=highs, low=lows, close=closes, volume=volumes, vwap=vwaps, trades=trades,
        indicators=dict(zip(names, columns, strict=True)))


_BAR_FIELDS = attrgetter("symbol", "open", "high", "low", "close", "volume", "vwap", "trades")


def _detection_batch(part: Sequence[_Detected]) -> bytes:
    """The ``pattern.detected_batch`` payload of ``part`` (one timeframe, start time, source)."""
    first = part[0]
    return PatternDetectedBatch.payload_json(
        symbols=[d.symbol for d in part], timeframe=first.timeframe, ts=first.ts,
        source=first.source, pattern=[d.pattern for d in part],
        direction=[d.direction for d in part], confidence=[d.confidence for d in part],
        strength=[d.strength for d in part], price=[d.price for d in part],
        levels=[d.levels for d in part], daily_agrees=[d.daily_agrees for d in part])


def _alert_batch(part: Sequence[_Alerted]) -> bytes:
    """The ``indicator.alert_batch`` payload of ``part`` (one timeframe and start time)."""
    first = part[0]
    return IndicatorAlertBatch.payload_json(
        symbols=[a.symbol for a in part], timeframe=first.timeframe, ts=first.ts,
        indicator=[a.indicator for a in part], value=[a.value for a in part],
        condition=[a.condition for a in part], threshold=[a.threshold for a in part],
        message=[a.message for a in part])


#: A payload that fits in a message with the envelope around it (``encode_events`` checks).
_BATCH_BYTES = MAX_MESSAGE_BYTES - 1024


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)
