"""Health checks of the infrastructure, shared by preflight, status and doctor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["OK", "WARN", "FAIL"]


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    detail: str
    fix: str = ""


def check_postgres(url: str, timeout_s: float = 3.0) -> Check:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(
            "postgres", "FAIL", f"unreachable: {reason}", "start PostgreSQL or fix TICKSTOCK_DATABASE_URL"
        )
    return Check("postgres", "OK", f"PostgreSQL {version[0] if version else '?'}")


def check_redis(url: str, timeout_s: float = 2.0) -> Check:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        info = client.info("server")
    except redis.RedisError as exc:
        return Check("redis", "FAIL", f"unreachable: {exc}", "start Redis or fix TICKSTOCK_REDIS_URL")
    finally:
        client.close()
    return Check("redis", "OK", f"Redis {info.get('redis_version', '?')}")


def check_migrated(url: str) -> Check:
    from tickstock.store import migrate

    try:
        current = migrate.current_revisions(url)
    except Exception as exc:
        return Check("schema", "FAIL", f"cannot read schema revision: {exc}", "check PostgreSQL")
    heads = migrate.head_revisions()
    if current == heads:
        return Check("schema", "OK", f"at {', '.join(sorted(current))}")
    return Check(
        "schema",
        "FAIL",
        f"at {', '.join(sorted(current)) or 'empty'}, newest is {', '.join(sorted(heads))}",
        "run `tickstock db upgrade`",
    )
