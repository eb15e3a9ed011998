"""Accounts, passwords, login attempts and API tokens (tables ``users``, ``login_attempts``,
``api_tokens``).

Passwords are hashed with Argon2id (``argon2-cffi``'s defaults, rehashed on login when those
defaults change). API tokens are random strings shown once; only their SHA-256 is stored, so a
leaked database does not leak usable tokens. Every function takes an open connection so callers
decide the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tickstock.core.errors import DataValidationError, NotFoundError

Role = Literal["user", "admin"]
ROLES: tuple[Role, ...] = ("user", "admin")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "tsk_"

_hasher = PasswordHasher()  # stateless: parameters only


@dataclass(frozen=True, slots=True)
class User:
    """An account as the web app sees it (never the password hash)."""

    user_id: int
    username: str
    role: Role
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


_USER_COLUMNS = (
    "user_id, username, role, disabled, failed_logins, locked_until, created_at, last_login_at"
)


def _user(row: dict[str, Any]) -> User:
    return User(**{k: row[k] for k in User.__slots__})


# -- passwords ---------------------------------------------------------------------------------


def check_password_policy(password: str) -> None:
    """Refuse passwords too short to resist guessing; the message says the rule."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DataValidationError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip() != password or not password.strip():
        raise DataValidationError("password must not start or end with whitespace")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash of a random password: verifying against it costs what a real check costs, so a login
# for an unknown user takes as long as one for a known user (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def burn_verification(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


# -- users ---------------------------------------------------------------------------------------


