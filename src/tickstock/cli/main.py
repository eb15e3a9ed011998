"""Entry point. Subcommands are imported only when run, so ``tickstock --help`` is instant.

To add a subcommand: write ``tickstock/cli/<name>.py`` exposing a click command or group, and
add one line to ``SUBCOMMANDS``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from tickstock import __version__
from tickstock.core.errors import TickStockError

# name -> ("module", "attribute", "one-line help shown by --help without importing the module")
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "up": ("tickstock.cli.up", "up", "Preflight, start every role, supervise, shut down cleanly."),
    "status": ("tickstock.cli.up", "status", "Roles and infrastructure with their health."),
    "infra": ("tickstock.cli.infra", "infra", "Embedded or external PostgreSQL and Redis."),
    "db": ("tickstock.cli.db", "db", "Database schema migrations."),
    "config": ("tickstock.cli.infra", "config", "Show the effective settings (secrets masked)."),
    "web": ("tickstock.cli.roles", "web", "Run the web role (pages, REST API, live push)."),
    "api": ("tickstock.cli.roles", "api", "Run the pipeline HTTP API role."),
    "worker": ("tickstock.cli.roles", "worker", "Run a worker (executes jobs and run batches)."),
    "scheduler": ("tickstock.cli.roles", "scheduler", "Run the daily-processing scheduler."),
    "stream": ("tickstock.cli.roles", "stream", "Run the live market-data stream role."),
    "jobs": ("tickstock.cli.jobs", "jobs", "Submit, list, show, cancel and watch jobs."),
    "bus": ("tickstock.cli.bus", "bus", "Inspect the bus: tail live events, dead letters."),
    "load": ("tickstock.cli.load", "load", "Load market data (symbols, universe or file)."),
    "universes": ("tickstock.cli.load", "universes", "List, import and combine universes."),
    "run": ("tickstock.cli.run", "run", "Run or trigger daily processing with live progress."),
    "replay": ("tickstock.cli.replay", "replay", "Serve a provider-protocol WebSocket replay."),
    "users": ("tickstock.cli.users", "users", "Create and manage user accounts and tokens."),
    "doctor": ("tickstock.cli.doctor", "doctor", "Check configuration, connectivity and health."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute, short_help = entry
        if ctx.resilient_parsing or "--help" in sys.argv[1:2]:
            return click.Command(cmd_name, short_help=short_help, help=short_help)
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tickstock")
def cli() -> None:
    """TickStock: market data, indicators, patterns and live dashboards.

    Settings come from TICKSTOCK_* environment variables and .env (see docs/configuration.md).
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; TickStockError becomes one line on stderr and its exit code."""
    try:
        return cli.main(args=argv, prog_name="tickstock", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TickStockError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
