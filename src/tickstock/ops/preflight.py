"""Preflight checks of `tickstock up`: each fails fast with one line naming the fault.

Order matters: cheap, local checks first (dependencies, ports, provider key), then the servers.
Every check is bounded in time so the whole preflight ends within a few seconds.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

from tickstock.ops import infra
from tickstock.ops.health import check_postgres, check_redis
from tickstock.ops.settings import Settings

# Modules every role needs at run time; a missing one means the install is broken.
REQUIRED_MODULES = (
    "pydantic",
    "psycopg",
    "psycopg_pool",
    "alembic",
    "redis",
    "talib",
    "numpy",
    "pandas",
    "exchange_calendars",
    "massive",
    "fastapi",
    "uvicorn",
    "jinja2",
    "argon2",
    "websockets",
    "prometheus_client",
)


class PreflightError(Exception):
    """One failed preflight check; the message is the one line shown to the operator."""


@dataclass(frozen=True)
class PortUse:
    role: str
    setting: str
    port: int


def role_ports(settings: Settings, roles: Iterable[str]) -> list[PortUse]:
    """Ports the selected roles will listen on (0 means "no metrics port")."""
    wanted = set(roles)
    candidates = [
        PortUse("web", "TICKSTOCK_WEB_PORT", settings.web_port),
        PortUse("api", "TICKSTOCK_API_PORT", settings.api_port),
        PortUse("worker", "TICKSTOCK_WORKER_METRICS_PORT", settings.worker_metrics_port),
        PortUse("scheduler", "TICKSTOCK_SCHEDULER_METRICS_PORT", settings.scheduler_metrics_port),
        PortUse("stream", "TICKSTOCK_STREAM_METRICS_PORT", settings.stream_metrics_port),
    ]
    return [use for use in candidates if use.role in wanted and use.port]


def check_dependencies() -> None:
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise PreflightError(f"python dependencies not importable: {', '.join(missing)} (run `make setup`)")


def check_ports(settings: Settings, roles: Iterable[str]) -> None:
    for use in role_ports(settings, roles):
        if infra.port_open(settings.host, use.port, timeout=0.3):
            raise PreflightError(
                f"port {use.port} ({use.setting}, role {use.role}) is already in use on "
                f"{settings.host}; free it or set {use.setting}"
            )


def check_provider(settings: Settings) -> None:
    if settings.provider == "massive" and settings.massive_api_key is None:
        raise PreflightError("TICKSTOCK_PROVIDER=massive but MASSIVE_API_KEY is not set")
    if settings.provider == "files" and (settings.files_dir is None or not settings.files_dir.is_dir()):
        raise PreflightError(
            f"TICKSTOCK_PROVIDER=files needs TICKSTOCK_FILES_DIR to be a folder (got {settings.files_dir})"
        )


def check_servers(found: infra.Infra) -> None:
    for endpoint, check in ((found.postgres, check_postgres), (found.redis, check_redis)):
        result = check(endpoint.url, 2.0)
        if result.state == "FAIL":
            where = "TICKSTOCK_DATABASE_URL" if endpoint.kind == "postgres" else "TICKSTOCK_REDIS_URL"
            raise PreflightError(f"{endpoint.kind} at {endpoint.location} ({where}): {result.detail}")


def run_local_checks(settings: Settings, roles: Iterable[str]) -> None:
    """Checks that need no server: dependencies, provider configuration, free ports."""
    check_dependencies()
    check_provider(settings)
    check_ports(settings, roles)
