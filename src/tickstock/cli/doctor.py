"""``tickstock doctor``: configuration, connectivity, schema, heartbeats, lag, dead letters,
daily run, disk and provider key as one OK / WARN / FAIL table; exits 1 on any FAIL."""

from __future__ import annotations

import json
import sys

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(as_json: bool) -> None:
    """Check configuration, connectivity and health; say what to do about each problem."""
    from tickstock.ops import doctor as checks

    results = checks.run_doctor()
    if as_json:
        click.echo(json.dumps(checks.as_json(results), indent=2))
    else:
        click.echo(checks.format_table(results, color=sys.stdout.isatty()))
    if any(check.state == "FAIL" for check in results):
        sys.exit(1)
