"""The data-load jobs end to end: submitted on the bus, executed by a real worker (drain mode)
against real PostgreSQL and Redis, checked in the database.

Oracles: the real daily files read naively with the csv module (flawed rows: an empty or
non-numeric field); the synthetic provider's own bars for synthetic loads.
"""

from __future__ import annotations

import csv
import gzip
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from psycopg_pool import ConnectionPool
from tests.market.massive_standin import RunningStandIn, StandIn
from tests.market.test_massive import as_massive, real_rows

from tickstock.bus.connection import connect
from tickstock.bus.submit import submit_job
from tickstock.contracts import JobStatus
from tickstock.contracts.common import ProviderName, Timeframe
from tickstock.contracts.jobs import (
    FileImport,
    HistoricalLoad,
    Job,
    MultiTimeframeLoad,
    UniverseSeed,
)
from tickstock.core.clock import LiveClock
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.market.ingest import LoadOptions
from tickstock.market.providers import FetchResult, Provider
from tickstock.market.providers.files import FilesConfig, FilesProvider
from tickstock.market.providers.massive import MassiveConfig, MassiveProvider
from tickstock.market.providers.synthetic import SyntheticConfig, SyntheticProvider
from tickstock.market.universes import BUILTIN_DIR
from tickstock.pipeline.jobs.data_load import DataLoadJobs, retry_failed_job
from tickstock.pipeline.worker import Worker, WorkerOptions
from tickstock.store.db import create_pool
from tickstock.store.jobs import JobRecord, JobStore

START = datetime(2012, 1, 1, tzinfo=UTC)
END = datetime(2018, 1, 1, tzinfo=UTC)


def oracle(path: Path) -> tuple[dict[date, tuple[float, ...]], set[int]]:
    """(good rows by date, line numbers of rows with an empty/non-numeric field)."""
    good: dict[date, tuple[float, ...]] = {}
    flawed: set[int] = set()
    with gzip.open(path, "rt") as text:
        rows = list(csv.reader(text))
    for line, row in enumerate(rows[1:], start=2):
        try:
            good[date.fromisoformat(row[0])] = tuple(float(row[i]) for i in (1, 2, 3, 4, 6))
        except ValueError:
            flawed.add(line)
    return good, flawed


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=4, name="test-data-load")
    yield p
    p.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = connect(redis_url, name="test-data-load")
    yield c
    c.close()


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return nyse()


Run = Callable[..., JobRecord]


@pytest.fixture
def run_job(pool: ConnectionPool, client: redis.Redis, calendar: MarketCalendar) -> Run:
    """Submit ``job`` as the web app would and drain it with a real worker whose provider is
    ``provider``; the job's final record."""
    def run(job: Job, provider: Provider, options: LoadOptions | None = None) -> JobRecord:
        def providers(name: ProviderName | None) -> Provider:
            return provider

        jobs = DataLoadJobs(providers=providers, calendar=calendar,
                            options=options or LoadOptions(attempts=1))
        worker = Worker(name="w-data", client=client, pool=pool, clock=LiveClock(),
                        handlers=jobs.handlers(), options=WorkerOptions(block_ms=50))
        envelope = submit_job(client, job, source="test")
        worker.run(drain=True)
        record = JobStore(pool, LiveClock()).get(envelope.id)
        assert record is not None
        return record
    return run


def _stored(pool: ConnectionPool, timeframe: str = "day") -> dict[str, dict[date, tuple[float, ...]]]:
    stored: dict[str, dict[date, tuple[float, ...]]] = {}
    with pool.connection() as conn:
        for row in conn.execute("SELECT symbol, ts, open, high, low, close, volume FROM bars "
                                "WHERE timeframe = %s", (timeframe,)):
            stored.setdefault(row["symbol"], {})[row["ts"].date()] = (
                row["open"], row["high"], row["low"], row["close"], row["volume"])
    return stored


def _snapshot(pool: ConnectionPool) -> tuple[Any, ...]:
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n, max(ingested_at) AS t, "
                           "sum(close) AS c FROM bars").fetchone()
    assert row is not None
    return row["n"], row["t"], row["c"]


def _files(shared_data: Path, calendar: MarketCalendar) -> FilesProvider:
    return FilesProvider(calendar, FilesConfig(shared_data / "daily"))


