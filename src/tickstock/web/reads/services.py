"""Health of the platform as the services page shows it: heartbeats, Redis, PostgreSQL,
recent errors and dead letters."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import redis
from pydantic import ValidationError

from tickstock.contracts import DeadLetter, Heartbeat, decode, names
from tickstock.core.errors import ContractError
from tickstock.web.config import Pool

ERROR_TYPES = frozenset({"service.error", "job.failed", "run.failed", "run.phase_failed",
                         "command.rejected"})
ERROR_SCAN = 2000  # how far back in the event stream the services page looks for errors


def heartbeats(r: redis.Redis) -> list[Heartbeat]:
    """Every live heartbeat (expired ones are gone: their TTL ran out)."""
    keys = list(r.scan_iter(match=names.HEARTBEAT_PATTERN, count=500))
    if not keys:
        return []
    out = []
    for raw in r.mget(keys):
        if raw is None:
            continue
        try:
            out.append(Heartbeat.model_validate_json(raw))
        except ValidationError:
            continue
    return sorted(out, key=lambda h: (h.role, h.instance))


class ServiceTracker:
    """Up / stale / down per role instance. ``down`` means a heartbeat seen earlier by this
    web process has expired (its key is gone); ``stale`` means the key is alive but has not
    been refreshed for more than half its TTL."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}

    def update(self, beats: list[Heartbeat], now: datetime) -> list[dict[str, Any]]:
        alive = set()
        for hb in beats:
            key = (hb.role, hb.instance)
            alive.add(key)
            age = (now - hb.ts).total_seconds()
            state = "stale" if age > self._ttl_s / 2 else "up"
            self._seen[key] = {**hb.model_dump(mode="json"), "status": state,
                               "age_s": round(max(age, 0.0), 1)}
        for key, entry in self._seen.items():
            if key not in alive:
                entry["status"] = "down"
        return [self._seen[k] for k in sorted(self._seen)]


def redis_health(r: redis.Redis) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        info = r.info("server")
        memory = r.info("memory")
        latency = (time.perf_counter() - started) * 1000
        return {"status": "up", "version": info.get("redis_version"),
                "latency_ms": round(latency, 2), "used_memory": memory.get("used_memory_human"),
                "events_stream_length": r.xlen(names.EVENTS_STREAM)}
    except redis.RedisError as exc:
        return {"status": "down", "error": str(exc)}


def postgres_health(pool: Pool) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with pool.connection(timeout=3) as db:
            row = db.execute("SELECT current_setting('server_version') AS v").fetchone()
        stats = pool.get_stats()
        return {"status": "up", "version": row["v"] if row else None,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "pool_size": stats.get("pool_size"), "pool_available": stats.get("pool_available")}
    except Exception as exc:
        return {"status": "down", "error": str(exc).splitlines()[0] if str(exc) else repr(exc)}


def dead_letters(r: redis.Redis, limit: int = 50) -> list[dict[str, Any]]:
    out = []
    entries: Any = r.xrevrange(names.DEAD_LETTER_STREAM, count=limit)
    for entry_id, fields in entries:
        try:
            dl = DeadLetter.from_fields(fields)
        except ValidationError:
            continue
        out.append({"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                    **dl.model_dump(mode="json")})
    return out


def recent_errors(r: redis.Redis, limit: int = 50) -> list[dict[str, Any]]:
    """Error-like events from the recent part of the event stream, newest first."""
    out = []
    recent: Any = r.xrevrange(names.EVENTS_STREAM, count=ERROR_SCAN)
    for entry_id, fields in recent:
        raw = fields.get(names.ENVELOPE_FIELD.encode())
        if raw is None:
            continue
        try:
            env = decode(raw)
        except ContractError:
            continue
        if env.type not in ERROR_TYPES:
            continue
        out.append({"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                    "type": env.type, "ts": env.ts, "source": env.source,
                    "correlation_id": env.correlation_id, "data": env.data.model_dump(mode="json")})
        if len(out) >= limit:
            break
    return out
