"""Real data for the analysis tests, loaded once per session.

Daily: ``../shared/data/daily/*.csv.gz`` (489 S&P 500 members, 2012-12 .. 2017-12); rows with
an empty field are dropped (a handful of symbols have them), and of a date listed twice (COH,
LVLT) the last row is kept, as an upsert on (symbol, timeframe, ts) would.
Intraday: the S&P 500 index minute file (New York local times, volume 0), with ``session``
set to each day's 09:30 New York open in UTC -- what the caller computes from the calendar.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tickstock.analysis import Bars


def load_daily(path: Path) -> Bars:
    frame = pd.read_csv(path, usecols=["Date", "Open", "High", "Low", "Close", "Volume"])
    frame = frame.dropna().drop_duplicates(subset="Date", keep="last")
    ts = pd.to_datetime(frame["Date"], format="%Y-%m-%d").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return Bars(
        symbol=path.name.split(".")[0],
        timeframe="day",
        ts=ts,
        open=frame["Open"].to_numpy(np.float64),
        high=frame["High"].to_numpy(np.float64),
        low=frame["Low"].to_numpy(np.float64),
        close=frame["Close"].to_numpy(np.float64),
        volume=frame["Volume"].to_numpy(np.float64),
    )


@pytest.fixture(scope="session")
def daily_universe(shared_data: Path) -> dict[str, Bars]:
    """Every daily file as ``Bars``, by symbol (489 symbols)."""
    files = sorted((shared_data / "daily").glob("*.csv.gz"))
    assert len(files) == 489
    return {bars.symbol: bars for bars in map(load_daily, files)}


@pytest.fixture(scope="session")
def minute_bars(shared_data: Path) -> Bars:
    """The S&P 500 minute bars with New York sessions."""
    frame = pd.read_csv(shared_data / "intraday" / "SP500_NOV2019_IDay.csv")
    local = pd.to_datetime(frame["Date"], format="%m/%d/%Y %H:%M").dt.tz_localize("America/New_York")
    ts = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
    opens = (local.dt.normalize() + pd.Timedelta(hours=9, minutes=30)).dt.tz_convert("UTC")
    session = opens.dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
    return Bars(
        symbol="SPX",
        timeframe="1min",
        ts=ts,
        open=frame["Open"].to_numpy(np.float64),
        high=frame["High"].to_numpy(np.float64),
        low=frame["Low"].to_numpy(np.float64),
        close=frame["Close"].to_numpy(np.float64),
        volume=frame["Volume"].to_numpy(np.float64),
        session=session,
    )
