"""``tickstock infra`` and ``tickstock config``."""

from __future__ import annotations

import click

from tickstock.cli.context import infrastructure, settings


@click.group()
def infra() -> None:
    """Embedded or external PostgreSQL and Redis."""


@infra.command()
def status() -> None:
    """Say which PostgreSQL and Redis are in use, where, and whether they answer."""
    from tickstock.ops.health import check_postgres, check_redis

    found = infrastructure(start=False)
    for endpoint, check in ((found.postgres, check_postgres), (found.redis, check_redis)):
        result = check(endpoint.url)
        pid = f" pid {endpoint.pid}" if endpoint.pid else ""
        click.echo(
            f"{endpoint.kind:<9} {endpoint.mode:<9} {result.state:<5} {endpoint.location}{pid}"
            f"  {result.detail}"
        )


@infra.command()
def start() -> None:
    """Start the embedded servers (no-op for external ones)."""
    found = infrastructure(start=True)
    for endpoint in (found.postgres, found.redis):
        click.echo(f"{endpoint.kind:<9} {endpoint.mode:<9} {endpoint.location}")


@infra.command()
def stop() -> None:
    """Stop the embedded servers."""
    from tickstock.ops.infra import stop_embedded

    stop_embedded(settings())
    click.echo("embedded servers stopped")


@click.command()
def config() -> None:
    """Show the effective settings, secrets masked."""
    for name, value in settings().masked().items():
        click.echo(f"{name:<24} {value}")
