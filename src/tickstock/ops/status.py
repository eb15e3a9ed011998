"""`tickstock status`: infrastructure, schema and every role's health in one report."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from tickstock.bus.heartbeat import read_heartbeats
from tickstock.contracts.state import Heartbeat
from tickstock.core.timeutil import iso
from tickstock.ops import infra
from tickstock.ops.health import Check, check_migrated, check_postgres, check_redis
from tickstock.ops.settings import Settings
from tickstock.ops.supervisor import read_state


@dataclass
class StatusReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(check.state == "OK" for check in self.checks)

    def lines(self) -> list[str]:
        width = max((len(c.name) for c in self.checks), default=10)
        out = []
        for check in self.checks:
            line = f"{check.name:<{width}}  {check.state:<4}  {check.detail}"
            if check.fix and check.state != "OK":
                line += f"  -> {check.fix}"
            out.append(line)
        out.append("healthy" if self.healthy else "NOT healthy")
        return out


def collect_status(settings: Settings) -> StatusReport:
    report = StatusReport()
    found = infra.resolve(settings, start=False)
    pg = check_postgres(found.postgres.url)
    report.checks.append(_named(pg, f"postgres ({found.postgres.mode})", found.postgres.location))
    report.checks.append(
        _named(check_redis(found.redis.url), f"redis ({found.redis.mode})", found.redis.location)
    )
    if pg.state == "OK":
        report.checks.append(check_migrated(found.postgres.url))
    report.checks.extend(_role_checks(settings, found.redis.url))
    return report


def _named(check: Check, name: str, location: str) -> Check:
    return Check(name, check.state, f"{location}  {check.detail}", check.fix)


def _role_checks(settings: Settings, redis_url: str) -> list[Check]:
    """One check per supervised role instance: its process alive and its heartbeat fresh."""
    state = read_state(settings.data_dir)
    if state is None:
        return [
            Check(
                "roles",
                "FAIL",
                "no supervisor running for " + str(settings.data_dir),
                "start the platform with `tickstock up`",
            )
        ]
    beats = _heartbeats(redis_url)
    checks: list[Check] = []
    roles = state.get("roles")
    assert isinstance(roles, list)
    for entry in roles:
        checks.append(_role_check(entry, beats))
    supervised = {entry.get("pid") for entry in roles}
    for beat in beats.values():
        if beat.pid not in supervised:  # e.g. a worker on another machine
            checks.append(Check(beat.instance, "OK", f"{beat.role} on {beat.host}, {beat.state}"))
    return checks


def _role_check(entry: dict[str, object], beats: dict[int, Heartbeat]) -> Check:
    name = str(entry["name"])
    if not entry.get("alive"):
        return Check(
            name,
            "FAIL",
            f"not running (last exit {entry.get('last_exit')}), restarts {entry.get('restarts')}",
            "see the `tickstock up` output for its error",
        )
    detail = f"pid {entry['pid']}, restarts {entry['restarts']}"
    pid = entry.get("pid")
    beat = beats.get(pid) if isinstance(pid, int) else None
    if beat is None:
        return Check(name, "WARN", detail + ", no fresh heartbeat", "wait for start-up or read its log")
    return Check(name, "OK", f"{detail}, {beat.state}, up since {iso(beat.started_at)}, v{beat.version}")


def _heartbeats(redis_url: str) -> dict[int, Heartbeat]:
    """Fresh heartbeats by process id (a heartbeat key exists only while fresh: it has a TTL)."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return {beat.pid: beat for beat in read_heartbeats(client)}
    except redis.RedisError:
        return {}
    finally:
        client.close()
