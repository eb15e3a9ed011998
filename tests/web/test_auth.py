"""Login, sessions, CSRF, lockout, API tokens — against real PostgreSQL and Redis."""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg

from tickstock.store import users as user_store
from tickstock.web.config import WebDeps

from .conftest import ADMIN, USER, csrf_of, login, now


def test_login_sets_session_and_logout_clears_it(anon: httpx.Client) -> None:
    assert anon.get("/", follow_redirects=False).headers["location"].startswith("/login")
    token = login(anon, USER)
    assert anon.get("/").status_code == 200
    res = anon.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert res.status_code == 303
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_and_recorded(anon: httpx.Client, web_deps: WebDeps) -> None:
    token = csrf_of(anon.get("/login").text)
    res = anon.post("/login", data={"username": USER[0], "password": "wrong-password",
                                    "csrf_token": token})
    assert res.status_code == 401
    assert "Invalid username or password" in res.text
    with web_deps.pool.connection() as db:
        row = db.execute("SELECT count(*) AS n FROM login_attempts WHERE NOT succeeded").fetchone()
    assert row is not None and row["n"] == 1


def test_login_without_csrf_is_refused(anon: httpx.Client) -> None:
    anon.get("/login")
    res = anon.post("/login", data={"username": USER[0], "password": USER[1]})
    assert res.status_code == 403
    assert anon.get("/", follow_redirects=False).status_code == 303


def test_account_locks_after_consecutive_failures(anon: httpx.Client, web_deps: WebDeps) -> None:
    token = csrf_of(anon.get("/login").text)
    limit = web_deps.config.login_max_failures
    for _ in range(limit):
        anon.post("/login", data={"username": ADMIN[0], "password": "nope-nope-nope",
                                  "csrf_token": token})
    # The right password no longer works while locked; the lock is in PostgreSQL.
    res = anon.post("/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                    "csrf_token": token})
    assert res.status_code == 401 and "locked" in res.text
    with web_deps.pool.connection() as db:
        user = user_store.find_user(db, ADMIN[0])
    assert user is not None and user.locked_until is not None and user.locked_until > now()


def test_client_address_is_throttled(anon: httpx.Client, web_deps: WebDeps) -> None:
    token = csrf_of(anon.get("/login").text)
    for i in range(web_deps.config.client_max_failures):
        anon.post("/login", data={"username": f"ghost{i}", "password": "whatever-x",
                                  "csrf_token": token})
    res = anon.post("/login", data={"username": USER[0], "password": USER[1],
                                    "csrf_token": token})
    assert res.status_code == 429


def test_disabled_user_loses_session_at_once(anon: httpx.Client, web_deps: WebDeps) -> None:
    login(anon, USER)
    with web_deps.pool.connection() as db:
        user_store.set_disabled(db, USER[0], True)
    assert anon.get("/api/universes").status_code == 401


def test_api_token_authenticates_without_csrf(anon: httpx.Client, web_deps: WebDeps) -> None:
    with web_deps.pool.connection() as db:
        admin = user_store.require_user(db, ADMIN[0])
        _, secret = user_store.create_token(db, admin.user_id, "ci", now(), timedelta(days=1))
    headers = {"Authorization": f"Bearer {secret}"}
    assert anon.get("/api/admin/users", headers=headers).status_code == 200
    res = anon.post("/api/processing/daily/trigger", headers=headers, json={})
    assert res.status_code == 202
    with web_deps.pool.connection() as db:
        user_store.revoke_token(db, admin.user_id, "ci", now())
    assert anon.get("/api/admin/users", headers=headers).status_code == 401


def test_passwords_are_argon2_hashed(web_deps: WebDeps) -> None:
    with web_deps.pool.connection() as db:
        row = db.execute("SELECT password_hash FROM users WHERE username = %s",
                         (USER[0],)).fetchone()
    assert row is not None and row["password_hash"].startswith("$argon2id$")
    assert USER[1] not in row["password_hash"]


def test_short_password_is_refused(web_deps: WebDeps) -> None:
    with web_deps.pool.connection() as db:
        try:
            user_store.create_user(db, "carol", "short", "user")
        except Exception as exc:
            assert "at least" in str(exc)
        else:
            raise AssertionError("a 5-character password was accepted")
        assert user_store.find_user(db, "carol") is None
    assert isinstance(db, psycopg.Connection)


def test_token_use_is_recorded_without_a_write_per_request(web_deps: WebDeps) -> None:
    t0 = now()
    with web_deps.pool.connection() as db:
        user = user_store.require_user(db, USER[0])
        token, secret = user_store.create_token(db, user.user_id, "cli", t0,
                                                timedelta(days=1))
        assert token.last_used_at is None
        assert user_store.user_for_token(db, secret, t0) == user
        seen = [user_store.list_tokens(db, user.user_id)[0].last_used_at]
        user_store.user_for_token(db, secret, t0 + timedelta(seconds=30))
        seen.append(user_store.list_tokens(db, user.user_id)[0].last_used_at)
        user_store.user_for_token(db, secret, t0 + timedelta(seconds=90))
        seen.append(user_store.list_tokens(db, user.user_id)[0].last_used_at)
        assert seen == [t0, t0, t0 + timedelta(seconds=90)]
        # Expired, wrong or disabled: no user.
        assert user_store.user_for_token(db, secret, t0 + timedelta(days=2)) is None
        assert user_store.user_for_token(db, secret + "x", t0) is None
        user_store.set_disabled(db, USER[0], True)
        assert user_store.user_for_token(db, secret, t0) is None
