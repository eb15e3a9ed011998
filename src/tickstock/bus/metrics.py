"""Prometheus metrics of the bus (the lead wires the endpoints). Labels are stream names and
groups only, so cardinality stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES_OUT = Counter(
    "tickstock_bus_messages_published_total", "Messages published to a stream.", ["stream"])
MESSAGES_IN = Counter(
    "tickstock_bus_messages_received_total", "Stream entries delivered to this process.",
    ["stream"])
MESSAGES_ACKED = Counter(
    "tickstock_bus_messages_acked_total", "Entries acknowledged after their handler succeeded.",
    ["stream"])
HANDLER_ERRORS = Counter(
    "tickstock_bus_handler_errors_total", "Handler failures left pending for a retry.", ["stream"])
DEAD_LETTERED = Counter(
    "tickstock_bus_dead_lettered_total", "Entries moved to the dead-letter stream.",
    ["stream", "cause"])
RECLAIMED = Counter(
    "tickstock_bus_reclaimed_total", "Pending entries of idle consumers claimed by this one.",
    ["stream"])
EVENTS_DROPPED = Counter(
    "tickstock_bus_events_dropped_total", "Events not published because Redis was unavailable.")
PENDING = Gauge(
    "tickstock_bus_pending", "Entries delivered but not acknowledged, per stream and group.",
    ["stream", "group"])
RECONNECTS = Counter(
    "tickstock_bus_redis_unavailable_total", "Times a bus loop found Redis unreachable.", ["loop"])