def create_user(conn: psycopg.Connection[Any], username: str, password: str, role: Role) -> User:
    """Create an account; DataValidationError for a bad name/password/role or a taken name."""
    if role not in ROLES:
        raise DataValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    check_password_policy(password)
    try:
        with conn.transaction():
            row = conn.execute(
                f"INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s) "
                f"RETURNING {_USER_COLUMNS}",
                (username, hash_password(password), role),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise DataValidationError(f"user {username!r} already exists") from None
    except psycopg.errors.CheckViolation:
        raise DataValidationError(
            f"username {username!r} must be 3-64 characters of letters, digits, _ . @ -"
        ) from None
    assert row is not None
    return _user(row)


def get_user(conn: psycopg.Connection[Any], user_id: int) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = %s", (user_id,)).fetchone()
    return None if row is None else _user(row)


def find_user(conn: psycopg.Connection[Any], username: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE username = %s", (username,)
    ).fetchone()
    return None if row is None else _user(row)


def require_user(conn: psycopg.Connection[Any], username: str) -> User:
    user = find_user(conn, username)
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def password_hash(conn: psycopg.Connection[Any], user_id: int) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE user_id = %s", (user_id,)).fetchone()
    return None if row is None else str(row["password_hash"])


def list_users(conn: psycopg.Connection[Any]) -> list[User]:
    rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
    return [_user(r) for r in rows]


def count_admins(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM users WHERE role = 'admin' AND NOT disabled"
    ).fetchone()
    return int(row["n"]) if row else 0


def set_role(conn: psycopg.Connection[Any], username: str, role: Role) -> User:
    if role not in ROLES:
        raise DataValidationError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    row = conn.execute(
        f"UPDATE users SET role = %s WHERE username = %s RETURNING {_USER_COLUMNS}",
        (role, username),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return _user(row)


def set_disabled(conn: psycopg.Connection[Any], username: str, disabled: bool) -> User:
    row = conn.execute(
        f"UPDATE users SET disabled = %s, failed_logins = 0, locked_until = NULL "
        f"WHERE username = %s RETURNING {_USER_COLUMNS}",
        (disabled, username),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return _user(row)


def set_password(conn: psycopg.Connection[Any], user_id: int, password: str) -> None:
    check_password_policy(password)
    conn.execute(
        "UPDATE users SET password_hash = %s WHERE user_id = %s", (hash_password(password), user_id)
    )


def rehash_password(conn: psycopg.Connection[Any], user_id: int, password: str) -> None:
    """Store a fresh hash when the hasher's parameters changed since the stored one was made."""
    current = password_hash(conn, user_id)
    if current is not None and _hasher.check_needs_rehash(current):
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE user_id = %s",
            (hash_password(password), user_id),
        )


# -- login attempts and lockout -----------------------------------------------------------------


def record_login_attempt(
    conn: psycopg.Connection[Any], client: str, username: str, succeeded: bool, at: datetime
) -> None:
    conn.execute(
        "INSERT INTO login_attempts (client, username, ts, succeeded) VALUES (%s, %s, %s, %s)",
        (client, username[:64], at, succeeded),
    )


def recent_client_failures(conn: psycopg.Connection[Any], client: str, since: datetime) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM login_attempts WHERE client = %s AND ts >= %s AND NOT succeeded",
        (client, since),
    ).fetchone()
    return int(row["n"]) if row else 0


def register_failure(
    conn: psycopg.Connection[Any], user_id: int, max_failures: int, lock_until: datetime
) -> User:
    """Count a failed password; the ``max_failures``-th consecutive one locks the account."""
    row = conn.execute(
        f"UPDATE users SET failed_logins = failed_logins + 1, "
        f"locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s ELSE locked_until END "
        f"WHERE user_id = %s RETURNING {_USER_COLUMNS}",
        (max_failures, lock_until, user_id),
    ).fetchone()
    assert row is not None
    return _user(row)


def register_success(conn: psycopg.Connection[Any], user_id: int, at: datetime) -> None:
    conn.execute(
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = %s "
        "WHERE user_id = %s",
        (at, user_id),
    )


def prune_login_attempts(conn: psycopg.Connection[Any], before: datetime) -> int:
    return conn.execute("DELETE FROM login_attempts WHERE ts < %s", (before,)).rowcount


# -- API tokens ----------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: psycopg.Connection[Any],
    user_id: int,
    name: str,
    now: datetime,
    valid_for: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user_id``: (its record, the secret shown once)."""
    if not 1 <= len(name) <= 64:
        raise DataValidationError("token name must have 1-64 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + valid_for if valid_for is not None else None
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING token_id, user_id, name, created_at, "
                "last_used_at, expires_at, revoked_at",
                (user_id, name, _token_hash(secret), now, expires),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise DataValidationError(f"a token named {name!r} already exists for this user") from None
    assert row is not None
    return ApiToken(**row), secret


#: ``last_used_at`` is refreshed at most this often: writing it on every request would make
#: each API call a committed write, all of them queueing on the token's row lock.
TOKEN_USE_RESOLUTION = timedelta(seconds=60)


def user_for_token(conn: psycopg.Connection[Any], token: str, now: datetime) -> User | None:
    """The enabled user owning a live (unrevoked, unexpired) ``token``; marks it used."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = conn.execute(
        f"SELECT t.token_id, t.last_used_at AS token_used_at, "
        f"{', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))} "
        "FROM api_tokens t JOIN users u ON u.user_id = t.user_id "
        "WHERE t.token_hash = %s AND t.revoked_at IS NULL "
        "AND (t.expires_at IS NULL OR t.expires_at > %s) AND NOT u.disabled",
        (_token_hash(token), now),
    ).fetchone()
    if row is None:
        return None
    used = row["token_used_at"]
    if used is None or now - used >= TOKEN_USE_RESOLUTION:
        conn.execute(
            "UPDATE api_tokens SET last_used_at = %s WHERE token_id = %s "
            "AND (last_used_at IS NULL OR last_used_at < %s)",
            (now, row["token_id"], now - TOKEN_USE_RESOLUTION),
        )
    return _user(row)


def list_tokens(conn: psycopg.Connection[Any], user_id: int) -> list[ApiToken]:
    rows = conn.execute(
        "SELECT token_id, user_id, name, created_at, last_used_at, expires_at, revoked_at "
        "FROM api_tokens WHERE user_id = %s ORDER BY created_at",
        (user_id,),
    ).fetchall()
    return [ApiToken(**r) for r in rows]


def revoke_token(conn: psycopg.Connection[Any], user_id: int, name: str, now: datetime) -> None:
    count = conn.execute(
        "UPDATE api_tokens SET revoked_at = %s WHERE user_id = %s AND name = %s "
        "AND revoked_at IS NULL",
        (now, user_id, name),
    ).rowcount
    if count == 0:
        raise NotFoundError(f"no active token named {name!r}")
