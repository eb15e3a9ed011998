"""What every subcommand needs first: settings, the infrastructure endpoints, a database pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from tickstock.core.errors import InfrastructureError
from tickstock.ops import infra
from tickstock.ops.settings import Settings, load_settings

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool


@cache
def settings() -> Settings:
    return load_settings()


def infrastructure(*, start: bool) -> infra.Infra:
    return infra.resolve(settings(), start=start)


def database_url(*, start: bool) -> str:
    return infrastructure(start=start).postgres.url


def redis_url(*, start: bool) -> str:
    return infrastructure(start=start).redis.url


@contextmanager
def database_pool(name: str, *, start: bool = False, max_size: int = 4) -> Iterator[ConnectionPool]:
    """A small pool for one command; an unreachable server is one clear error, not a traceback."""
    import psycopg

    from tickstock.store.db import create_pool

    dsn = database_url(start=start)
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        raise InfrastructureError(
            f"PostgreSQL is unreachable ({str(exc).strip()}); start it with `tickstock infra "
            "start` or point TICKSTOCK_DATABASE_URL at a running server") from None
    pool = create_pool(dsn, min_size=1, max_size=max_size, name=name)
    try:
        yield pool
    finally:
        pool.close()
