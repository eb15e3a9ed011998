"""The outcome statistics refresh against real PostgreSQL: its numbers equal forward returns
computed in numpy from the stored bars, whatever bars come before a symbol's first detection
(the refresh reads each symbol's bars from its oldest detection on)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Phase, Timeframe
from tickstock.market.calendar import nyse
from tickstock.market.providers.synthetic import SyntheticProvider
from tickstock.pipeline.daily.model import BatchWork
from tickstock.pipeline.daily.steps.outcomes import HORIZONS, OutcomeRefresh
from tickstock.store.bars import write_bars
from tickstock.store.db import create_pool
from tickstock.store.runs import NewRun, RunRepository

NOW = datetime(2024, 6, 3, 23, 0, tzinfo=UTC)
SYMBOLS = ("AAA", "BBB", "CCC")
# (symbol, bar position, pattern, direction): early and late detections, the last ones too
# close to the end for the 20-bar horizon, one symbol without any.
DETECTIONS = (
    ("AAA", 5, "doji", "neutral"), ("AAA", 40, "doji", "bullish"), ("AAA", 95, "doji", "bearish"),
    ("AAA", 60, "gap_up", "bullish"), ("BBB", 70, "doji", "bearish"),
    ("BBB", 71, "gap_up", "bullish"), ("BBB", 99, "gap_up", "bullish"),
)


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p: ConnectionPool = create_pool(db_dsn, max_size=4)
    yield p
    p.close()


def _seed(conn: psycopg.Connection[object]) -> dict[str, np.ndarray]:
    market = SyntheticProvider(nyse())
    frames = [market.fetch_bars(s, Timeframe.DAY, datetime(2024, 1, 2, tzinfo=UTC), NOW).bars
              for s in SYMBOLS]
    conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[])", (list(SYMBOLS),))
    write_bars(conn, [f.between(int(f.ts[-100]), int(f.ts[-1]) + 1) for f in frames],
               "synthetic")
    closes = {}
    for f in frames:
        closes[f.symbol] = f.close[-100:]
        ts = f.ts[-100:]
        for symbol, pos, pattern, direction in DETECTIONS:
            if symbol == f.symbol:
                conn.execute(
                    "INSERT INTO pattern_detections (symbol, timeframe, ts, pattern, direction,"
                    " confidence, source) VALUES (%s, 'day', %s, %s, %s, 0.5, 'batch')",
                    (symbol, datetime.fromtimestamp(int(ts[pos]) // 10**9, UTC), pattern, direction))
    return closes


def _expected(closes: dict[str, np.ndarray]) -> dict[tuple[str, int], tuple[int, float, float]]:
    """(pattern, horizon) -> (occurrences, mean return, median return), signed by direction."""
    returns: dict[tuple[str, int], list[float]] = {}
    for symbol, pos, pattern, direction in DETECTIONS:
        c = closes[symbol]
        for h in HORIZONS:
            if pos + h < len(c):
                sign = -1.0 if direction == "bearish" else 1.0
                returns.setdefault((pattern, h), []).append(sign * (c[pos + h] / c[pos] - 1))
    return {k: (len(v), float(np.mean(v)), float(np.median(v))) for k, v in returns.items()}


def test_outcomes_equal_forward_returns_of_the_stored_bars(pool: ConnectionPool) -> None:
    with pool.connection() as conn:
        closes = _seed(conn)
    runs = RunRepository(pool)
    run = runs.create_run(NewRun(run_id="o1", trigger_type="manual", phases=("outcomes",),
                                 universes=("test",), timeframes=("day",)), NOW)
    work = BatchWork(run=run, phase=Phase.OUTCOMES, batch_no=0, symbols=SYMBOLS,
                     cancelled=lambda: False)
    assert OutcomeRefresh(pool)(work).processed == len(SYMBOLS)
    with pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT pattern, horizon_bars, occurrences, mean_return, median_return"
            " FROM pattern_outcomes WHERE universe = 'test'").fetchall()
    got = {(p, h): (n, mean, median) for p, h, n, mean, median in rows}
    want = _expected(closes)
    assert set(got) == set(want)
    for k, (n, mean, median) in want.items():
        assert got[k][0] == n, k
        assert got[k][1] == pytest.approx(mean, rel=1e-12, abs=1e-15), k
        assert got[k][2] == pytest.approx(median, rel=1e-12, abs=1e-15), k
