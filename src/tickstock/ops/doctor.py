"""``tickstock doctor``: every check an operator would run by hand, as one table.

Each check returns a ``Check`` (OK / WARN / FAIL, what was found, what to do). The checks, in
the order printed:

1. configuration   settings load; the chosen provider has what it needs
2. postgres        reachable (``health.check_postgres``)
3. redis           reachable (``health.check_redis``)
4. schema          migrated to the newest revision (``health.check_migrated``)
5. heartbeats      every role ``tickstock up`` would run has a fresh heartbeat
6. consumers       no consumer group is falling behind or holding entries unacknowledged
7. dead letters    the dead-letter stream is empty
8. daily run       the latest scheduled run is not overdue and the last run did not fail
9. disk            free space where the embedded servers keep their data
10. provider key   the Massive key is accepted (only when Massive is the provider)

A check whose server is unreachable is reported as not checked (WARN) so the FAIL that matters
stands out. Any FAIL makes ``tickstock doctor`` exit non-zero.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from tickstock.core.clock import Clock, LiveClock
from tickstock.core.errors import ConfigurationError
from tickstock.ops import health, infra
from tickstock.ops.health import Check
from tickstock.ops.settings import PROVIDER_KEY_VARIABLE, Settings, load_settings

GIB = 1024**3
DISK_FAIL_BYTES = 1 * GIB
DISK_WARN_BYTES = 5 * GIB
# Entries older than this not yet delivered to a group: its consumers are not keeping up.
LAG_WARN_AGE_S = 300.0
# An entry delivered but unacknowledged this long: its consumer died or hangs, and nobody claims.
PENDING_WARN_IDLE_S = 900.0
# A scheduled run still not completed this long after its time.
OVERDUE_WARN_S = 3600.0
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Context:
    """What the checks work on; built once per ``tickstock doctor``."""

    settings: Settings
    endpoints: infra.Infra
    clock: Clock


def check_configuration(settings: Settings, endpoints: infra.Infra) -> Check:
    """The settings parsed; the provider they select has what it needs."""
    provider = settings.effective_provider
    if provider == "massive" and settings.massive_api_key is None:
        return Check("configuration", "FAIL", "provider massive is selected but has no key",
                     f"set {PROVIDER_KEY_VARIABLE}, or TICKSTOCK_PROVIDER=synthetic")
    if provider == "files" and (settings.files_dir is None or not settings.files_dir.is_dir()):
        return Check("configuration", "FAIL",
                     f"provider files needs a directory (TICKSTOCK_FILES_DIR={settings.files_dir})",
                     "set TICKSTOCK_FILES_DIR to the folder holding the CSV files")
    where = ", ".join(f"{e.kind} {e.mode} ({e.location})"
                      for e in (endpoints.postgres, endpoints.redis))
    return Check("configuration", "OK", f"provider {provider}; {where}")


def _embedded_fix(check: Check, endpoint: infra.Endpoint) -> Check:
    if check.state == "OK" or endpoint.mode != "embedded":
        return check
    return replace(check, fix=f"start the platform (`tickstock up`) or just the servers "
                              f"(`tickstock infra start`); embedded {endpoint.kind} lives in "
                              f"{endpoint.location}")


def check_heartbeats(client: redis.Redis, settings: Settings, now: datetime) -> Check:
    """Every role ``tickstock up`` runs has as many fresh heartbeats as it should."""
    from tickstock.ops.metrics import expected_instances
    from tickstock.ops.metrics_redis import heartbeats

    expected = expected_instances(settings)
    if not expected:
        return Check("heartbeats", "OK", "no role is installed yet")
    fresh = dict.fromkeys(expected, 0)
    for role, _instance, beat in heartbeats(client):
        if beat is not None and (now - beat.ts).total_seconds() <= settings.heartbeat_ttl_s:
            fresh[role] = fresh.get(role, 0) + 1
    down = [role for role, want in expected.items() if fresh.get(role, 0) == 0]
    short = [role for role, want in expected.items() if 0 < fresh.get(role, 0) < want]
    counts = ", ".join(f"{role} {fresh.get(role, 0)}/{want}" for role, want in expected.items())
    if down:
        return Check("heartbeats", "FAIL", f"no fresh heartbeat from {', '.join(down)} ({counts})",
                     "start the platform with `tickstock up` (or the role with "
                     f"`tickstock {down[0]}`) and read the role's log for why it stopped")
    if short:
        return Check("heartbeats", "WARN", f"fewer instances than configured: {counts}",
                     "a worker died or is restarting: see `tickstock status` and its log")
    return Check("heartbeats", "OK", counts)


def check_consumers(client: redis.Redis, now: datetime) -> Check:
    """No consumer group has old undelivered entries or long-unacknowledged ones."""
    from tickstock.ops.metrics_redis import stream_states

    behind, stuck, total_lag = [], [], 0
    for stream in stream_states(client, now):
        for group in stream.groups:
            total_lag += group.lag
            where = f"{group.stream} [{group.group}]"
            if group.oldest_undelivered_age_s > LAG_WARN_AGE_S:
                behind.append(f"{where}: {group.lag} waiting, oldest "
                              f"{group.oldest_undelivered_age_s:.0f}s")
            if group.oldest_pending_idle_s > PENDING_WARN_IDLE_S:
                stuck.append(f"{where}: {group.pending} unacknowledged, oldest idle "
                             f"{group.oldest_pending_idle_s:.0f}s")
    if behind or stuck:
        return Check("consumers", "WARN", "; ".join(behind + stuck),
                     "workers are not keeping up or one hangs: check worker heartbeats and logs, "
                     "add workers (TICKSTOCK_WORKERS)")
    return Check("consumers", "OK", f"{total_lag} entries waiting, none older than "
                                    f"{LAG_WARN_AGE_S:.0f}s")


def check_dead_letters(client: redis.Redis) -> Check:
    """The dead-letter stream is empty (WARN with the newest reason when it is not)."""
    from tickstock.bus import deadletter
    from tickstock.contracts import names

    count = int(client.xlen(names.DEAD_LETTER_STREAM))
    if count == 0:
        return Check("dead letters", "OK", "none")
    newest = deadletter.read(client, count=1)
    reason = f"; newest from {newest[0][1].stream}: {newest[0][1].reason}" if newest else ""
    return Check("dead letters", "WARN", f"{count} dead letter(s){reason}",
                 "read them with `tickstock bus dead-letters`, fix the sender, then trim the "
                 "stream")


def check_daily_run(database_url: str, clock: Clock) -> Check:
    """The latest due session's run is not overdue, and the last run did not fail."""
    from psycopg_pool import ConnectionPool

    from tickstock.market.calendar import nyse
    from tickstock.ops.metrics_db import daily_run_due
    from tickstock.store.schedule import DEFAULT_SCHEDULE, ScheduleRepository

    now = clock.now()
    with ConnectionPool(database_url, min_size=0, max_size=1, open=True,
                        kwargs={"connect_timeout": int(TIMEOUT_S)}) as pool:
        schedule = ScheduleRepository(pool).get(DEFAULT_SCHEDULE)
        with pool.connection(timeout=TIMEOUT_S) as conn:
            due = daily_run_due(conn, schedule, nyse(), now)
            last = conn.execute(
                "SELECT run_id, status, error_message FROM processing_runs"
                " ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
    if due is not None and due.overdue_s > OVERDUE_WARN_S:
        return Check("daily run", "WARN",
                     f"session {due.session} was due {due.due_at:%Y-%m-%d %H:%M}Z and has no "
                     f"completed run ({due.overdue_s / 60:.0f} min late)",
                     "check the scheduler and worker heartbeats; start it by hand with "
                     "`tickstock run`")
    if last is not None and last[1] == "failed":
        return Check("daily run", "WARN", f"last run {last[0]} failed: {last[2] or '?'}",
                     "see `tickstock run` / the worker log; a new run retries what failed")
    if schedule is None:
        return Check("daily run", "OK", "no schedule yet (the scheduler creates it)")
    state = "disabled" if not schedule.enabled else (
        f"last session {schedule.last_session_run}" if schedule.last_session_run else "no run yet")
    return Check("daily run", "OK", f"schedule {state}" + (f"; last run {last[1]}" if last else ""))


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(settings: Settings, endpoints: infra.Infra) -> Check:
    """Free space of the file system holding the data directory."""
    embedded = [e.kind for e in (endpoints.postgres, endpoints.redis) if e.mode == "embedded"]
    where = _existing(settings.data_dir)
    usage = shutil.disk_usage(where)
    detail = (f"{usage.free / GIB:.1f} GiB free of {usage.total / GIB:.1f} GiB at {where}"
              + (f" (embedded {', '.join(embedded)})" if embedded else " (no embedded server)"))
    fix = f"free space on that disk or move TICKSTOCK_DATA_DIR (now {settings.data_dir})"
    if embedded and usage.free < DISK_FAIL_BYTES:
        return Check("disk", "FAIL", detail, fix)
    if embedded and usage.free < DISK_WARN_BYTES:
        return Check("disk", "WARN", detail, fix)
    return Check("disk", "OK", detail)


def check_provider_key(settings: Settings) -> Check:
    """Massive accepts the key (one market-status request); other providers need none."""
    import httpx

    if settings.effective_provider != "massive" or settings.massive_api_key is None:
        return Check("provider key", "OK", f"not needed (provider {settings.effective_provider})")
    url = settings.massive_base_url.rstrip("/") + "/v1/marketstatus/now"
    try:
        response = httpx.get(url, params={"apiKey": settings.massive_api_key.get_secret_value()},
                             timeout=TIMEOUT_S * 2)
    except httpx.HTTPError as exc:
        return Check("provider key", "WARN",
                     f"cannot reach {settings.massive_base_url} ({type(exc).__name__}); "
                     "key not verified", "check the network or TICKSTOCK_MASSIVE_BASE_URL")
    if response.status_code in (401, 403):
        return Check("provider key", "FAIL",
                     f"{settings.massive_base_url} refused the key (HTTP {response.status_code})",
                     f"set a valid {PROVIDER_KEY_VARIABLE} (see the Massive dashboard)")
    if response.status_code >= 400:
        return Check("provider key", "WARN",
                     f"{settings.massive_base_url} answered HTTP {response.status_code}",
                     "retry later; see the provider's status page")
    return Check("provider key", "OK", f"accepted by {settings.massive_base_url}")


def _not_checked(name: str, because: str) -> Check:
    return Check(name, "WARN", f"not checked: {because}", f"fix {because.split(maxsplit=1)[0]} first")


def _guarded(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except Exception as exc:  # a check that breaks is a finding, not a crash of the doctor
        return Check(name, "FAIL", f"check failed: {type(exc).__name__}: {exc}",
                     "see the error; the server may be misconfigured")


def _redis_checks(ctx: Context, redis_ok: bool) -> list[Check]:
    names = ("heartbeats", "consumers", "dead letters")
    if not redis_ok:
        return [_not_checked(name, "redis is unreachable") for name in names]
    from tickstock.bus.connection import connect

    client = connect(ctx.endpoints.redis.url, name="tickstock-doctor", socket_timeout_s=TIMEOUT_S)
    try:
        now = ctx.clock.now()
        return [
            _guarded("heartbeats", lambda: check_heartbeats(client, ctx.settings, now)),
            _guarded("consumers", lambda: check_consumers(client, now)),
            _guarded("dead letters", lambda: check_dead_letters(client)),
        ]
    finally:
        client.close()


def diagnose(ctx: Context) -> list[Check]:
    """Every check, in the documented order."""
    pg_url, redis_url = ctx.endpoints.postgres.url, ctx.endpoints.redis.url
    checks = [check_configuration(ctx.settings, ctx.endpoints)]
    postgres = _embedded_fix(health.check_postgres(pg_url, TIMEOUT_S), ctx.endpoints.postgres)
    rds = _embedded_fix(health.check_redis(redis_url, TIMEOUT_S), ctx.endpoints.redis)
    checks += [postgres, rds]
    schema = health.check_migrated(pg_url) if postgres.state == "OK" else _not_checked(
        "schema", "postgres is unreachable")
    checks.append(schema)
    checks += _redis_checks(ctx, rds.state == "OK")
    if schema.state == "OK":
        checks.append(_guarded("daily run", lambda: check_daily_run(pg_url, ctx.clock)))
    else:
        checks.append(_not_checked("daily run", "schema is not ready"))
    checks.append(_guarded("disk", lambda: check_disk(ctx.settings, ctx.endpoints)))
    checks.append(_guarded("provider key", lambda: check_provider_key(ctx.settings)))
    return checks


def run_doctor(environ: dict[str, str] | None = None, clock: Clock | None = None) -> list[Check]:
    """Load the settings (from ``environ`` or the process environment) and run every check."""
    try:
        settings = load_settings(environ)
    except ConfigurationError as exc:
        return [Check("configuration", "FAIL", str(exc),
                      "fix that variable in the environment or .env (docs/configuration.md)")]
    endpoints = infra.resolve(settings, start=False)
    return diagnose(Context(settings, endpoints, clock or LiveClock()))


_STYLES = {"OK": "green", "WARN": "yellow", "FAIL": "red"}


def format_table(checks: Iterable[Check], *, color: bool = False) -> str:
    """The checks as an aligned table; a ``fix:`` line under each one that is not OK."""
    rows = list(checks)
    width = max([len(c.name) for c in rows] + [len("check")])
    lines = [f"{'check':<{width}}  state  detail"]
    for check in rows:
        state = f"{check.state:<5}"
        if color:
            import click

            state = click.style(state, fg=_STYLES[check.state], bold=check.state != "OK")
        lines.append(f"{check.name:<{width}}  {state}  {check.detail}")
        if check.state != "OK" and check.fix:
            lines.append(f"{'':<{width}}  {'fix:':<5}  {check.fix}")
    failed = sum(c.state == "FAIL" for c in rows)
    warned = sum(c.state == "WARN" for c in rows)
    lines.append("")
    lines.append("all OK" if not failed and not warned
                 else f"{failed} FAIL, {warned} WARN of {len(rows)} checks")
    return "\n".join(lines)


def as_json(checks: Iterable[Check]) -> list[dict[str, Any]]:
    return [{"check": c.name, "state": c.state, "detail": c.detail, "fix": c.fix} for c in checks]