def test_historical_load_stores_exactly_the_good_rows(
        run_job: Run, pool: ConnectionPool, shared_data: Path, calendar: MarketCalendar) -> None:
    job = HistoricalLoad(symbols=("ESS", "UA", "NOPE"), start=START, end=END,
                         requested_by="tester")
    record = run_job(job, _files(shared_data, calendar))
    assert record.status is JobStatus.COMPLETED
    assert (record.total, record.processed, record.failed) == (3, 3, 1)

    stored = _stored(pool)
    with pool.connection() as conn:
        issues = conn.execute("SELECT symbol, line, reason FROM import_row_issues "
                              "WHERE source_id = %s", (record.job_id,)).fetchall()
        failures = conn.execute("SELECT symbol, timeframe, reason FROM import_failures "
                                "WHERE source_id = %s", (record.job_id,)).fetchall()
        symbols = [r["symbol"] for r in conn.execute("SELECT symbol FROM symbols ORDER BY 1")]
    for symbol in ("ESS", "UA"):
        good, flawed = oracle(shared_data / "daily" / f"{symbol}.csv.gz")
        assert stored[symbol] == good
        assert {i["line"] for i in issues if i["symbol"] == symbol} == flawed
    assert all("missing or non-numeric" in i["reason"] for i in issues) and len(issues) == 6
    assert "NOPE" not in stored and symbols == ["ESS", "UA"]
    assert [(f["symbol"], f["timeframe"]) for f in failures] == [("NOPE", "day")]
    assert "unknown symbol NOPE" in failures[0]["reason"]
    assert record.result == {"bars": sum(len(stored[s]) for s in ("ESS", "UA"))}

    # the same job again: tops up nothing, changes nothing
    before = _snapshot(pool)
    again = run_job(job, _files(shared_data, calendar))
    assert again.status is JobStatus.COMPLETED and again.result == {"bars": 0}
    assert _snapshot(pool) == before


def test_retry_failed_reruns_exactly_the_failed_symbols(
        run_job: Run, pool: ConnectionPool, shared_data: Path, calendar: MarketCalendar,
        tmp_path: Path) -> None:
    shutil.copy(shared_data / "daily" / "ESS.csv.gz", tmp_path)
    provider = FilesProvider(calendar, FilesConfig(tmp_path))
    first = run_job(HistoricalLoad(symbols=("ESS", "MMC"), start=START, end=END), provider)
    assert (first.processed, first.failed) == (2, 1)

    shutil.copy(shared_data / "daily" / "MMC.csv.gz", tmp_path)  # the source is fixed
    retry = retry_failed_job(pool, first.job_id, requested_by="tester")
    assert isinstance(retry, HistoricalLoad)
    assert retry.symbols == ("MMC",) and retry.timeframes == (Timeframe.DAY,)
    assert (retry.start, retry.end) == (START, END)
    second = run_job(retry, provider)
    assert (second.total, second.processed, second.failed) == (1, 1, 0)
    assert set(_stored(pool)) == {"ESS", "MMC"}
    with pool.connection() as conn:
        row = conn.execute("SELECT resolved_at, retried_by FROM import_failures "
                           "WHERE source_id = %s", (first.job_id,)).fetchone()
    assert row is not None and row["resolved_at"] is not None
    assert row["retried_by"] == second.job_id
    assert retry_failed_job(pool, first.job_id) is None  # nothing left to retry


