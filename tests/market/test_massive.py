"""The real ``massive`` client against the local stand-in: paging, 429, 500, auth failure.

Oracle: the bars served are real daily rows of ../shared/data/daily (2017), written in the
provider's format; what is stored must be exactly those rows.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from psycopg_pool import ConnectionPool

from tests.market.massive_standin import RunningStandIn, StandIn
from tickstock.contracts.common import Timeframe
from tickstock.core.clock import FrozenClock
from tickstock.core.errors import ProviderAuthError, ProviderTemporaryError
from tickstock.market.calendar import MarketCalendar
from tickstock.market.ingest import Loader, LoadOptions
from tickstock.market.providers.massive import MassiveConfig, MassiveProvider

NY = ZoneInfo("America/New_York")
SYMBOLS = ("AAPL", "MSFT", "IBM")
START, END = datetime(2017, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC)


def real_rows(shared: Path, symbol: str) -> dict[date, tuple[float, ...]]:
    with gzip.open(shared / "daily" / f"{symbol}.csv.gz", "rt") as text:
        rows = list(csv.DictReader(text))
    return {
        date.fromisoformat(r["Date"]): tuple(float(r[k]) for k in
                                            ("Open", "High", "Low", "Close", "Volume"))
        for r in rows if r["Date"].startswith("2017")
    }


def as_massive(rows: dict[date, tuple[float, ...]]) -> list[dict[str, Any]]:
    out = []
    for day, (o, h, lo, c, v) in sorted(rows.items()):
        t = int(datetime(day.year, day.month, day.day, tzinfo=NY).timestamp() * 1000)
        out.append({"o": o, "h": h, "l": lo, "c": c, "v": v, "vw": round((h + lo + c) / 3, 4),
                    "t": t, "n": 1000})
    return out


@pytest.fixture
def standin(shared_data: Path) -> Iterator[StandIn]:
    server = StandIn(shared_data / "massive", page_size=100)
    for symbol in SYMBOLS:
        server.bars[(symbol, "1/day")] = as_massive(real_rows(shared_data, symbol))
    with RunningStandIn(server) as running:
        yield running


def provider(standin: StandIn, calendar: MarketCalendar, key: str = "test-key") -> MassiveProvider:
    return MassiveProvider(calendar, MassiveConfig(key, standin.base_url, retries=3,
                                                   connect_timeout_s=2, read_timeout_s=5))


def test_paged_load_with_429_and_500_stores_exactly_the_bars(
    pool: ConnectionPool, calendar: MarketCalendar, standin: StandIn, shared_data: Path
) -> None:
    standin.fail_next("/v2/aggs/ticker/AAPL", 429)
    standin.fail_next("/v2/aggs/ticker/MSFT", 500)
    clock = FrozenClock(datetime(2018, 1, 10, tzinfo=UTC))
    loader = Loader(pool, provider(standin, calendar), calendar, clock)
    summary = loader.top_up(SYMBOLS, [Timeframe.DAY], START, END)
    assert summary.failed == [] and summary.issues == []

    statuses = [status for _, status in standin.requests]
    assert statuses.count(429) == 1 and statuses.count(500) == 1
    pages = [path for path, status in standin.requests if status == 200]
    assert sum("cursor=" in p for p in pages) >= 2 * len(SYMBOLS)  # every symbol paged
    assert standin.schema_errors == []
    with pool.connection() as conn:
        for symbol in SYMBOLS:
            stored = {
                r["ts"].date(): (r["open"], r["high"], r["low"], r["close"], r["volume"])
                for r in conn.execute("SELECT * FROM bars WHERE symbol = %s AND "
                                      "timeframe = 'day'", (symbol,))
            }
            assert stored == real_rows(shared_data, symbol)
        vwap = conn.execute("SELECT count(*) AS n FROM bars WHERE vwap IS NULL OR trades <> 1000"
                            ).fetchone()
    assert vwap == {"n": 0}
    # a re-run asks only for what is missing (nothing past the last stored bar) and writes nothing
    again = loader.top_up(SYMBOLS, [Timeframe.DAY], START, END)
    assert again.written == 0


def test_auth_failure_is_clear_and_stores_nothing(
    pool: ConnectionPool, calendar: MarketCalendar, standin: StandIn
) -> None:
    clock = FrozenClock(datetime(2018, 1, 10, tzinfo=UTC))
    loader = Loader(pool, provider(standin, calendar, key="wrong"), calendar, clock)
    reported = []
    with pytest.raises(ProviderAuthError, match=r"HTTP 401.*MASSIVE_API_KEY"):
        loader.top_up(SYMBOLS, [Timeframe.DAY], START, END, on_result=reported.append)
    assert [(r.symbol, r.ok) for r in reported] == [("AAPL", False)]  # stopped at once
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM bars").fetchone() == {"n": 0}


def test_persistent_server_errors_fail_one_symbol_only(
    pool: ConnectionPool, calendar: MarketCalendar, standin: StandIn
) -> None:
    # MSFT: every call fails (client retries 3x, loader 2 attempts) -> only MSFT fails
    standin.fail_next("/v2/aggs/ticker/MSFT", 503, times=8)
    clock = FrozenClock(datetime(2018, 1, 10, tzinfo=UTC))
    loader = Loader(pool, provider(standin, calendar), calendar, clock,
                    LoadOptions(attempts=2, backoff_s=5))
    summary = loader.top_up(SYMBOLS, [Timeframe.DAY], START, END)
    assert [r.symbol for r in summary.failed] == ["MSFT"]
    assert "503" in (summary.failed[0].error or "")
    assert clock.monotonic() == 5.0  # one back-off on the test clock, no real sleeping
    with pool.connection() as conn:
        rows = conn.execute("SELECT symbol, count(*) AS n FROM bars GROUP BY symbol "
                            "ORDER BY symbol").fetchall()
    assert [r["symbol"] for r in rows] == ["AAPL", "IBM"]
    with pytest.raises(ProviderTemporaryError):
        standin.fail_next("/v2/aggs/ticker/IBM", 500, times=4)
        provider(standin, calendar).fetch_bars("IBM", Timeframe.DAY, START, END)


def test_reference_data_splits_status_and_sample_schema(
    calendar: MarketCalendar, standin: StandIn
) -> None:
    massive = provider(standin, calendar)
    symbols = massive.symbols()
    assert symbols and symbols[0].symbol == "A" and symbols[0].name == "Agilent Technologies Inc."
    actions = massive.corporate_actions("GOOGL", date(2022, 1, 1), date(2023, 1, 1))
    assert [(a.kind, a.ex_date, a.ratio) for a in actions] == [("split", date(2022, 7, 18), 20.0)]
    assert massive.market_status() == "extended-hours"
    standin.validate(
        "/v2/aggs/ticker/{stocksTicker}/range/{multiplier}/{timespan}/{from}/{to}",
        standin.sample("aggs_range_AAPL_1_day.json"))
    broken = {"ticker": "AAPL", "status": "OK"}  # the checker itself can fail
    standin.validate("/v2/aggs/ticker/{stocksTicker}/range/{multiplier}/{timespan}/{from}/{to}",
                     broken)
    assert len(standin.schema_errors) >= 1
    assert all("required" in e for e in standin.schema_errors)


def test_many_symbols_of_a_few_sessions_in_one_request_a_session(
    calendar: MarketCalendar, standin: StandIn
) -> None:
    """The daily top-up of a universe asks the grouped daily endpoint once a session (its
    answer checked against the official schema) and gets each symbol's bars exactly as its own
    aggregates request gives them; a symbol the market did not list is left out (fetched alone,
    it is a 404), the run's next batch reuses the answers, and a long range or an intraday
    timeframe leaves every symbol out."""
    massive = provider(standin, calendar)
    start, end = datetime(2017, 12, 4, tzinfo=UTC), datetime(2017, 12, 6, tzinfo=UTC)
    many = massive.fetch_bars_many([*SYMBOLS, "ZZZZ"], Timeframe.DAY, start, end)
    grouped = [p for p, _ in standin.requests if p.startswith("/v2/aggs/grouped/")]
    assert len(grouped) == 2 and len(standin.requests) == 2  # Monday and Tuesday, nothing else
    assert standin.schema_errors == []
    assert sorted(many) == sorted(SYMBOLS)
    for symbol in SYMBOLS:
        alone = massive.fetch_bars(symbol, Timeframe.DAY, start, end).bars
        got = many[symbol].bars
        assert len(got) == 2
        for column in ("ts", "open", "high", "low", "close", "volume", "vwap", "trades"):
            assert list(getattr(got, column)) == list(getattr(alone, column)), (symbol, column)
    requests = len(standin.requests)
    again = massive.fetch_bars_many(["IBM"], Timeframe.DAY, start, end)  # the run's next batch
    assert len(standin.requests) == requests and list(again["IBM"].bars.close) == list(
        many["IBM"].bars.close)
    assert massive.fetch_bars_many(list(SYMBOLS), Timeframe.DAY, START, END) == {}
    assert massive.fetch_bars_many(list(SYMBOLS), Timeframe.HOUR, start, end) == {}
