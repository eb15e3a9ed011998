"""``tickstock web|api|worker|scheduler|stream``: run one role in the foreground."""

from __future__ import annotations

import importlib

import click

from tickstock.cli.context import settings
from tickstock.core.ids import instance_name


def _run(role: str, **options: object) -> None:
    from tickstock.ops.logs import configure_logging

    configured = settings()
    instance = instance_name(role)
    configure_logging(configured, role=role, instance=instance)
    module = importlib.import_module(f"tickstock.ops.roles.{role}")
    module.run(configured, instance, **options)


@click.command()
def web() -> None:
    """Run the web role: pages, REST API, live push to browsers."""
    _run("web")


@click.command()
def api() -> None:
    """Run the pipeline HTTP API (health, status, triggers)."""
    _run("api")


@click.command()
@click.option("--drain", is_flag=True, help="Exit once no job or batch is pending (tests, batch use).")
def worker(drain: bool) -> None:
    """Run a worker: executes jobs and daily-run batches from the bus."""
    _run("worker", drain=drain)


@click.command()
def scheduler() -> None:
    """Run the calendar-aware daily-processing scheduler (one active via a leader lease)."""
    _run("scheduler")


@click.command()
@click.option("--outside-hours", is_flag=True, help="Run now, whatever the calendar (replays, demos).")
@click.option("--symbols", help="Comma-separated symbols to stream (default: every active one).")
@click.option("--universe", "universes", multiple=True, help="Stream the members of a universe.")
def stream(outside_hours: bool, symbols: str | None, universes: tuple[str, ...]) -> None:
    """Run the live stream role during market hours."""
    _run("stream", outside_hours=outside_hours, universes=universes,
         symbols=[s for s in (symbols or "").split(",") if s.strip()])
