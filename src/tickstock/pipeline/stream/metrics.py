"""What the stream role tells an operator: Prometheus metrics and the health state.

``StreamStats`` is the role's own live view (one per running service, so tests and the
heartbeat read exact numbers); every change to it also moves the process-wide Prometheus
metrics below, which the lead's metrics endpoint exposes.

Health (in the heartbeat's ``state``):
    starting      warming up, not yet connected
    ok            connected and keeping up
    behind        bars are waiting longer than ``behind_after_s`` or the queue is deep: the role
                  is degrading visibly, nothing is dropped
    disconnected  the provider connection is down (reconnecting with back-off)
    repairing     a gap is being filled from REST
    closed        outside market hours, waiting for the next session
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import Counter, Gauge, Histogram

Health = Literal["starting", "ok", "behind", "disconnected", "repairing", "closed", "stopped"]

BARS_RECEIVED = Counter("tickstock_stream_bars_received_total",
                        "Minute bars received from the provider feed.")
BARS_STORED = Counter("tickstock_stream_bars_stored_total",
                      "Bars written (upserted) by the stream role.", ["timeframe"])
BARS_REPAIRED = Counter("tickstock_stream_bars_repaired_total",
                        "Minute bars fetched from REST to fill a gap.")
BARS_DUPLICATE = Counter("tickstock_stream_bars_duplicate_total",
                         "Minute bars received again (already processed); not reprocessed.")
BARS_OUTSIDE_SESSION = Counter("tickstock_stream_bars_outside_session_total",
                               "Minute bars outside regular hours; counted, not processed.")
BARS_INVALID = Counter("tickstock_stream_bars_invalid_total",
                       "Minute bars with a non-finite price or a negative volume; counted, "
                       "not processed.")
EVENTS_PUBLISHED = Counter("tickstock_stream_events_published_total",
                           "Live events published.", ["type"])
RECONNECTS = Counter("tickstock_stream_reconnects_total", "Provider connections (re)opened.")
GAPS = Counter("tickstock_stream_gaps_total", "Per-symbol gaps detected after a reconnect/start.")
ERRORS = Counter("tickstock_stream_errors_total", "Errors by component.", ["component"])
QUEUE_DEPTH = Gauge("tickstock_stream_queue_depth",
                    "Minute bars received but not yet processed.")
BARS_BEHIND = Gauge("tickstock_stream_bars_behind",
                    "Minute bars waiting (queued, held for repair or not yet stored).")
LAG_SECONDS = Gauge("tickstock_stream_processing_lag_seconds",
                    "Age of the oldest waiting bar: receipt to now.")
UNSTORED = Gauge("tickstock_stream_unstored_bars", "Bars processed but not yet stored (retrying).")
CONNECTED = Gauge("tickstock_stream_connected", "1 while the provider connection is up.")
BATCH_SECONDS = Histogram(
    "tickstock_stream_batch_seconds", "Processing time of one batch of bars.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5),
)
STAGE_SECONDS = Histogram(
    "tickstock_stream_stage_seconds", "Time of one batch in each processing stage "
    "(roll_up, analyse, events, store_wait, detections, publish).", ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
LATENCY_SECONDS = Histogram(
    "tickstock_stream_latency_seconds", "Receipt of a bar to its events published.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10),
)


@dataclass
class StreamStats:
    """Counters and gauges of one stream service (mirrored into the Prometheus metrics)."""

    behind_after_s: float = 5.0
    behind_queue: int = 50_000
    received: int = 0
    processed: int = 0
    duplicates: int = 0
    outside_session: int = 0
    invalid: int = 0
    repaired: int = 0
    gaps: int = 0
    reconnects: int = 0
    events: int = 0
    stored: dict[str, int] = field(default_factory=dict)
    queue_depth: int = 0
    held: int = 0
    unstored: int = 0
    lag_s: float = 0.0
    last_batch_s: float = 0.0
    connected: bool = False
    repairing: int = 0
    session_open: bool = False
    stopped: bool = False
    last_bar_at: float | None = None  # monotonic receipt time of the newest bar
    stage_s: dict[str, float] = field(default_factory=dict)  # total seconds per stage

    def on_received(self, n: int) -> None:
        self.received += n
        self.last_bar_at = time.monotonic()
        BARS_RECEIVED.inc(n)

    def on_stored(self, counts: dict[str, int]) -> None:
        for tf, n in counts.items():
            self.stored[tf] = self.stored.get(tf, 0) + n
            BARS_STORED.labels(tf).inc(n)

    def on_duplicate(self, n: int = 1) -> None:
        self.duplicates += n
        BARS_DUPLICATE.inc(n)

    def on_outside_session(self, n: int = 1) -> None:
        self.outside_session += n
        BARS_OUTSIDE_SESSION.inc(n)

    def on_invalid(self, n: int = 1) -> None:
        self.invalid += n
        BARS_INVALID.inc(n)

    def on_repaired(self, n: int) -> None:
        self.repaired += n
        BARS_REPAIRED.inc(n)

    def on_gap(self) -> None:
        self.gaps += 1
        GAPS.inc()

    def on_events(self, counts: dict[str, int]) -> None:
        for kind, n in counts.items():
            self.events += n
            EVENTS_PUBLISHED.labels(kind).inc(n)

    def on_connection(self, up: bool) -> None:
        if up:
            self.reconnects += 1
            RECONNECTS.inc()
        self.connected = up
        CONNECTED.set(1 if up else 0)

    def on_error(self, component: str) -> None:
        ERRORS.labels(component).inc()

    def set_backlog(self, *, queue_depth: int, held: int, unstored: int, lag_s: float) -> None:
        self.queue_depth, self.held, self.unstored, self.lag_s = queue_depth, held, unstored, lag_s
        QUEUE_DEPTH.set(queue_depth)
        BARS_BEHIND.set(queue_depth + held + unstored)
        UNSTORED.set(unstored)
        LAG_SECONDS.set(lag_s)

    def observe_batch(self, seconds: float, latency_s: float) -> None:
        self.last_batch_s = seconds
        BATCH_SECONDS.observe(seconds)
        LATENCY_SECONDS.observe(latency_s)

    def observe_stages(self, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.stage_s[stage] = self.stage_s.get(stage, 0.0) + s
            STAGE_SECONDS.labels(stage).observe(s)

    @property
    def bars_behind(self) -> int:
        return self.queue_depth + self.held + self.unstored

    def health(self) -> Health:
        if self.stopped:
            return "stopped"
        if not self.session_open:
            return "closed"
        if not self.connected:
            return "disconnected" if self.reconnects else "starting"
        if self.lag_s > self.behind_after_s or self.queue_depth > self.behind_queue or self.unstored:
            return "behind"
        if self.repairing:
            return "repairing"
        return "ok"

    def snapshot(self) -> dict[str, object]:
        """Figures for the heartbeat and ``tickstock status``."""
        return {
            "health": self.health(), "received": self.received, "processed": self.processed,
            "duplicates": self.duplicates, "invalid": self.invalid, "repaired": self.repaired,
            "gaps": self.gaps,
            "reconnects": self.reconnects, "events": self.events, "queue_depth": self.queue_depth,
            "bars_behind": self.bars_behind, "lag_s": round(self.lag_s, 3),
            "last_batch_s": round(self.last_batch_s, 4), "stored": dict(self.stored),
        }


class StageTimer:
    """Times the stages of one batch: ``with timer("analyse"): …``; ``seconds`` per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stage = ""
        self._started = 0.0

    def __call__(self, stage: str) -> StageTimer:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        spent = time.perf_counter() - self._started
        self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + spent
