"""Password login with limits that survive restarts (tables ``login_attempts`` and ``users``).

Two limits, both read from PostgreSQL so every web instance enforces the same ones:

1. per client address: ``client_max_failures`` failed attempts within ``login_window_s`` and
   further attempts from that address are refused (HTTP 429) until old failures leave the window;
2. per account: ``login_max_failures`` consecutive wrong passwords lock the account for
   ``login_lockout_s`` (a correct password resets the count).

Unknown users cost one Argon2 verification like known ones, so timing does not reveal names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import psycopg

from tickstock.store import audit
from tickstock.store import users as user_store
from tickstock.store.users import User
from tickstock.web.config import WebDeps

Outcome = Literal["ok", "invalid", "locked", "disabled", "throttled"]

MESSAGES: dict[Outcome, str] = {
    "ok": "",
    "invalid": "Invalid username or password.",
    "locked": "Too many failed attempts: this account is locked for a while. Try again later.",
    "disabled": "This account is disabled. Ask an administrator.",
    "throttled": "Too many failed logins from your address. Wait a few minutes and try again.",
}


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: Outcome
    user: User | None = None

    @property
    def message(self) -> str:
        return MESSAGES[self.outcome]


def attempt_login(deps: WebDeps, username: str, password: str, client: str) -> LoginResult:
    """Check ``username``/``password`` from ``client``; records the attempt either way."""
    cfg = deps.config
    now = deps.clock.now()
    with deps.pool.connection() as db:
        since = now - timedelta(seconds=cfg.login_window_s)
        if user_store.recent_client_failures(db, client, since) >= cfg.client_max_failures:
            return LoginResult("throttled")
        user = user_store.find_user(db, username)
        outcome = _check(deps, db, user, password)
        user_store.record_login_attempt(db, client, username, outcome == "ok", now)
        if outcome == "ok" and user is not None:
            user_store.register_success(db, user.user_id, now)
            user_store.rehash_password(db, user.user_id, password)
            audit.record(db, actor=user.username, action="auth.login", at=now, client=client)
        return LoginResult(outcome, user if outcome == "ok" else None)


def _check(
    deps: WebDeps, db: psycopg.Connection[Any], user: User | None, password: str
) -> Outcome:
    now = deps.clock.now()
    if user is None:
        user_store.burn_verification(password)
        return "invalid"
    if user.locked_until is not None and user.locked_until > now:
        user_store.burn_verification(password)
        return "locked"
    stored = user_store.password_hash(db, user.user_id)
    if stored is None or not user_store.verify_password(stored, password):
        lock_until = now + timedelta(seconds=deps.config.login_lockout_s)
        updated = user_store.register_failure(
            db, user.user_id, deps.config.login_max_failures, lock_until
        )
        locked = updated.locked_until is not None and updated.locked_until > now
        return "locked" if locked else "invalid"
    if user.disabled:
        return "disabled"
    return "ok"
