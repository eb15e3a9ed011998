"""``tickstock up`` (the service launcher) and ``tickstock status``."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click

from tickstock.cli.context import settings
from tickstock.ops.settings import Settings


def _fail(line: str, code: int = 1) -> None:
    click.echo(f"preflight: {line}", err=True)
    sys.exit(code)


@click.command()
@click.option(
    "--roles",
    "roles_option",
    default=None,
    help="Comma-separated roles to run (default: TICKSTOCK_ROLES, all roles).",
)
@click.option("--no-demo", is_flag=True, help="Do not seed demo data into an empty database.")
def up(roles_option: str | None, no_demo: bool) -> None:
    """Preflight, migrate, start every role, restart crashed ones; Ctrl-C stops everything."""
    from tickstock.core.errors import TickStockError
    from tickstock.ops import infra, preflight
    from tickstock.ops.supervisor import Supervisor, available_roles, read_state

    configured = settings()
    requested = tuple(r.strip() for r in roles_option.split(",")) if roles_option else configured.roles
    unknown = sorted(set(requested) - set(preflight_roles()))
    if unknown:
        _fail(f"unknown role {unknown[0]} in --roles/TICKSTOCK_ROLES (known: {', '.join(preflight_roles())})")
    if read_state(configured.data_dir) is not None:
        _fail(f"a supervisor is already running for {configured.data_dir} (see `tickstock status`)")
    try:
        preflight.run_local_checks(configured, requested)
    except preflight.PreflightError as exc:
        _fail(str(exc))
    roles = available_roles(requested)
    if not roles:
        _fail(f"none of the roles {', '.join(requested)} is installed")

    embedded = infra.EmbeddedInfra(configured.data_dir)
    was_running = (embedded.postgres_pid() is not None, embedded.redis_pid() is not None)
    try:
        endpoints = infra.resolve(configured, start=True)
        preflight.check_servers(endpoints)
        from tickstock.store import migrate  # Alembic's import is slow: only once the servers answer

        migrate.upgrade(endpoints.postgres.url)
    except (preflight.PreflightError, TickStockError, OSError) as exc:
        _stop_started_embedded(configured, was_running)
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return

    supervisor = Supervisor(configured, endpoints, roles, emit=click.echo)

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stop_event.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    click.echo(f"postgres: {endpoints.postgres.mode} {endpoints.postgres.location}")
    click.echo(f"redis:    {endpoints.redis.mode} {endpoints.redis.location}")
    click.echo(f"web:      http://{configured.host}:{configured.web_port}/" if "web" in roles else "")
    if not no_demo:
        from tickstock.ops.demo import start_demo

        start_demo(configured, endpoints, supervisor.say)  # beside the roles' start-up: seconds saved
    ok = supervisor.start()
    try:
        if ok:
            supervisor.watch()
    finally:
        supervisor.stop()
        ok = _stop_embedded(configured) and ok
    sys.exit(0 if ok else 1)


def _stop_embedded(configured: Settings) -> bool:
    """Stop the embedded servers (if any); False, said in one line, when that failed."""
    from tickstock.ops import infra

    if not (configured.embedded_database or configured.embedded_redis):
        return True
    try:
        infra.stop_embedded(configured)
    except Exception as exc:  # whatever the failure: name it, then exit non-zero
        click.echo(f"up        | could not stop the embedded servers: {exc!r}", err=True)
        return False
    click.echo("embedded servers stopped")
    return True


def preflight_roles() -> tuple[str, ...]:
    from tickstock.ops.roles import ROLES

    return ROLES


def _stop_started_embedded(configured: Settings, was_running: tuple[bool, bool]) -> None:
    """Leave nothing running that this failed start-up started itself."""
    from tickstock.ops.infra import EmbeddedInfra

    embedded = EmbeddedInfra(configured.data_dir)
    if configured.embedded_redis and not was_running[1]:
        embedded.stop_redis()
    if configured.embedded_database and not was_running[0]:
        embedded.stop_postgres()


@click.command()
def status() -> None:
    """Roles and infrastructure with their health; exits 1 unless everything is healthy."""
    from tickstock.ops.status import collect_status

    report = collect_status(settings())
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.healthy else 1)
