"""Redis clients for the bus, and the back-off every bus loop uses to ride out a Redis restart.

Two layers of resilience: the client retries a failed command a few times with jittered
exponential back-off (a blip costs nothing), and each long-running loop (consumer, event
reader, heartbeat) catches ``redis.ConnectionError`` and waits with ``Backoff`` before trying
again (a restart of minutes costs nothing but time). Nothing connects at import.
"""

from __future__ import annotations

import logging
import random

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from tickstock.core.clock import Clock

log = logging.getLogger(__name__)

#: Errors that mean "Redis is (temporarily) unreachable": wait and retry.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def connect(url: str, *, name: str = "tickstock", socket_timeout_s: float = 10.0) -> redis.Redis:
    """A client for ``url`` that retries transient errors and names itself in CLIENT LIST.

    ``socket_timeout_s`` must exceed the longest XREADGROUP/XREAD BLOCK used with the client.
    """
    return redis.Redis.from_url(
        url,
        client_name=name,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=2.0,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


class Backoff:
    """Exponential back-off with full jitter for a loop that lost Redis: 0.1 s doubling up to
    ``cap`` seconds; ``reset`` after the first success."""

    def __init__(self, clock: Clock, *, base: float = 0.1, cap: float = 5.0) -> None:
        self._clock = clock
        self._base = base
        self._cap = cap
        self.failures = 0

    def wait(self, error: BaseException, what: str) -> None:
        self.failures += 1
        delay = min(self._cap, self._base * 2 ** min(self.failures, 16))
        delay = random.uniform(delay / 2, delay)
        if self.failures == 1 or self.failures % 10 == 0:
            log.warning("%s: Redis unavailable (%s); retrying in %.2fs (failure %d)",
                        what, error, delay, self.failures)
        self._clock.sleep(delay)

    def reset(self) -> None:
        if self.failures:
            log.info("Redis reachable again after %d failed attempts", self.failures)
        self.failures = 0
