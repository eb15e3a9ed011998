"""Live events onto the bus's capped event stream (and its pub/sub mirror), a burst at a time.

``tickstock.bus.events.EventPublisher`` sends one event per round trip; a minute burst is
thousands of events, so this sink wraps them in envelopes and hands them to Redis a chunk at a
time through one small Lua script (one command per chunk: redis-py's per-command packing is
what a pipeline of thousands of XADDs spends its time on) — the same stream, the same entry
field (one envelope per entry), the same cap and mirror as the bus.

Encoding is the other cost of a burst: ``Envelope.create(...).encode()`` validates a new model
and draws a UUID for every event. ``encode_events`` writes the same wire format
(``contracts.envelope``: field order, the payload's own serializer, the size bound) around each
payload's JSON, with the parts every envelope of a call shares (time, source) serialised once
and ids drawn once per call (``<uuid4>.<n>``: unique, and a valid ``Identifier``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime

import orjson
import redis
from pydantic import TypeAdapter

from tickstock.bus.connection import TRANSIENT_ERRORS
from tickstock.bus.events import EVENTS_MAXLEN
from tickstock.contracts import names
from tickstock.contracts.common import UtcDatetime
from tickstock.contracts.envelope import CONTRACT_VERSION, MAX_MESSAGE_BYTES
from tickstock.contracts.events import Event
from tickstock.core.clock import Clock
from tickstock.core.errors import ContractError
from tickstock.core.ids import new_id
from tickstock.pipeline.stream.bars import BarEvent

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

    def publish(self, events: Sequence[Event | BarEvent]) -> int:
        """Publish ``events`` in order; raises ``redis.ConnectionError`` when Redis is down
        (the caller counts it: events are best effort, the bars are stored)."""
        raws = encode_events(events, source=self.source, ts=self.clock.now())
        head = [self.maxlen, 1 if self.mirror else 0, _FIELD]
        for i in range(0, len(raws), _CHUNK):
            self._xadd_many(keys=[names.EVENTS_STREAM, names.EVENTS_CHANNEL],
                            args=[*head, *raws[i:i + _CHUNK]])
        return len(raws)


_TS: TypeAdapter[UtcDatetime] = TypeAdapter(UtcDatetime)
_SOURCE_MAX = 256


def encode_events(events: Sequence[Event | BarEvent], *, source: str, ts: datetime) -> list[bytes]:
    """``Envelope.create(e, source=source, ts=ts).encode()`` for each of ``events`` (ids aside;
    a ``BarEvent`` as its ``model()``), without building an envelope model per event;
    ContractError names an oversized one."""
    batch = new_id()
    head = f'{{"v":{CONTRACT_VERSION},"id":"{batch}.'.encode()
    if not 0 < len(source) <= _SOURCE_MAX:  # the envelope's bound on ``source``
        raise ContractError(f"source must be 1-{_SOURCE_MAX} characters, got {source!r}")
    # the time is checked (aware) and written by the envelope's own field type, once a call
    shared = (b'","ts":' + _TS.dump_json(_TS.validate_python(ts)) + b',"source":'
              + json.dumps(source).encode() + b',"correlation_id":null,"data":')
    raws = []
    times: dict[datetime, str] = {}
    for n, event in enumerate(events):
        payload = (_bar_json(event, times) if isinstance(event, BarEvent)
                   else event.__pydantic_serializer__.to_json(event))
        raw = b"".join((head, str(n).encode(), b'","type":"', event.message_type.encode(), shared,
                        payload, b"}"))
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ContractError(f"message {event.message_type} {batch}.{n} is too large: "
                                f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
        raws.append(raw)
    return raws


def _bar_json(event: BarEvent, times: dict[datetime, str]) -> bytes:
    """``event.model()`` as its serializer writes it: the same fields in the same order,
    floats by orjson (shortest round-trip and non-finite as null, like pydantic-core), the start time by the
    contract's own type (once per distinct time: a burst shares one)."""
    bar = event.bar
    ts = times.get(bar.start)
    if ts is None:
        ts = times[bar.start] = _TS.dump_python(_TS.validate_python(bar.start), mode="json")
    return orjson.dumps({
        "symbol": bar.symbol, "timeframe": bar.timeframe.value, "ts": ts, "open": bar.open,
        "high": bar.high, "low": bar.low, "close": bar.close, "volume": bar.volume,
        "vwap": bar.vwap, "trades": bar.trades, "final": event.final,
        "indicators": event.indicators,
    }, default=float)  # numpy float scalars


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)
