"""Durable streams: publish, and consume with a consumer group, at least once.

How an entry travels (DESIGN.md §2):

1. ``StreamPublisher.publish`` XADDs the encoded envelope (one field, ``names.ENVELOPE_FIELD``).
2. ``Consumer.poll`` XREADGROUPs new entries; every ``claim_every_s`` it also XAUTOCLAIMs entries
   other consumers left pending longer than ``claim_idle_ms`` (they died).
3. Each entry is decoded and checked: undecodable, of the wrong kind for the stream, without a
   handler, or delivered more than ``max_deliveries`` times → dead-letter stream with the reason,
   acknowledged in the same MULTI, and the consumer goes on.
4. The handler runs. It returns → XACK (its effect is committed). It raises ``ContractError`` →
   dead letter. It raises anything else → the entry stays pending and is retried after
   ``claim_idle_ms`` (by whichever consumer claims it), up to ``max_deliveries``.
5. While a handler runs, a lease thread re-claims its entry (XCLAIM JUSTID) every third of
   ``claim_idle_ms``, so a slow but live consumer is never robbed; a dead one stops renewing.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis

from tickstock.bus import deadletter
from tickstock.bus.connection import TRANSIENT_ERRORS, Backoff
from tickstock.bus.metrics import (
    HANDLER_ERRORS,
    MESSAGES_ACKED,
    MESSAGES_IN,
    MESSAGES_OUT,
    PENDING,
    RECLAIMED,
    RECONNECTS,
)
from tickstock.contracts import names
from tickstock.contracts.envelope import Envelope, decode
from tickstock.contracts.registry import MESSAGE_TYPES
from tickstock.contracts.state import DeadLetter
from tickstock.core.clock import Clock
from tickstock.core.errors import ContractError
from tickstock.core.logcontext import log_context

log = logging.getLogger(__name__)

#: Approximate bound of a durable stream. Acknowledged entries are not needed; the bound is far
#: above any backlog a deployment should ever have, so unread work is not trimmed.
DURABLE_MAXLEN: Final = 100_000

Handler = Callable[[Envelope], None]


class LeavePending(Exception):
    """Raised by a handler that stopped on purpose (shutdown) without finishing: the entry is
    neither acknowledged nor counted as a failure; another consumer claims it after
    ``claim_idle_ms``."""

#: Called after an entry was dead-lettered, with the envelope when it could be decoded.
DeadLetterHook = Callable[[DeadLetter, Envelope | None], None]
_FIELD: Final = names.ENVELOPE_FIELD.encode()


class StreamPublisher:
    """Appends envelopes to durable streams. Raises ``redis.RedisError`` when Redis stays
    unreachable through the client's retries: the caller must know the work was not queued."""

    def __init__(self, client: redis.Redis, *, maxlen: int = DURABLE_MAXLEN) -> None:
        self._client = client
        self._maxlen = maxlen

    def publish(self, stream: str, envelope: Envelope) -> str:
        entry_id = self._client.xadd(stream, {_FIELD: envelope.encode()},
                                     maxlen=self._maxlen, approximate=True)
        MESSAGES_OUT.labels(stream).inc()
        return _str(entry_id)

    def publish_many(self, stream: str, envelopes: Iterable[Envelope]) -> list[str]:
        """Pipelined XADDs: one round trip for the lot."""
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for envelope in envelopes:
            pipe.xadd(stream, {_FIELD: envelope.encode()}, maxlen=self._maxlen, approximate=True)
            count += 1
        ids = pipe.execute()
        MESSAGES_OUT.labels(stream).inc(count)
        return [_str(i) for i in ids]


@dataclass(frozen=True)
class ConsumerOptions:
    """Tuning of a consumer. ``count`` 1 suits slow handlers (jobs): an entry waits in nobody's
    pending list while another runs."""

    count: int = 1
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_every_s: float = 5.0
    max_deliveries: int = 5
    #: Streams where a known type without a handler here is acknowledged and skipped, because
    #: another consumer group (another role) handles it.
    ack_unhandled_on: frozenset[str] = frozenset()


