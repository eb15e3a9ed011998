"""``tickstock users``: accounts and API tokens. There is no default account or password."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import psycopg
from psycopg.rows import dict_row

from tickstock.cli.context import database_url
from tickstock.store import audit
from tickstock.store import users as store

ACTOR = "cli"


@contextmanager
def _db() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url(start=True), row_factory=dict_row,
                         options="-c timezone=UTC") as conn:
        yield conn


def _now() -> datetime:
    return datetime.now(UTC)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    store.check_password_policy(password)
    return password


@click.group()
def users() -> None:
    """Create and manage user accounts and API tokens."""


@users.command()
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (no prompt).")
def create(username: str, admin: bool, password_stdin: bool) -> None:
    """Create USERNAME; the password is prompted for (or read with --password-stdin)."""
    password = _read_password(password_stdin)
    role: store.Role = "admin" if admin else "user"
    with _db() as db:
        user = store.create_user(db, username, password, role)
        audit.record(db, actor=ACTOR, action="user.create", at=_now(), target=username,
                     details={"role": role})
    click.echo(f"created {user.username} ({user.role})")


@users.command(name="list")
def list_() -> None:
    """List accounts."""
    with _db() as db:
        for u in store.list_users(db):
            state = "disabled" if u.disabled else "active"
            last = u.last_login_at.isoformat() if u.last_login_at else "never"
            click.echo(f"{u.username:24} {u.role:6} {state:8} last login {last}")


@users.command(name="set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(store.ROLES))
def set_role(username: str, role: store.Role) -> None:
    """Change the role of USERNAME."""
    with _db() as db:
        store.set_role(db, username, role)
        audit.record(db, actor=ACTOR, action="user.set_role", at=_now(), target=username,
                     details={"role": role})
    click.echo(f"{username} is now {role}")


@users.command()
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
def disable(username: str, enable: bool) -> None:
    """Disable USERNAME (sessions and tokens stop working at once)."""
    with _db() as db:
        store.set_disabled(db, username, not enable)
        audit.record(db, actor=ACTOR, action="user.enable" if enable else "user.disable",
                     at=_now(), target=username)
    click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users.command(name="set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME."""
    password = _read_password(password_stdin)
    with _db() as db:
        user = store.require_user(db, username)
        store.set_password(db, user.user_id, password)
        audit.record(db, actor=ACTOR, action="user.set_password", at=_now(), target=username)
    click.echo(f"password of {username} changed")


@users.group()
def token() -> None:
    """API tokens (sent as 'Authorization: Bearer <token>')."""


@token.command(name="create")
@click.argument("username")
@click.argument("name")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Expire after this many days (default: never).")
def token_create(username: str, name: str, days: int | None) -> None:
    """Create token NAME for USERNAME and print it (it is shown only once)."""
    with _db() as db:
        user = store.require_user(db, username)
        valid = timedelta(days=days) if days else None
        _, secret = store.create_token(db, user.user_id, name, _now(), valid)
        audit.record(db, actor=ACTOR, action="token.create", at=_now(), target=username,
                     details={"name": name})
    click.echo(secret)


@token.command(name="revoke")
@click.argument("username")
@click.argument("name")
def token_revoke(username: str, name: str) -> None:
    """Revoke token NAME of USERNAME."""
    with _db() as db:
        user = store.require_user(db, username)
        store.revoke_token(db, user.user_id, name, _now())
        audit.record(db, actor=ACTOR, action="token.revoke", at=_now(), target=username,
                     details={"name": name})
    click.echo(f"revoked {name}")


@token.command(name="list")
@click.argument("username")
def token_list(username: str) -> None:
    """List the tokens of USERNAME."""
    with _db() as db:
        user = store.require_user(db, username)
        for t in store.list_tokens(db, user.user_id):
            state = "revoked" if t.revoked_at else "active"
            click.echo(f"{t.name:24} {state:8} created {t.created_at.isoformat()}")

