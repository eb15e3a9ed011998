"""Session opens and daily trends for intraday bars in the daily run: what the stream uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from tickstock.analysis import Bars, batch
from tickstock.analysis.bars import PRICE_COLUMNS as PRICES
from tickstock.analysis.bars import datetime_to_ns
from tickstock.analysis.registry import DEFAULT_INDICATORS, DEFAULT_PATTERNS
from tickstock.contracts.common import Phase, Timeframe
from tickstock.core.timeutil import session_day_start_utc
from tickstock.market.bars import BarFrame
from tickstock.market.calendar import nyse
from tickstock.market.derive import derive
from tickstock.market.replay import read_minute_csv
from tickstock.pipeline.daily.model import BatchWork
from tickstock.pipeline.daily.steps.analysis import AnalysisStep
from tickstock.pipeline.daily.steps.intraday import session_opens, trends
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.store.bars import write_bars
from tickstock.store.db import create_pool
from tickstock.store.runs import NewRun, RunRepository


def _ns(*args: int) -> int:
    return datetime_to_ns(datetime(*args, tzinfo=UTC))


def test_each_bar_gets_its_sessions_open_as_the_live_stream_gives_it() -> None:
    ts = np.array([
        _ns(2024, 11, 27, 14, 30),  # 09:30 New York: the open itself
        _ns(2024, 11, 27, 20, 59),  # 15:59, the last minute
        _ns(2024, 11, 27, 21, 0),  # 16:00: after the close, its own start
        _ns(2024, 11, 29, 17, 59),  # the day after Thanksgiving closes at 13:00
        _ns(2024, 11, 29, 18, 0),  # ... so 13:00 is outside
        _ns(2024, 11, 30, 15, 0),  # a Saturday
    ], dtype=np.int64)
    got = session_opens(nyse(), ts)
    lookup = SessionLookup(nyse())
    want = []
    for t in ts.tolist():
        session = lookup.session_of(datetime.fromtimestamp(t / 1e9, UTC))
        want.append(datetime_to_ns(session.open) if session else t)
    assert got.tolist() == want
    assert got[0] == got[1] == ts[0] and got[2] == ts[2] and got[4] == ts[4] and got[5] == ts[5]
    assert got[3] == _ns(2024, 11, 29, 14, 30)
    assert session_opens(nyse(), np.zeros(0, dtype=np.int64)).shape == (0,)


def test_no_daily_history_gives_no_trend() -> None:
    assert np.isnan(trends(None, np.array([_ns(2024, 11, 27, 14, 30)]))).all()


SYMBOL = "SP500"


@pytest.fixture
def pool(db_dsn: str) -> Iterator[ConnectionPool]:
    p: ConnectionPool = create_pool(db_dsn, max_size=4)
    yield p
    p.close()


def _hours(shared_data: Path) -> BarFrame:
    rows = [r for r in read_minute_csv(shared_data / "intraday" / "SP500_NOV2019_IDay.csv", SYMBOL)
            if nyse().is_open(r.start)]
    minutes = BarFrame(SYMBOL, Timeframe.MIN1,
                       np.array([datetime_to_ns(r.start) for r in rows], dtype=np.int64),
                       *(np.array([getattr(r, c) for r in rows]) for c in PRICES))
    return derive(minutes, Timeframe.HOUR, nyse())


def _days() -> BarFrame:
    """Daily bars rising into mid-November 2019, then falling: the trend turns mid-month."""
    days = nyse().session_days(date(2019, 6, 1), date(2019, 11, 29))
    close = np.array([3000.0 + 5 * i if d < date(2019, 11, 14) else 3000.0 + 5 * i - 80 * (i - 114)
                      for i, d in enumerate(days)])
    ts = np.array([datetime_to_ns(session_day_start_utc(d)) for d in days], dtype=np.int64)
    return BarFrame(SYMBOL, Timeframe.DAY, ts, close, close + 10, close - 10, close,
                    np.full(len(days), 1e9))


def test_the_daily_run_gives_intraday_bars_their_session_and_daily_trend(
        shared_data: Path, pool: ConnectionPool) -> None:
    hours, days = _hours(shared_data), _days()
    with pool.connection() as conn:
        conn.execute("INSERT INTO symbols (symbol) VALUES (%s)", (SYMBOL,))
        write_bars(conn, [hours, days], "files")
    run = RunRepository(pool).create_run(NewRun(
        run_id="i1", trigger_type="manual", phases=("indicators", "patterns"),
        universes=("test",), timeframes=("hour",)), datetime(2019, 12, 2, tzinfo=UTC))
    for kind, phase in (("indicators", Phase.INDICATORS), ("patterns", Phase.PATTERNS)):
        work = BatchWork(run=run, phase=phase, batch_no=0, symbols=(SYMBOL,),
                         cancelled=lambda: False)
        assert AnalysisStep(pool, kind, calendar=nyse())(work).processed == 1
    session = session_opens(nyse(), hours.ts)
    daily = Bars(SYMBOL, "day", days.ts, days.open, days.high, days.low, days.close, days.volume)
    bars = Bars(SYMBOL, "hour", hours.ts, hours.open, hours.high, hours.low, hours.close,
                hours.volume, session=session, daily_trend=trends(daily, session))
    want = batch.compute(bars, (*DEFAULT_INDICATORS, *DEFAULT_PATTERNS))
    with pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        vwap = cur.execute(
            "SELECT ts, value FROM indicator_values WHERE symbol = %s AND timeframe = 'hour'"
            " AND name = 'vwap.mid' ORDER BY ts", (SYMBOL,)).fetchall()
        found = cur.execute(
            "SELECT ts, pattern, direction, daily_agrees FROM pattern_detections"
            " WHERE symbol = %s AND timeframe = 'hour'", (SYMBOL,)).fetchall()
    # the session VWAP restarts each session: it exists (it did not without sessions) and is
    # the batch engine's value with them
    expected = want.values["vwap.mid"]
    assert [v for _, v in vwap] == [float(x) for x in expected[~np.isnan(expected)]]
    assert len(vwap) == len(hours.ts)
    got = {(datetime_to_ns(ts), p, d, a) for ts, p, d, a in found}
    assert got == {(d.ts_ns, d.pattern, d.direction, d.daily_agrees) for d in want.detections}
    assert {a for *_, a in got} >= {True, False}  # the trend turned during the month
