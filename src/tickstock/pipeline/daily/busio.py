"""The daily run's two seams onto ``tickstock.bus``: ``RunBus`` (batches out, events out) and
``CommandSender`` (commands out, their answers back from the event stream)."""

from __future__ import annotations

import redis

from tickstock.bus.events import EventPublisher, EventReader
from tickstock.bus.streams import StreamPublisher
from tickstock.bus.submit import send_command
from tickstock.contracts import names
from tickstock.contracts.commands import Command
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import CommandAccepted, CommandRejected, Event
from tickstock.contracts.jobs import RunPhaseBatch
from tickstock.core.clock import Clock


class RedisRunBus:
    """Publishes batches on the batches stream and events on the event stream."""

    def __init__(self, client: redis.Redis, *, source: str) -> None:
        self._source = source
        self._streams = StreamPublisher(client)
        self._events = EventPublisher(client, source=source)

    def publish_batch(self, batch: RunPhaseBatch) -> None:
        envelope = Envelope.create(batch, source=self._source, correlation_id=batch.run_id)
        self._streams.publish(names.BATCHES_STREAM, envelope)

    def emit(self, event: Event, *, correlation_id: str) -> None:
        self._events.publish(event, correlation_id=correlation_id)


class RedisCommandSender:
    """Sends commands like any client and waits for their answer on the event stream."""

    def __init__(self, client: redis.Redis, *, source: str, clock: Clock) -> None:
        self._client = client
        self._source = source
        self._clock = clock
        self._reader = EventReader(client, clock=clock, dead_letter=False)
        self._cursors: dict[str, str] = {}

    def send(self, command: Command) -> str:
        # Remember where the event stream was, so the answer cannot be missed however fast.
        cursor = self._reader.latest_id()
        envelope = send_command(self._client, command, source=self._source)
        self._cursors[envelope.id] = cursor
        return envelope.id

    def wait_answer(
        self, command_id: str, timeout_s: float
    ) -> CommandAccepted | CommandRejected | None:
        cursor = self._cursors.pop(command_id, "0-0")
        deadline = self._clock.monotonic() + timeout_s
        while True:
            left_ms = int((deadline - self._clock.monotonic()) * 1000)
            if left_ms <= 0:
                return None
            cursor, events = self._reader.read(cursor, block_ms=min(left_ms, 1000))
            for _, envelope in events:
                data = envelope.data
                if isinstance(data, CommandAccepted | CommandRejected) and \
                        data.command_id == command_id:
                    return data
