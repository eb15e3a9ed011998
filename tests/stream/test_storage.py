"""``BarStore.upsert`` against a migrated PostgreSQL: new bars go straight in by COPY, a batch
with a stored bar or a key twice is upserted whole, an invalid bar stores nothing.

Which path a batch took is read from the pooled connection itself (a pool of one): only the
upsert path creates the session's temporary table ``live_bars_in``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import StoreError
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.storage import BarStore
from tickstock.store.db import create_pool

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
_LENGTH = {Timeframe.MIN1: 1, Timeframe.MIN5: 5, Timeframe.MIN15: 15, Timeframe.HOUR: 60}
#: Every stored column but ``ingested_at``, in a fixed order for comparisons.
_READ = ("SELECT symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, source "
         "FROM bars ORDER BY symbol, timeframe, ts")
Row = tuple[object, ...]


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    pool = create_pool(db_dsn, min_size=1, max_size=1)  # one connection: its temp tables tell
    try:
        yield pool
    finally:
        pool.close()


def _bar(symbol: str, timeframe: Timeframe, minute: int, close: float, *,
         vwap: float | None = None, trades: int | None = None, low: float | None = None) -> LiveBar:
    start = T0 + timedelta(minutes=minute)
    return LiveBar(symbol, timeframe, start, start + timedelta(minutes=_LENGTH[timeframe]),
                   open=close - 0.5, high=close + 1.0, low=close - 1.0 if low is None else low,
                   close=close, volume=1000.0 + minute, vwap=vwap, trades=trades)


def _row(bar: LiveBar, source: str = "live") -> Row:
    return (bar.symbol, bar.timeframe.value, bar.start, bar.open, bar.high, bar.low, bar.close,
            bar.volume, bar.vwap, bar.trades, source)


def _stored(db_dsn: str) -> list[Row]:
    with psycopg.connect(db_dsn) as conn:
        return [tuple(r) for r in conn.execute(_READ).fetchall()]


def _took_upsert_path(pool: ConnectionPool) -> bool:
    with pool.connection() as conn:
        row = conn.execute("SELECT to_regclass('pg_temp.live_bars_in') IS NOT NULL AS made"
                           ).fetchone()
    assert row is not None
    return bool(row["made"])


def _sorted(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (str(r[0]), str(r[1]), str(r[2])))  # every ts in UTC


def test_new_bars_are_copied_straight_in_exactly(pool: ConnectionPool, db_dsn: str) -> None:
    bars = [
        _bar("AAPL", Timeframe.MIN1, 0, 180.25, vwap=180.1, trades=42),
        _bar("AAPL", Timeframe.MIN1, 1, 180.5),  # vwap and trades unknown: NULL
        _bar("MSFT", Timeframe.MIN1, 0, 410.0, vwap=409.75, trades=7),
        _bar("AAPL", Timeframe.MIN5, 0, 181.0, vwap=180.9, trades=300),
        _bar("MSFT", Timeframe.HOUR, 0, 411.125, trades=2_000_000_000),
    ]

    counts = BarStore(pool).upsert(bars)

    assert counts == {"1min": 3, "5min": 1, "hour": 1}
    assert _stored(db_dsn) == _sorted([_row(b) for b in bars])
    assert not _took_upsert_path(pool)
    with psycopg.connect(db_dsn) as conn:
        ingested = conn.execute("SELECT count(*) FROM bars WHERE ingested_at IS NOT NULL "
                                "AND ingested_at > now() - interval '1 minute'").fetchone()
    assert ingested == (len(bars),)


def test_stored_bars_are_updated_and_the_rest_inserted(pool: ConnectionPool, db_dsn: str) -> None:
    earlier = [_bar("AAPL", Timeframe.MIN1, 0, 100.0, vwap=99.0, trades=5),
               _bar("MSFT", Timeframe.MIN5, 0, 200.0, vwap=199.0, trades=9),
               _bar("NVDA", Timeframe.MIN1, 0, 300.0, vwap=300.5, trades=3)]
    BarStore(pool, source="repair").upsert(earlier)
    assert not _took_upsert_path(pool)

    again = [_bar("AAPL", Timeframe.MIN1, 0, 101.0),  # vwap and trades now unknown: set NULL
             _bar("MSFT", Timeframe.MIN5, 0, 202.0, vwap=201.5, trades=11)]
    new = [_bar("AAPL", Timeframe.MIN1, 1, 102.0, vwap=101.9, trades=4),
           _bar("MSFT", Timeframe.MIN5, 5, 203.0)]
    batch = [new[0], again[0], new[1], again[1]]

    counts = BarStore(pool).upsert(batch)

    assert counts == {"1min": 2, "5min": 2}
    assert _took_upsert_path(pool)
    # NVDA untouched (still the repair's), the others the batch's values and source, once each
    assert _stored(db_dsn) == _sorted([*(_row(b) for b in [*again, *new]), _row(earlier[2], "repair")])

    # the upsert path left the connection clean: the next new batch is COPYed and stored
    later = [_bar("AAPL", Timeframe.MIN1, 2, 103.0)]
    BarStore(pool).upsert(later)
    assert _stored(db_dsn) == _sorted([*(_row(b) for b in [*again, *new, *later]),
                                       _row(earlier[2], "repair")])


def test_a_key_twice_in_one_batch_is_one_row_with_the_later_bar(
        pool: ConnectionPool, db_dsn: str) -> None:
    # later higher for one key and lower for the other: no ordering of the values can pass
    first_a, later_a = _bar("AAPL", Timeframe.MIN1, 0, 100.0), _bar("AAPL", Timeframe.MIN1, 0, 110.0)
    first_m, later_m = _bar("MSFT", Timeframe.MIN1, 0, 220.0, trades=9), _bar(
        "MSFT", Timeframe.MIN1, 0, 210.0, trades=3)
    other = _bar("NVDA", Timeframe.MIN1, 0, 300.0)
    batch = [first_a, first_m, other, later_m, later_a]

    counts = BarStore(pool).upsert(batch)

    assert counts == {"1min": 5}  # bars given, as the old path counted them
    assert _took_upsert_path(pool)
    assert _stored(db_dsn) == [_row(later_a), _row(later_m), _row(other)]


@pytest.mark.parametrize("with_stored_bar", [False, True], ids=["copy", "upsert"])
def test_an_invalid_bar_fails_the_whole_batch(pool: ConnectionPool, db_dsn: str,
                                              with_stored_bar: bool) -> None:
    stored = _bar("AAPL", Timeframe.MIN1, 0, 100.0)
    BarStore(pool, source="repair").upsert([stored])
    before = _stored(db_dsn)
    batch = [_bar("MSFT", Timeframe.MIN1, 0, 200.0),
             _bar("NVDA", Timeframe.MIN1, 0, 300.0, low=302.0),  # high 301 < low: CHECK
             _bar("AMZN", Timeframe.MIN1, 0, 150.0)]
    if with_stored_bar:  # the COPY's unique violation sends the batch down the upsert path
        batch.insert(0, _bar("AAPL", Timeframe.MIN1, 0, 105.0))

    with pytest.raises(StoreError, match=f"storing {len(batch)} live bars") as failed:
        BarStore(pool).upsert(batch)

    # the CHECK is what failed, on either path (not the COPY's unique violation)
    assert isinstance(failed.value.__cause__, psycopg.errors.CheckViolation)
    assert _stored(db_dsn) == before
    # the pooled connection is usable afterwards
    BarStore(pool).upsert([_bar("MSFT", Timeframe.MIN1, 0, 200.0)])
    assert len(_stored(db_dsn)) == 2


def test_bars_expected_to_be_stored_are_upserted_without_a_copy_first(
        pool: ConnectionPool, db_dsn: str) -> None:
    stored = _bar("AAPL", Timeframe.MIN5, 0, 180.0)
    store = BarStore(pool)
    store.upsert([stored])
    assert not _took_upsert_path(pool)
    again = [_bar("AAPL", Timeframe.MIN5, 0, 181.0), _bar("MSFT", Timeframe.MIN5, 0, 410.0)]
    assert store.upsert(again, fresh=False) == {"5min": 2}
    assert _took_upsert_path(pool)
    assert _stored(db_dsn) == _sorted([_row(b) for b in again])
