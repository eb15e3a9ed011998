"""The harness itself: databases are migrated and clean, Redis is isolated and empty."""

from __future__ import annotations

import psycopg
import redis

from tickstock.store import migrate


def test_database_is_migrated_and_empty(db_dsn: str) -> None:
    assert migrate.is_up_to_date(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("INSERT INTO symbols (symbol) VALUES ('AAPL')")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM symbols").fetchone() == (1,)


def test_database_is_clean_again(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM symbols").fetchone() == (0,)


def test_redis_is_empty_per_test(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("tickstock:harness:probe", "1")
    assert client.dbsize() == 1
