"""Schema migrations through Alembic: upgrade to head, report the current revision."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlalchemy_url(dsn: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def alembic_config(dsn: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(dsn).replace("%", "%%"))
    return cfg


def upgrade(dsn: str) -> None:
    """Bring the schema to every head; a second call changes nothing."""
    command.upgrade(alembic_config(dsn), "heads")


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config("postgresql://unused/x")).get_heads())


def current_revisions(dsn: str) -> set[str]:
    engine = create_engine(_sqlalchemy_url(dsn), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


def is_up_to_date(dsn: str) -> bool:
    return current_revisions(dsn) == head_revisions()


def ping(dsn: str, timeout_s: float = 3.0) -> None:
    """Raise psycopg.OperationalError unless the server answers within ``timeout_s``."""
    with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
        conn.execute("SELECT 1")