class _CancelAfter:
    """A provider (synthetic underneath) through which the test's user presses "cancel" while
    the job fetches its second symbol."""

    def __init__(self, inner: Provider, pool: ConnectionPool, trigger: str) -> None:
        self.inner = inner
        self.pool = pool
        self.trigger = trigger
        self.capabilities = inner.capabilities

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start: datetime,
                   end: datetime) -> FetchResult:
        if symbol == self.trigger:
            with self.pool.connection() as conn:
                job_id = conn.execute("SELECT job_id FROM jobs WHERE status = 'running'"
                                      ).fetchone()["job_id"]  # type: ignore[index]
            JobStore(self.pool, LiveClock()).request_cancel(job_id)
        return self.inner.fetch_bars(symbol, timeframe, start, end)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_cancel_stops_at_a_symbol_boundary(
        run_job: Run, pool: ConnectionPool, calendar: MarketCalendar) -> None:
    provider = _CancelAfter(SyntheticProvider(calendar, SyntheticConfig(seed=3)), pool, "BBB")
    job = MultiTimeframeLoad(symbols=("AAA", "BBB", "CCC", "DDD"),
                             timeframes=(Timeframe.DAY, Timeframe.WEEK),
                             start=datetime(2023, 1, 1, tzinfo=UTC),
                             end=datetime(2023, 7, 1, tzinfo=UTC))
    record = run_job(job, provider)
    assert record.status is JobStatus.CANCELLED
    # the next symbol is fetched while one is written: the cancel, pressed while BBB was
    # fetched, stops before BBB or after it, never inside a symbol and never later
    with pool.connection() as conn:
        rows = conn.execute("SELECT symbol, timeframe, count(*) AS n FROM bars "
                            "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    done = sorted({r["symbol"] for r in rows})
    assert done in (["AAA"], ["AAA", "BBB"])
    assert [(r["symbol"], r["timeframe"]) for r in rows] == [
        (s, tf) for s in done for tf in ("day", "week")]
    assert record.processed == 2 * len(done)
    assert rows[0]["n"] == len(calendar.session_days(date(2023, 1, 1), date(2023, 6, 30)))


def test_universe_seed_imports_and_loads_the_universe(
        run_job: Run, pool: ConnectionPool, calendar: MarketCalendar) -> None:
    provider = SyntheticProvider(calendar, SyntheticConfig(seed=5))
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    record = run_job(UniverseSeed(universe="dow30", start=start, end=end), provider)
    assert record.status is JobStatus.COMPLETED
    assert (record.total, record.processed, record.failed) == (30, 30, 0)
    with open(BUILTIN_DIR / "dow30.csv", newline="") as fh:
        members = sorted(r["Symbol"] for r in csv.DictReader(fh))
    sessions = len(calendar.session_days(date(2024, 3, 1), date(2024, 3, 31)))
    with pool.connection() as conn:
        counts = {r["symbol"]: r["n"] for r in conn.execute(
            "SELECT symbol, count(*) AS n FROM bars GROUP BY 1")}
        name = conn.execute("SELECT name FROM symbols WHERE symbol = 'AAPL'").fetchone()
    assert counts == dict.fromkeys(members, sessions)
    assert name == {"name": "Apple Inc."}
    expected = provider.fetch_bars("IBM", Timeframe.DAY, start, end).bars
    with pool.connection() as conn:
        closes = [r["close"] for r in conn.execute(
            "SELECT close FROM bars WHERE symbol = 'IBM' ORDER BY ts")]
    assert closes == expected.close.tolist()

    # a historical load of a universe the database does not hold is refused by name
    missing = run_job(HistoricalLoad(universe="nope", start=start, end=end), provider)
    assert missing.status is JobStatus.FAILED
    assert "no universe named 'nope'" in (missing.error or "")


def test_multi_timeframe_load_with_intraday(
        run_job: Run, pool: ConnectionPool, calendar: MarketCalendar) -> None:
    provider = SyntheticProvider(calendar, SyntheticConfig(seed=9))
    start, end = datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 8, tzinfo=UTC)
    tfs = (Timeframe.MIN1, Timeframe.MIN15, Timeframe.HOUR, Timeframe.DAY)
    record = run_job(MultiTimeframeLoad(symbols=("XOM", "KO"), timeframes=tfs, start=start,
                                        end=end), provider)
    assert (record.status, record.processed, record.failed) == (JobStatus.COMPLETED, 8, 0)
    with pool.connection() as conn:
        counts = {(r["symbol"], r["timeframe"]): r["n"] for r in conn.execute(
            "SELECT symbol, timeframe, count(*) AS n FROM bars GROUP BY 1, 2")}
    for symbol in ("XOM", "KO"):
        assert counts[(symbol, "1min")] == 5 * 390
        assert counts[(symbol, "15min")] == 5 * 26
        assert counts[(symbol, "hour")] == 5 * 7  # 09:30-10:30 ... 15:30-16:00
        assert counts[(symbol, "day")] == 5


