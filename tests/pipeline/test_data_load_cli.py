"""``tickstock load`` and ``tickstock universes`` through click's CliRunner, against real
PostgreSQL and Redis (a real worker in a thread for the submitted loads)."""

from __future__ import annotations

import csv
import gzip
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from psycopg_pool import ConnectionPool

from tickstock.bus.connection import connect
from tickstock.cli import context
from tickstock.cli.main import cli
from tickstock.core.clock import LiveClock
from tickstock.core.errors import DataValidationError, NotFoundError
from tickstock.market.calendar import nyse
from tickstock.market.providers import Provider, create_provider
from tickstock.market.universes import BUILTIN_DIR
from tickstock.pipeline.jobs.data_load import DataLoadJobs
from tickstock.pipeline.worker import Worker, WorkerOptions
from tickstock.store.db import create_pool

RANGE = ("--start", "2024-01-01", "--end", "2024-03-01")


def _sessions() -> int:
    """Sessions in RANGE."""
    return len(nyse().session_days(date(2024, 1, 1), date(2024, 2, 29)))


@pytest.fixture
def env(db_dsn: str, redis_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TICKSTOCK_DATABASE_URL", db_dsn)
    monkeypatch.setenv("TICKSTOCK_REDIS_URL", redis_url)
    monkeypatch.setenv("TICKSTOCK_PROVIDER", "synthetic")
    monkeypatch.setenv("TICKSTOCK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MASSIVE_API_KEY", raising=False)
    context.settings.cache_clear()
    yield tmp_path
    context.settings.cache_clear()


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=4, name="test-load-cli")
    yield p
    p.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _job_id(result: Result) -> str:
    found = re.search(r"job ([0-9a-f-]{36}) ", result.output)
    assert found, result.output
    return found.group(1)


def _count(pool: ConnectionPool, where: str = "true") -> int:
    with pool.connection() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM bars WHERE {where}").fetchone()
    assert row is not None
    return int(row["n"])


def test_universes_commands(env: Path, pool: ConnectionPool, shared_data: Path) -> None:
    result = run("universes", "import", "dow30")
    assert result.exit_code == 0, result.output
    assert "dow30: 30 symbols (30 added, 0 removed)" in result.output
    assert "dow30:information-technology" in result.output
    result = run("universes", "import", str(shared_data / "universes" / "sp500_constituents.csv"))
    assert "sp500: 503 symbols (503 added, 0 removed)" in result.output
    assert run("universes", "import", "nasdaq100").exit_code == 0

    listing = run("universes", "list")
    assert re.search(r"sp500\s+│\s+index\s+│\s+503", listing.output), listing.output
    assert "importable: dow30, etfs, nasdaq100" in listing.output
    assert "Apple Inc." in run("universes", "show", "dow30").output

    with (BUILTIN_DIR / "dow30.csv").open() as a, (BUILTIN_DIR / "nasdaq100.csv").open() as b:
        both = {r["Symbol"] for r in csv.DictReader(a)} & {r["Symbol"] for r in csv.DictReader(b)}
    result = run("universes", "combine", "both", "intersection", "dow30", "nasdaq100")
    assert f"both: {len(both)} symbols" in result.output
    assert "mine: 2 symbols (2 added" in run("universes", "create", "mine", "aapl", "IBM").output
    assert run("universes", "delete", "mine").output == "deleted mine\n"
    assert isinstance(run("universes", "show", "mine").exception, NotFoundError)
    assert isinstance(run("universes", "create", "bad", "B@D").exception, DataValidationError)


def test_load_inline_tops_up_and_reports(env: Path, pool: ConnectionPool) -> None:
    result = run("load", "AAA", "BBB", "--timeframes", "day,week", *RANGE, "--inline")
    assert result.exit_code == 0, result.output
    assert _count(pool, "timeframe = 'day'") == 2 * _sessions()
    assert _count(pool, "timeframe = 'week'") > 0
    assert "4 ok, 0 failed" in result.output and "completed" in result.output

    again = run("load", "AAA", "BBB", "--timeframes", "day,week", *RANGE, "--inline")
    assert again.exit_code == 0 and "0 bars written" in again.output

    usage = run("load", "AAA", "--universe", "dow30")
    assert usage.exit_code == 2 and "exactly one of SYMBOLS, --universe and --file" in usage.output
    assert "--timeframes: Input should be '1min'" in run("load", "AAA", "--timeframes", "daily").output
    assert "historical-load: SYMBOLS: String should match" in run("load", "B@D").output


def test_load_file_and_retry_failed(env: Path, pool: ConnectionPool, shared_data: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    flawed = env / "flawed.csv"
    flawed.write_text("Date,Open,High,Low,Close,Volume,Name\n2024-01-02,10,11,9,10.5,100,ABC\n"
                      "2024-01-03,10,9,11,10.5,100,ABC\n")
    result = run("load", "--file", str(flawed), "--inline")
    assert result.exit_code == 0, result.output
    assert "1 bars written, 1 rows refused" in result.output

    files = env / "files"
    files.mkdir()
    shutil.copy(shared_data / "daily" / "ESS.csv.gz", files)
    monkeypatch.setenv("TICKSTOCK_FILES_DIR", str(files))
    context.settings.cache_clear()
    args = ("--provider", "files", "--start", "2017-01-01", "--end", "2018-01-01", "--inline")
    first = run("load", "ESS", "MMC", *args)
    assert first.exit_code == 2, first.output  # some symbols failed
    assert "unknown symbol MMC" in first.output
    shutil.copy(shared_data / "daily" / "MMC.csv.gz", files)
    retry = run("load", "--retry-failed", _job_id(first), "--inline")
    assert retry.exit_code == 0, retry.output
    assert "1 ok, 0 failed" in retry.output
    with gzip.open(shared_data / "daily" / "MMC.csv.gz", "rt") as fh:
        rows_2017 = [r for r in csv.DictReader(fh) if r["Date"].startswith("2017") and r["Open"]]
    assert _count(pool, "symbol = 'MMC'") == len(rows_2017)
    nothing = run("load", "--retry-failed", _job_id(first), "--inline")
    assert isinstance(nothing.exception, NotFoundError)


def test_load_submits_the_job_a_worker_runs(env: Path, pool: ConnectionPool,
                                            redis_url: str) -> None:
    client: redis.Redis = connect(redis_url, name="test-load-cli")
    calendar = nyse()
    provider: Provider = create_provider("synthetic", calendar)
    jobs = DataLoadJobs(providers=lambda name: provider, calendar=calendar)
    worker = Worker(name="w-cli", client=client, pool=pool, clock=LiveClock(),
                    handlers=jobs.handlers(), options=WorkerOptions(block_ms=50))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        result = run("load", "--universe", "dow30", "--seed", *RANGE)
    finally:
        worker.stop()
        thread.join(timeout=10)
        client.close()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("submitted ") and "job.universe_seed" in result.output
    assert "30 ok, 0 failed" in result.output
    assert _count(pool, "timeframe = 'day'") == 30 * _sessions()
