"""`tickstock db upgrade` from an empty database, and a second run that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


@pytest.fixture
def empty_database(pg_admin_dsn: str) -> Iterator[str]:
    name = f"ts_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(pg_admin_dsn)._replace(path="/" + name))
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _tickstock(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env["TICKSTOCK_DATABASE_URL"] = dsn
    env["TICKSTOCK_REDIS_URL"] = "redis://127.0.0.1:1/0"  # not needed by db commands
    return subprocess.run(
        [sys.executable, "-m", "tickstock", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _schema_dump(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()


def test_upgrade_from_empty_then_again_changes_nothing(empty_database: str) -> None:
    first = _tickstock("db", "upgrade", dsn=empty_database)
    assert first.returncode == 0, first.stderr
    assert "schema upgraded empty ->" in first.stdout
    schema = _schema_dump(empty_database)
    assert ("bars", "ts", "timestamp with time zone") in schema

    second = _tickstock("db", "upgrade", dsn=empty_database)
    assert second.returncode == 0, second.stderr
    assert "schema already at" in second.stdout
    assert _schema_dump(empty_database) == schema

    current = _tickstock("db", "current", dsn=empty_database)
    assert "up to date" in current.stdout


def test_every_time_column_is_timezone_aware(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        naive = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
        ).fetchall()
    assert naive == []