def test_file_import_reports_bad_rows_and_refuses_bad_files(
        run_job: Run, pool: ConnectionPool, shared_data: Path, calendar: MarketCalendar,
        tmp_path: Path) -> None:
    provider = SyntheticProvider(calendar)
    minute_file = shared_data / "intraday" / "SP500_NOV2019_IDay.csv"
    with minute_file.open(newline="") as fh:
        source_rows = len(list(csv.reader(fh))) - 1
    record = run_job(FileImport(path=str(minute_file), symbol="SPX"), provider)
    assert record.status is JobStatus.COMPLETED, record.error
    with pool.connection() as conn:
        stored = conn.execute("SELECT count(*) AS n, min(ts) AS first FROM bars "
                              "WHERE symbol = 'SPX' AND timeframe = '1min'").fetchone()
    # the file carries the 16:00 closing print of three days: outside the session, reported
    assert stored == {"n": source_rows - 3, "first": datetime(2019, 11, 5, 14, 30, tzinfo=UTC)}
    with pool.connection() as conn:
        reasons = [r["reason"] for r in conn.execute(
            "SELECT reason FROM import_row_issues WHERE source_id = %s", (record.job_id,))]
    assert reasons == ["3 bars outside regular sessions not stored"]

    flawed = tmp_path / "flawed.csv"
    flawed.write_text(
        "Date,Open,High,Low,Close,Volume,Name\n"
        "2024-01-02,10,11,9,10.5,100,ABC\n"
        "2024-01-03,10,9,11,10.5,100,ABC\n"       # high < low
        "2024-01-04,10,11,9,10.5,-5,ABC\n"        # negative volume
        "2024-01-02,10,11,9,10.4,100,ABC\n"       # duplicate timestamp
        "2024-01-05,10,11,9,x,100,ABC\n"          # non-numeric
        "2024-01-08,20,21,19,20.5,100,XYZ\n"
        "2024-01-09,20,21,19,20.5,100\n")         # wrong number of fields
    record = run_job(FileImport(path=str(flawed)), provider)
    assert record.status is JobStatus.COMPLETED and record.processed == 2
    assert _stored(pool)["ABC"] == {date(2024, 1, 2): (10.0, 11.0, 9.0, 10.5, 100.0)}
    with pool.connection() as conn:
        issues = conn.execute("SELECT symbol, line, reason FROM import_row_issues "
                              "WHERE source_id = %s ORDER BY line", (record.job_id,)).fetchall()
    assert [(i["symbol"], i["line"]) for i in issues] == [
        ("ABC", 3), ("ABC", 4), ("ABC", 5), ("ABC", 6), ("flawed.csv", 8)]
    assert "high 9 < low 11" in issues[0]["reason"]
    assert "duplicate timestamp (row 2 kept)" in issues[2]["reason"]
    before = _snapshot(pool)
    assert run_job(FileImport(path=str(flawed)), provider).result == {"bars": 0}
    assert _snapshot(pool) == before

    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(gzip.compress(flawed.read_bytes())[:60])
    failed = run_job(FileImport(path=str(truncated)), provider)
    assert failed.status is JobStatus.FAILED
    assert "truncated or corrupt gzip" in (failed.error or "")
    layout = tmp_path / "layout.csv"
    layout.write_text("When,Price\n2024-01-02,10\n")
    failed = run_job(FileImport(path=str(layout), symbol="ABC"), provider)
    assert "wrong column layout, missing ts, open" in (failed.error or "")
    assert _snapshot(pool) == before



def test_massive_job_through_the_stand_in(
        run_job: Run, pool: ConnectionPool, shared_data: Path, calendar: MarketCalendar) -> None:
    """The real ``massive`` client against the local stand-in: paged answers, one 429, one
    500, then an auth failure, all through the worker."""
    server = StandIn(shared_data / "massive", page_size=100)
    symbols = ("AAPL", "MSFT", "IBM")
    for symbol in symbols:
        server.bars[(symbol, "1/day")] = as_massive(real_rows(shared_data, symbol))
    start, end = datetime(2017, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC)
    job = HistoricalLoad(symbols=symbols, start=start, end=end)
    with RunningStandIn(server) as standin:
        standin.fail_next("/v2/aggs/ticker/AAPL", 429)
        standin.fail_next("/v2/aggs/ticker/MSFT", 500)
        massive = MassiveProvider(calendar, MassiveConfig("test-key", standin.base_url))
        record = run_job(job, massive, LoadOptions(attempts=3, backoff_s=0.1))
        statuses = [status for _, status in standin.requests]
        refused = run_job(job.model_copy(update={"symbols": ("IBM", "GE")}),
                          MassiveProvider(calendar, MassiveConfig("wrong", standin.base_url)))
    assert (record.status, record.processed, record.failed) == (JobStatus.COMPLETED, 3, 0)
    assert statuses.count(429) == 1 and statuses.count(500) == 1
    stored = _stored(pool)
    assert {s: stored[s] for s in symbols} == {s: real_rows(shared_data, s) for s in symbols}
    assert refused.status is JobStatus.FAILED
    assert "MASSIVE_API_KEY" in (refused.error or "") and "401" in (refused.error or "")
    assert "GE" not in stored
