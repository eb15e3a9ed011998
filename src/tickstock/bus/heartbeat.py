"""Heartbeats: each process instance refreshes ``tickstock:heartbeat:{role}:{instance}``
(JSON, ``contracts.state.Heartbeat``) with a TTL a few intervals long, so a dead process
disappears by itself. ``tickstock status`` and the web services page read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

import redis

from tickstock import __version__
from tickstock.bus.connection import TRANSIENT_ERRORS
from tickstock.bus.metrics import RECONNECTS
from tickstock.contracts import names
from tickstock.contracts.state import Heartbeat, HeartbeatState
from tickstock.core.clock import Clock

log = logging.getLogger(__name__)


class HeartbeatThread:
    """A daemon thread beating every ``interval_s`` with TTL ``ttl_s``; set ``state`` to
    publish what the process is doing. ``stop`` deletes the key (a clean exit is visible at
    once; a crash after ``ttl_s``)."""

    def __init__(self, client: redis.Redis, *, role: str, instance: str, clock: Clock,
                 interval_s: float = 2.0, ttl_s: float = 10.0) -> None:
        if ttl_s <= interval_s:
            raise ValueError(f"heartbeat TTL {ttl_s}s must exceed its interval {interval_s}s")
        self._client = client
        self._clock = clock
        self._key = names.heartbeat_key(role, instance)
        self._interval_s = interval_s
        self._ttl_ms = int(ttl_s * 1000)
        self._role = role
        self._instance = instance
        self._started_at = clock.now()
        self._state: HeartbeatState = "starting"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> HeartbeatState:
        return self._state

    @state.setter
    def state(self, value: HeartbeatState) -> None:
        changed = value != self._state
        self._state = value
        if changed and self._thread is not None:
            self.beat()  # a state change is visible at once

    def current(self) -> Heartbeat:
        return Heartbeat(role=self._role, instance=self._instance, host=socket.gethostname(),
                         pid=os.getpid(), version=__version__, started_at=self._started_at,
                         state=self._state, ts=self._clock.now())

    def beat(self) -> bool:
        try:
            self._client.set(self._key, self.current().model_dump_json(), px=self._ttl_ms)
        except TRANSIENT_ERRORS as exc:
            RECONNECTS.labels("heartbeat").inc()
            log.debug("heartbeat not written: %s", exc)
            return False
        return True

    def start(self) -> HeartbeatThread:
        self.beat()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{self._role}")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + 1)
        with contextlib.suppress(*TRANSIENT_ERRORS):  # else it expires by itself
            self._client.delete(self._key)


def read_heartbeats(client: redis.Redis) -> list[Heartbeat]:
    """Every live heartbeat, by role then instance; unreadable values are skipped."""
    keys = sorted(client.scan_iter(match=names.HEARTBEAT_PATTERN, count=500))
    if not keys:
        return []
    beats: list[Heartbeat] = []
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:
            continue  # expired between SCAN and MGET
        try:
            beats.append(Heartbeat.model_validate_json(raw))
        except ValueError:
            log.warning("unreadable heartbeat under %s", key)
    return sorted(beats, key=lambda b: (b.role, b.instance))