@dataclass
class _Batch:
    """Acks and dead letters of one poll, flushed in one MULTI."""

    acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    letters: list[tuple[DeadLetter, str, Envelope | None]] = field(default_factory=list)


class Consumer:
    """One member of a consumer group reading one or more durable streams."""

    def __init__(self, client: redis.Redis, *, group: str, name: str, streams: Sequence[str],
                 clock: Clock, options: ConsumerOptions | None = None,
                 on_dead_letter: DeadLetterHook | None = None) -> None:
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        self.client = client
        self.group = group
        self.name = name
        self.streams = tuple(streams)
        self.options = options or ConsumerOptions()
        self._clock = clock
        self._on_dead_letter = on_dead_letter
        self._handlers: dict[str, Handler] = {}
        self._in_flight: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._last_error: dict[tuple[str, str], str] = {}
        self._claim_cursor = dict.fromkeys(self.streams, "0-0")
        self._last_claim = float("-inf")
        self._groups_ready = False
        self._in = {s: MESSAGES_IN.labels(s) for s in self.streams}
        self._acked = {s: MESSAGES_ACKED.labels(s) for s in self.streams}

    # -- setup -----------------------------------------------------------------------------
    def register(self, message_type: str, handler: Handler) -> None:
        """Handle ``message_type`` with ``handler``; one handler per type."""
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"{message_type!r} is not a message type of the contract")
        if message_type in self._handlers and self._handlers[message_type] is not handler:
            raise ValueError(f"{message_type!r} already has a handler in consumer {self.name}")
        self._handlers[message_type] = handler

    def ensure_groups(self) -> None:
        """Create the group on every stream (and the stream) if missing; from id 0, so work
        queued before the first consumer existed is delivered."""
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    # -- the loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, drain: bool = False) -> None:
        """Poll until ``stop`` is set; with ``drain``, return once nothing is pending or queued
        on any stream (work held by a dead consumer is claimed first)."""
        backoff = Backoff(self._clock)
        lease_stop = threading.Event()
        lease = threading.Thread(target=self._renew_leases_until, args=(lease_stop,),
                                 daemon=True, name=f"lease-{self.name}")
        lease.start()
        block_ms = min(self.options.block_ms, 200) if drain else None
        try:
            while not stop.is_set():
                try:
                    handled = self.poll(claim=drain, block_ms=block_ms)
                    if drain and handled == 0 and self.pending() == 0:
                        return
                    backoff.reset()
                except TRANSIENT_ERRORS as exc:
                    RECONNECTS.labels("consumer").inc()
                    self._groups_ready = False
                    backoff.wait(exc, f"consumer {self.name}")
        finally:
            lease_stop.set()
            lease.join(timeout=2)

    def poll(self, *, claim: bool = False, block_ms: int | None = None) -> int:
        """One round: maybe reclaim idle entries, read new ones, handle them. Returns the number
        of entries handled (acknowledged, dead-lettered or failed)."""
        if not self._groups_ready:
            self.ensure_groups()
        try:
            return self._poll(claim, block_ms)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group vanished (Redis restarted without its data, or someone
            # deleted the key): recreate both on the next poll.
            log.warning("consumer group %s vanished; recreating it", self.group)
            self._groups_ready = False
            return 0

    def _poll(self, claim: bool, block_ms: int | None) -> int:
        handled = 0
        now = self._clock.monotonic()
        if claim or now - self._last_claim >= self.options.claim_every_s:
            self._last_claim = now
            handled += self._reclaim()
        reply: Any = self.client.xreadgroup(
            self.group, self.name, dict.fromkeys(self.streams, ">"),
            count=self.options.count,
            block=self.options.block_ms if block_ms is None else block_ms)
        for stream_raw, entries in reply or ():
            stream = _str(stream_raw)
            self._in[stream].inc(len(entries))
            handled += self._handle_entries(stream, [(_str(i), f, 1) for i, f in entries])
        return handled

    def pending(self) -> int:
        """Entries delivered to any consumer of the group and not acknowledged, all streams."""
        total = 0
        for stream in self.streams:
            try:
                summary: Any = self.client.xpending(stream, self.group)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups_ready = False
                continue
            count = int(summary["pending"]) if summary else 0
            PENDING.labels(stream, self.group).set(count)
            total += count
        return total

    def undelivered(self) -> int:
        """Entries not yet delivered to any consumer of the group (0 or more; a lower bound of
        1 is enough to know work is waiting)."""
        waiting = 0
        for stream in self.streams:
            try:
                groups: Any = self.client.xinfo_groups(stream)
            except redis.ResponseError:
                continue  # no such stream: nothing waiting
            for group in groups:
                if _str(group["name"]) == self.group:
                    after = _str(group["last-delivered-id"])
                    rows: Any = self.client.xrange(stream, min=f"({after}", count=1)
                    waiting += len(rows)
        return waiting

    def idle(self) -> bool:
        """Nothing pending and nothing waiting on any stream."""
        return self.pending() == 0 and self.undelivered() == 0

    # -- internals -------------------------------------------------------------------------
    def _reclaim(self) -> int:
        handled = 0
        for stream in self.streams:
            reply: Any = self.client.xautoclaim(
                stream, self.group, self.name, self.options.claim_idle_ms,
                start_id=self._claim_cursor[stream], count=max(self.options.count, 10))
            cursor, entries = _str(reply[0]), [e for e in reply[1] if e and e[1] is not None]
            self._claim_cursor[stream] = cursor
            if not entries:
                continue
            RECLAIMED.labels(stream).inc(len(entries))
            ids = [_str(e[0]) for e in entries]
            pending: Any = self.client.xpending_range(
                stream, self.group, min=ids[0], max=ids[-1], count=len(ids) + 10,
                consumername=self.name)
            counts = {_str(p["message_id"]): int(p["times_delivered"]) for p in pending}
            log.info("claimed %d idle entries of %s", len(ids), stream)
            handled += self._handle_entries(
                stream, [(i, f, counts.get(i, 1)) for (_, f), i in zip(entries, ids, strict=True)])
        return handled

    def _handle_entries(self, stream: str,
                        entries: list[tuple[str, dict[bytes, bytes], int]]) -> int:
        batch = _Batch()
        for entry_id, fields, deliveries in entries:
            self._handle_one(stream, entry_id, fields, deliveries, batch)
        self._flush(batch)
        return len(entries)

    def _handle_one(self, stream: str, entry_id: str, fields: dict[bytes, bytes],
                    deliveries: int, batch: _Batch) -> None:
        def reject(reason: str, cause: str, envelope: Envelope | None = None) -> None:
            letter = deadletter.make(
                stream, entry_id, fields, reason, now=self._clock.now(), group=self.group,
                consumer=self.name, deliveries=deliveries,
                message_type=envelope.type if envelope else "")
            batch.letters.append((letter, cause, envelope))
            batch.acks[stream].append(entry_id)

        if deliveries > self.options.max_deliveries:
            last = self._last_error.pop((stream, entry_id), "unknown (failed in another process)")
            reject(f"gave up after {deliveries - 1} deliveries (max "
                   f"{self.options.max_deliveries}); last error: {last}", "retries")
            return
        raw = fields.get(_FIELD)
        if raw is None or len(fields) != 1:
            reject(f"entry must have exactly one field {names.ENVELOPE_FIELD!r}, has "
                   f"{sorted(k.decode('utf-8', 'backslashreplace') for k in fields)[:5]}", "malformed")
            return
        try:
            envelope = decode(raw)
        except ContractError as exc:
            reject(str(exc), "malformed")
            return
        expected = names.STREAM_KINDS.get(stream)
        kind = MESSAGE_TYPES[envelope.type].kind
        if expected is not None and kind != expected:
            reject(f"a {kind} ({envelope.type}) does not belong on {stream}", "wrong_stream",
                   envelope)
            return
        handler = self._handlers.get(envelope.type)
        if handler is None:
            if stream in self.options.ack_unhandled_on:
                batch.acks[stream].append(entry_id)
            else:
                reject(f"no handler for {envelope.type!r} in group {self.group}", "unhandled",
                       envelope)
            return
        if self._run_handler(stream, entry_id, envelope, handler, reject):
            batch.acks[stream].append(entry_id)

    def _run_handler(self, stream: str, entry_id: str, envelope: Envelope, handler: Handler,
                     reject: Callable[[str, str, Envelope | None], None]) -> bool:
        with self._lock:
            self._in_flight[stream].add(entry_id)
        try:
            # Every log line the handler writes names the message and its run/job.
            with log_context(correlation_id=envelope.correlation_id, message_id=envelope.id,
                             message_type=envelope.type):
                handler(envelope)
        except ContractError as exc:
            reject(f"refused by handler: {exc}", "refused", envelope)
            return False
        except LeavePending as exc:
            log.info("entry %s of %s left pending: %s", entry_id, stream, exc,
                     extra={"correlation_id": envelope.correlation_id})
            return False
        except Exception as exc:
            HANDLER_ERRORS.labels(stream).inc()
            self._last_error[(stream, entry_id)] = f"{type(exc).__name__}: {exc}"[:1000]
            if len(self._last_error) > 10_000:  # bound the memory of failures seen
                self._last_error.pop(next(iter(self._last_error)))
            log.exception("handler of %s failed; entry %s of %s stays pending for a retry",
                          envelope.type, entry_id, stream,
                          extra={"correlation_id": envelope.correlation_id})
            return False
        finally:
            with self._lock:
                self._in_flight[stream].discard(entry_id)
        self._last_error.pop((stream, entry_id), None)
        return True

    def _flush(self, batch: _Batch) -> None:
        """Dead letters and acks in one MULTI; retried until Redis takes it (a redelivery in
        between is harmless: handlers are idempotent)."""
        if not batch.acks and not batch.letters:
            return
        backoff = Backoff(self._clock)
        while True:
            try:
                pipe = self.client.pipeline(transaction=True)
                for letter, cause, _ in batch.letters:
                    deadletter.add(pipe, letter, cause=cause)
                for stream, ids in batch.acks.items():
                    pipe.xack(stream, self.group, *ids)
                pipe.execute()
                break
            except TRANSIENT_ERRORS as exc:
                RECONNECTS.labels("ack").inc()
                backoff.wait(exc, f"acknowledging for {self.name}")
        for stream, ids in batch.acks.items():
            self._acked[stream].inc(len(ids))
        for letter, _, envelope in batch.letters:
            log.warning("dead-lettered %s entry %s: %s", letter.stream, letter.entry_id,
                        letter.reason)
            if self._on_dead_letter is not None:
                try:
                    self._on_dead_letter(letter, envelope)
                except Exception:
                    log.exception("dead-letter hook failed for %s", letter.entry_id)

    def _renew_leases_until(self, stop: threading.Event) -> None:
        interval = max(0.05, self.options.claim_idle_ms / 3000.0)
        while not stop.wait(interval):
            try:
                self.renew_leases()
            except TRANSIENT_ERRORS:
                continue  # the consumer loop reports the outage
            except redis.ResponseError as exc:
                log.warning("lease renewal failed: %s", exc)

    def renew_leases(self) -> None:
        """Reset the idle time of entries whose handler is running, so nobody claims them."""
        with self._lock:
            held = {s: list(ids) for s, ids in self._in_flight.items() if ids}
        for stream, ids in held.items():
            self.client.xclaim(stream, self.group, self.name, 0, list[Any](ids), justid=True)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
