"""Events: a capped stream every event goes to (browsers catch up from it), mirrored on a
pub/sub channel for ad-hoc observers (``redis-cli SUBSCRIBE tickstock:events:live``).

Publishing is best effort: an event that cannot be published while Redis is down is counted
and dropped, never a reason to fail the work it describes (PostgreSQL holds that state).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any, Final

import redis

from tickstock.bus import deadletter
from tickstock.bus.connection import TRANSIENT_ERRORS, Backoff
from tickstock.bus.metrics import EVENTS_DROPPED, MESSAGES_IN, MESSAGES_OUT, RECONNECTS
from tickstock.contracts import names
from tickstock.contracts.common import Payload
from tickstock.contracts.envelope import Envelope, decode
from tickstock.contracts.registry import MESSAGE_TYPES
from tickstock.core.clock import Clock
from tickstock.core.errors import ContractError

log = logging.getLogger(__name__)

#: Approximate length of the event stream: enough for a browser that reconnects after minutes
#: of a busy nightly run to catch up, small enough to stay a few MB.
EVENTS_MAXLEN: Final = 20_000
_FIELD: Final = names.ENVELOPE_FIELD.encode()


class EventPublisher:
    """Publishes events as process ``source``."""

    def __init__(self, client: redis.Redis, *, source: str, maxlen: int = EVENTS_MAXLEN,
                 mirror: bool = True) -> None:
        self._client = client
        self._source = source
        self._maxlen = maxlen
        self._mirror = mirror
        self._out = MESSAGES_OUT.labels(names.EVENTS_STREAM)

    @property
    def source(self) -> str:
        return self._source

    def publish(self, data: Payload, *, correlation_id: str | None = None) -> Envelope | None:
        """Publish ``data`` (an event payload); the envelope, or None if Redis was down."""
        if data.kind != "event":
            raise ContractError(f"{data.message_type} is a {data.kind}, not an event")
        envelope = Envelope.create(data, source=self._source, correlation_id=correlation_id)
        return envelope if self.publish_envelope(envelope) else None

    def publish_envelope(self, envelope: Envelope) -> bool:
        raw = envelope.encode()
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.xadd(names.EVENTS_STREAM, {_FIELD: raw}, maxlen=self._maxlen, approximate=True)
            if self._mirror:
                pipe.publish(names.EVENTS_CHANNEL, raw)
            pipe.execute()
        except TRANSIENT_ERRORS as exc:
            EVENTS_DROPPED.inc()
            log.warning("event %s dropped, Redis unavailable: %s", envelope.type, exc,
                        extra={"correlation_id": envelope.correlation_id})
            return False
        self._out.inc()
        return True


class EventReader:
    """Reads the event stream from a position (no consumer group: every reader sees every
    event). Malformed entries are dead-lettered once (whichever reader sees them first) and
    skipped."""

    def __init__(self, client: redis.Redis, *, clock: Clock, dead_letter: bool = True) -> None:
        self._client = client
        self._clock = clock
        self._dead_letter = dead_letter
        self._in = MESSAGES_IN.labels(names.EVENTS_STREAM)

    def latest_id(self) -> str:
        """Id of the newest entry ("0-0" when empty): start here to see only new events."""
        rows: Any = self._client.xrevrange(names.EVENTS_STREAM, count=1)
        return rows[0][0].decode() if rows else "0-0"

    def recent(self, count: int = 100) -> list[tuple[str, Envelope]]:
        """The last ``count`` events, oldest first (a reconnecting view catches up with it)."""
        rows: Any = self._client.xrevrange(names.EVENTS_STREAM, count=count)
        return self._decode_rows(list(reversed(rows)))

    def read(self, after: str, *, block_ms: int = 1000,
             count: int = 500) -> tuple[str, list[tuple[str, Envelope]]]:
        """Events after id ``after`` (waiting up to ``block_ms``); returns the new cursor."""
        reply: Any = self._client.xread({names.EVENTS_STREAM: after}, count=count, block=block_ms)
        if not reply:
            return after, []
        rows = reply[0][1]
        self._in.inc(len(rows))
        return rows[-1][0].decode(), self._decode_rows(rows)

    def follow(self, stop: threading.Event, *, after: str | None = None,
               block_ms: int = 1000) -> Iterator[tuple[str, Envelope]]:
        """Every event after ``after`` (default: from now) until ``stop``; rides out Redis
        restarts with back-off."""
        backoff = Backoff(self._clock)
        cursor = after
        while not stop.is_set():
            try:
                if cursor is None:
                    cursor = self.latest_id()
                cursor, events = self.read(cursor, block_ms=block_ms)
                backoff.reset()
            except TRANSIENT_ERRORS as exc:
                RECONNECTS.labels("event_reader").inc()
                backoff.wait(exc, "event reader")
                continue
            yield from events

    def _decode_rows(self, rows: list[tuple[bytes, dict[bytes, bytes]]]
                     ) -> list[tuple[str, Envelope]]:
        out: list[tuple[str, Envelope]] = []
        for raw_id, fields in rows:
            entry_id = raw_id.decode()
            try:
                raw = fields.get(_FIELD)
                if raw is None or len(fields) != 1:
                    raise ContractError(f"entry must have exactly one field "
                                        f"{names.ENVELOPE_FIELD!r}")
                envelope = decode(raw)
                if MESSAGE_TYPES[envelope.type].kind != "event":
                    raise ContractError(f"a {envelope.type} does not belong on the event stream")
            except ContractError as exc:
                self._reject(entry_id, fields, str(exc))
                continue
            out.append((entry_id, envelope))
        return out

    def _reject(self, entry_id: str, fields: dict[bytes, bytes], reason: str) -> None:
        log.warning("skipping malformed event %s: %s", entry_id, reason)
        if self._dead_letter:
            letter = deadletter.make(names.EVENTS_STREAM, entry_id, fields, reason,
                                     now=self._clock.now())
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the next reader records it
                deadletter.add_once(self._client, letter, cause="malformed")
