"""Accounts: ``tickstock users`` (no default account, an admin only from the CLI) and the
admin users page (list, create, change role, disable), through real forms with CSRF."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import psycopg

from tickstock.web.config import WebDeps

from .conftest import ADMIN, USER, Server, csrf_of, login


def _cli(dsn: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env.update(TICKSTOCK_DATABASE_URL=dsn, TICKSTOCK_REDIS_URL="redis://127.0.0.1:1/0")
    return subprocess.run([sys.executable, "-m", "tickstock", "users", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120, check=False)


def test_cli_creates_the_first_admin_and_a_token(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:  # a fresh installation has no account at all
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    short = _cli(db_dsn, "create", "root_admin", "--admin", "--password-stdin", stdin="short\n")
    assert short.returncode != 0 and "at least 10 characters" in short.stderr + short.stdout
    done = _cli(db_dsn, "create", "root_admin", "--admin", "--password-stdin",
                stdin="a-long-secret-1\n")
    assert done.returncode == 0, done.stderr
    assert "created root_admin (admin)" in done.stdout
    token = _cli(db_dsn, "token", "create", "root_admin", "ci", "--days", "1")
    assert token.returncode == 0 and token.stdout.strip().startswith("tsk_")
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT role, password_hash FROM users WHERE username = 'root_admin'"
                           ).fetchone()
        assert row is not None and row[0] == "admin" and row[1].startswith("$argon2id$")
        audit = conn.execute("SELECT action FROM audit_log ORDER BY audit_id").fetchall()
    assert [a[0] for a in audit] == ["user.create", "token.create"]


def _form(client: httpx.Client, url: str, **fields: str) -> httpx.Response:
    csrf = csrf_of(client.get("/admin/users").text)
    return client.post(url, data={"csrf_token": csrf, **fields})


def test_admin_manages_accounts_on_the_users_page(admin_client: tuple[httpx.Client, str],
                                                  server: Server, web_deps: WebDeps) -> None:
    client, _ = admin_client
    page = client.get("/admin/users")
    assert f"data-user=\"{USER[0]}\"" in page.text and f"data-user=\"{ADMIN[0]}\"" in page.text
    res = _form(client, "/admin/users", username="carol", password="carol-password-1",
                role="user")
    assert res.status_code == 303 and "created" in res.headers["location"]
    dup = _form(client, "/admin/users", username="carol", password="carol-password-1")
    assert dup.status_code == 422 and "already exists" in dup.text

    with httpx.Client(base_url=server.url) as carol:
        login(carol, ("carol", "carol-password-1"))
        assert carol.get("/api/admin/users").status_code == 403
        assert _form(client, "/admin/users/carol", action="make_admin").status_code == 303
        assert carol.get("/api/admin/users").status_code == 200  # the role applies at once
        assert _form(client, "/admin/users/carol", action="disable").status_code == 303
        assert carol.get("/api/universes").status_code == 401  # and so does disabling
    with web_deps.pool.connection() as db:
        row = db.execute("SELECT role, disabled FROM users WHERE username = 'carol'").fetchone()
        actions = [r["action"] for r in db.execute(
            "SELECT action FROM audit_log WHERE target = 'carol' ORDER BY audit_id")]
    assert row is not None and (row["role"], row["disabled"]) == ("admin", True)
    assert actions == ["user.create", "user.make_admin", "user.disable"]


def test_the_last_admin_cannot_be_demoted_or_disabled(
        admin_client: tuple[httpx.Client, str]) -> None:
    client, _ = admin_client
    for action in ("make_user", "disable"):
        res = _form(client, f"/admin/users/{ADMIN[0]}", action=action)
        assert res.status_code == 422 and "last enabled admin" in res.text
    assert client.get("/api/admin/users").status_code == 200
