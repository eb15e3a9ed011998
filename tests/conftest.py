"""Test harness: every test gets a clean PostgreSQL database and a clean Redis database.

Real servers only. ``TICKSTOCK_TEST_DATABASE_URL`` (a DSN to any database on the server, used for
admin statements) and ``TICKSTOCK_TEST_REDIS_URL`` point at configured servers; unset, embedded
ones are started under ``.pytest-infra/``. Each pytest session migrates a template database once
(keyed by the migration files' hash), clones it into its own database, and truncates every table
before each test that asks for ``db_dsn``. Redis: each session locks one of the logical databases
1..15 so concurrent sessions on one machine do not see each other; it is flushed per test.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from tickstock.store import migrate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"


def _embedded():  # type: ignore[no-untyped-def]
    from tickstock.ops.infra import EmbeddedInfra

    return EmbeddedInfra(ROOT / ".pytest-infra")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: real market data; a missing folder is an error, not a skip."""
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: tests read real data from ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    dsn = os.environ.get("TICKSTOCK_TEST_DATABASE_URL")
    if dsn:
        return dsn
    infra = _embedded()
    infra.start_postgres()
    return infra.postgres_url()


def _with_database(dsn: str, name: str) -> str:
    """The URL ``dsn`` with its database replaced by ``name``."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def _migrations_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((migrate.MIGRATIONS_DIR / "versions").glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def template_db(pg_admin_dsn: str) -> str:
    """A migrated template database, built once per set of migration files."""
    name = f"ts_tmpl_{_migrations_hash()}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(72011)")
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                building = name + "_building"
                conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
                conn.execute(f'CREATE DATABASE "{building}"')
                migrate.upgrade(_with_database(pg_admin_dsn, building))
                conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(72011)")
    return name


@pytest.fixture(scope="session")
def session_db_dsn(pg_admin_dsn: str, template_db: str) -> Iterator[str]:
    name = f"ts_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(72011)")  # a template may have no other session
        try:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(72011)")
    yield _with_database(pg_admin_dsn, name)
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_dsn(session_db_dsn: str) -> str:
    """DSN of a migrated database with every table empty."""
    with psycopg.connect(session_db_dsn, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    return session_db_dsn


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    url = os.environ.get("TICKSTOCK_TEST_REDIS_URL")
    if url:
        return url
    infra = _embedded()
    infra.start_redis()
    return infra.redis_url()


@pytest.fixture(scope="session")
def session_redis_url(redis_server_url: str) -> Iterator[str]:
    base = redis_server_url.rsplit("/", 1)[0] if redis_server_url.count("/") > 2 else redis_server_url
    for index in range(1, 16):
        lock = open(f"/tmp/tickstock-test-redis-{index}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        try:
            yield f"{base}/{index}"
        finally:
            lock.close()
        return
    raise RuntimeError("all 15 Redis test databases are locked by other pytest sessions")


@pytest.fixture
def redis_url(session_redis_url: str) -> str:
    """URL of an empty Redis logical database owned by this pytest session."""
    client = redis.Redis.from_url(session_redis_url)
    client.flushdb()
    client.close()
    return session_redis_url
