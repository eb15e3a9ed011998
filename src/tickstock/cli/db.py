"""``tickstock db``: schema migrations."""

from __future__ import annotations

import click

from tickstock.cli.context import database_url


@click.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


@db.command()
def upgrade() -> None:
    """Migrate the schema to the newest revision; running it again changes nothing."""
    from tickstock.store import migrate

    dsn = database_url(start=True)
    before = migrate.current_revisions(dsn)
    migrate.upgrade(dsn)
    after = migrate.current_revisions(dsn)
    if before == after:
        click.echo(f"schema already at {', '.join(sorted(after))}")
    else:
        click.echo(f"schema upgraded {', '.join(sorted(before)) or 'empty'} -> {', '.join(sorted(after))}")


@db.command()
def current() -> None:
    """Show the schema revision and whether it is the newest."""
    from tickstock.store import migrate

    dsn = database_url(start=False)
    revisions = migrate.current_revisions(dsn)
    state = "up to date" if revisions == migrate.head_revisions() else "needs `tickstock db upgrade`"
    click.echo(f"{', '.join(sorted(revisions)) or 'empty'} ({state})")
