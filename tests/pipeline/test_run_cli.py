"""``tickstock run daily`` as a user runs it: a real process on the test's servers, the
synthetic market, and the run's record in PostgreSQL as the evidence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tickstock.contracts import names

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SYMBOLS = ["SYN0001", "SYN0002"]


def _tickstock(*args: str, db_dsn: str, redis_url: str, data_dir: Path,
               timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    env |= {"TICKSTOCK_DATABASE_URL": db_dsn, "TICKSTOCK_REDIS_URL": redis_url,
            "TICKSTOCK_DATA_DIR": str(data_dir), "TICKSTOCK_PROVIDER": "synthetic",
            "TICKSTOCK_LOG_LEVEL": "WARNING", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "tickstock", *args], env=env, text=True,
                          capture_output=True, timeout=timeout_s, check=False)


@pytest.fixture
def universe(db_dsn: str) -> str:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[])", (SYMBOLS,))
        conn.execute("INSERT INTO universes (name) VALUES ('syn2')")
        conn.execute("INSERT INTO universe_members (universe, symbol) SELECT 'syn2', symbol "
                     "FROM symbols")
    return "syn2"


def test_run_daily_now_executes_every_phase_with_progress(
    db_dsn: str, redis_url: str, universe: str, tmp_path: Path
) -> None:
    done = _tickstock("run", "daily", "--now", "--universe", universe, db_dsn=db_dsn,
                      redis_url=redis_url, data_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for phase in ("data_import", "indicators", "patterns", "outcomes"):
        assert f"{phase:<12} completed" in out, out
    assert "data_import  completed  2/2 processed, 0 failed" in out
    with psycopg.connect(db_dsn) as conn:
        row = conn.execute("SELECT run_id, status, trigger_type, requested_by, symbols_processed,"
                           " indicators_processed FROM processing_runs").fetchone()
        assert row is not None
        run_id, status, trigger, requester, processed, indicators = row
        assert (status, trigger, requester, processed) == ("completed", "manual", "cli", 2)
        assert indicators > 0
        stored = conn.execute("SELECT count(DISTINCT symbol) FROM indicator_values").fetchone()
        assert stored == (2,)
    assert f"run {run_id} accepted" in out and f"run {run_id} completed" in out


def test_run_daily_refusal_and_trigger_only(
    db_dsn: str, redis_url: str, universe: str, tmp_path: Path
) -> None:
    refused = _tickstock("run", "daily", "--now", "--universe", "nope", db_dsn=db_dsn,
                         redis_url=redis_url, data_dir=tmp_path)
    assert refused.returncode == 1
    assert "refused: unknown universe(s): nope" in refused.stdout
    client = redis.Redis.from_url(redis_url)
    try:
        before = client.xlen(names.COMMANDS_STREAM)
        # Without --now and with no worker running, the trigger waits on the bus for one.
        queued = _tickstock("run", "daily", "--universe", universe, db_dsn=db_dsn,
                            redis_url=redis_url, data_dir=tmp_path)
        assert queued.returncode == 0, queued.stdout + queued.stderr
        assert "submitted" in queued.stdout and "is a worker running?" in queued.stdout
        assert client.xlen(names.COMMANDS_STREAM) == before + 1
    finally:
        client.close()
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM processing_runs").fetchone() == (0,)
