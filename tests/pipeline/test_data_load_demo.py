"""The demo seed on a real PostgreSQL: what a first ``tickstock up`` loads with the synthetic
provider, that a second call changes nothing, and that real data is never mixed with it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime

import numpy as np
import pytest
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.clock import FrozenClock
from tickstock.market.calendar import nyse
from tickstock.market.providers.synthetic import SyntheticConfig, SyntheticProvider
from tickstock.market.universes import BUILTIN_DIR
from tickstock.pipeline.demo import DEMO_UNIVERSE, demo_members, seed_demo
from tickstock.store import universes as store
from tickstock.store.bars import bars_between
from tickstock.store.db import create_pool

# Friday 2024-06-14, after the close: the last complete session is that day.
NOW = datetime(2024, 6, 14, 21, 0, tzinfo=UTC)


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p = create_pool(db_dsn, max_size=4, name="test-demo")
    yield p
    p.close()


def _counts(pool: ConnectionPool) -> dict[str, tuple[int, int]]:
    with pool.connection() as conn:
        rows = conn.execute("SELECT timeframe, count(*) AS n, count(DISTINCT symbol) AS s "
                            "FROM bars GROUP BY 1").fetchall()
    return {r["timeframe"]: (r["n"], r["s"]) for r in rows}


def test_demo_seed_loads_a_usable_market_once(pool: ConnectionPool) -> None:
    calendar = nyse()
    result = seed_demo(pool, clock=FrozenClock(NOW), symbols=100, years=2, intraday_sessions=5)
    assert result.seeded and result.symbols == 100

    # two years = 730 days back from the last complete session, 2024-06-14
    sessions = len(calendar.session_days(date(2022, 6, 15), date(2024, 6, 14)))
    assert _counts(pool) == {"day": (100 * sessions, 100), "1min": (100 * 5 * 390, 100)}
    assert result.bars == 100 * (sessions + 5 * 390)
    with pool.connection() as conn:
        members = store.members(conn, DEMO_UNIVERSE)
        aapl = store.symbol_rows(conn, ["AAPL"])["AAPL"]
        sectors = [u for u in store.list_universes(conn) if u.name.startswith("demo:")]
        stored = bars_between(conn, "MSFT", Timeframe.DAY, datetime(2024, 1, 1, tzinfo=UTC), NOW)
    assert members == sorted(m.symbol for m in demo_members(100))
    assert {"AAPL", "SPY", "IBM"} <= set(members)
    assert aapl.name == "Apple Inc." and aapl.sector == "Information Technology"
    assert sectors and sum(u.members for u in sectors) <= 100
    expected = SyntheticProvider(calendar, SyntheticConfig(seed=42)).fetch_bars(
        "MSFT", Timeframe.DAY, datetime(2024, 1, 1, tzinfo=UTC), NOW).bars
    assert np.array_equal(stored.close, expected.close)

    again = seed_demo(pool, clock=FrozenClock(NOW), symbols=100, years=2, intraday_sessions=5)
    assert (again.seeded, again.bars, again.reason) == (True, 0, "already complete")


def test_demo_seed_tops_up_and_never_mixes_with_real_data(pool: ConnectionPool) -> None:
    seed_demo(pool, clock=FrozenClock(NOW), symbols=3, years=1, intraday_sessions=0)
    later = seed_demo(pool, clock=FrozenClock(datetime(2024, 6, 18, 21, tzinfo=UTC)),
                      symbols=3, years=1, intraday_sessions=0)
    assert later.bars == 3 * 2  # Monday and Tuesday closed since
    listed = set()
    for name in ("dow30", "nasdaq100", "etfs"):
        with (BUILTIN_DIR / f"{name}.csv").open(newline="") as fh:
            listed |= {r["Symbol"] for r in csv.DictReader(fh)}
    beyond = demo_members(len(listed) + 2)  # more than the built-in lists: made-up tickers
    assert [m.symbol for m in beyond[-2:]] == ["SYN0001", "SYN0002"]
    assert {m.symbol for m in beyond[:-2]} == listed

    with pool.connection() as conn:
        conn.execute("TRUNCATE bars, universe_members, universes CASCADE")
        conn.execute("INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, "
                      "source) VALUES ('IBM', 'day', '2024-06-14', 1, 2, 1, 2, 10, 'files')")
    skipped = seed_demo(pool, clock=FrozenClock(NOW), symbols=3, years=1)
    assert not skipped.seeded and "files" in skipped.reason
    assert _counts(pool) == {"day": (1, 1)}
