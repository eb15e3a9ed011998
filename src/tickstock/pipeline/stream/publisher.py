"""Live events onto the bus's capped event stream (and its pub/sub mirror), a burst at a time.

``tickstock.bus.events.EventPublisher`` sends one event per round trip; a minute burst is
thousands of events, so this sink wraps them in envelopes and hands them to Redis a chunk at a
time through one small Lua script (one command per chunk: redis-py's per-command packing is
what a pipeline of thousands of XADDs spends its time on) — the same stream, the same entry
field (one envelope per entry), the same cap and mirror as the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import redis

from tickstock.bus.connection import TRANSIENT_ERRORS
from tickstock.bus.events import EVENTS_MAXLEN
from tickstock.contracts import names
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import Event
from tickstock.core.clock import Clock

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

    def publish(self, events: Sequence[Event]) -> int:
        """Publish ``events`` in order; raises ``redis.ConnectionError`` when Redis is down
        (the caller counts it: events are best effort, the bars are stored)."""
        now = self.clock.now()
        raws = [self.envelope(e, now).encode() for e in events]
        head = [self.maxlen, 1 if self.mirror else 0, _FIELD]
        for i in range(0, len(raws), _CHUNK):
            self._xadd_many(keys=[names.EVENTS_STREAM, names.EVENTS_CHANNEL],
                            args=[*head, *raws[i:i + _CHUNK]])
        return len(raws)

    def envelope(self, event: Event, now: datetime) -> Envelope:
        return Envelope.create(event, source=self.source, ts=now)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)
