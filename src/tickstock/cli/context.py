"""What every subcommand needs first: settings and the infrastructure endpoints."""

from __future__ import annotations

from functools import cache

from tickstock.ops import infra
from tickstock.ops.settings import Settings, load_settings


@cache
def settings() -> Settings:
    return load_settings()


def infrastructure(*, start: bool) -> infra.Infra:
    return infra.resolve(settings(), start=start)


def database_url(*, start: bool) -> str:
    return infrastructure(start=start).postgres.url


def redis_url(*, start: bool) -> str:
    return infrastructure(start=start).redis.url
