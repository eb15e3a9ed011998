"""Live events onto the bus's capped event stream (and its pub/sub mirror), a burst at a time.

``tickstock.bus.events.EventPublisher`` sends one event per round trip; a minute burst is
thousands of events, so this sink wraps them in envelopes and sends them in pipelined chunks —
the same stream, the same entry field, the same cap and mirror as the bus.
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
_CHUNK = 2000  # commands per pipeline round trip: bounded memory, few round trips


class BusEventSink:
    """Publishes events as process ``source``; ``mirror`` also PUBLISHes each on the channel."""

    def __init__(self, client: redis.Redis, *, source: str, clock: Clock,
                 maxlen: int = EVENTS_MAXLEN, mirror: bool = True) -> None:
        self.client = client
        self.source = source
        self.clock = clock
        self.maxlen = maxlen
        self.mirror = mirror

    def publish(self, events: Sequence[Event]) -> int:
        """Publish ``events`` in order; raises ``redis.ConnectionError`` when Redis is down
        (the caller counts it: events are best effort, the bars are stored)."""
        now = self.clock.now()
        raws = [self.envelope(e, now).encode() for e in events]
        step = _CHUNK // 2 if self.mirror else _CHUNK
        for i in range(0, len(raws), step):
            pipe = self.client.pipeline(transaction=False)
            for raw in raws[i:i + step]:
                pipe.xadd(names.EVENTS_STREAM, {_FIELD: raw}, maxlen=self.maxlen,
                          approximate=True)
                if self.mirror:
                    pipe.publish(names.EVENTS_CHANNEL, raw)
            pipe.execute()
        return len(raws)

    def envelope(self, event: Event, now: datetime) -> Envelope:
        return Envelope.create(event, source=self.source, ts=now)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)
