"""Real market data for web tests: daily bars from ../shared/data, indicator values and
pattern detections computed here with TA-Lib (the web never computes them; a test must put
in the database what the pipeline would)."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import talib
from psycopg.types.json import Jsonb

from tickstock.web.config import Pool

SYMBOLS = ("AAPL", "MSFT", "GOOGL", "AMZN", "JPM", "XOM")
UNIVERSE = "webtest"
BARS = 320


def _rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as fh:
        rows = [r for r in csv.DictReader(fh) if all(r[k] for k in ("Open", "High", "Low",
                                                                       "Close", "Volume"))]
    return rows[-BARS:]


def seed(pool: Pool, data: Path) -> dict[str, int]:
    """Symbols, a universe, bars, SMA/Bollinger/RSI/MACD values and engulfing detections."""
    counts = {"bars": 0, "indicators": 0, "patterns": 0}
    with pool.connection() as db:
        db.execute("INSERT INTO universes (name, kind, description) VALUES (%s, 'custom', "
                   "'web test universe')", (UNIVERSE,))
        for symbol in SYMBOLS:
            rows = _rows(data / "daily" / f"{symbol}.csv.gz")
            db.execute("INSERT INTO symbols (symbol, name, exchange) VALUES (%s, %s, 'XNAS')",
                       (symbol, f"{symbol} Inc."))
            db.execute("INSERT INTO universe_members (universe, symbol) VALUES (%s, %s)",
                       (UNIVERSE, symbol))
            ts = [datetime.fromisoformat(r["Date"]).replace(tzinfo=UTC) for r in rows]
            o, h, low, c, v = (np.array([float(r[k]) for r in rows]) for k in
                               ("Open", "High", "Low", "Close", "Volume"))
            with db.cursor().copy("COPY bars (symbol, timeframe, ts, open, high, low, close, "
                                  "volume, source) FROM STDIN") as copy:
                for i in range(len(rows)):
                    copy.write_row((symbol, "day", ts[i], o[i], h[i], low[i], c[i], v[i], "files"))
            counts["bars"] += len(rows)
            upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0)
            macd, signal, hist = talib.MACD(c, 12, 26, 9)
            series = {"sma_20": talib.SMA(c, 20), "sma_50": talib.SMA(c, 50),
                      "bbands_20_2.upper": upper, "bbands_20_2.middle": middle,
                      "bbands_20_2.lower": lower, "rsi_14": talib.RSI(c, 14),
                      "macd_12_26_9.macd": macd, "macd_12_26_9.signal": signal,
                      "macd_12_26_9.hist": hist}
            with db.cursor().copy("COPY indicator_values (symbol, timeframe, ts, name, value) "
                                  "FROM STDIN") as copy:
                for name, values in series.items():
                    for i, value in enumerate(values):
                        if not np.isnan(value):
                            copy.write_row((symbol, "day", ts[i], name, float(value)))
                            counts["indicators"] += 1
            engulfing = talib.CDLENGULFING(o, h, low, c)
            for i in np.nonzero(engulfing)[0]:
                direction = "bullish" if engulfing[i] > 0 else "bearish"
                db.execute(
                    "INSERT INTO pattern_detections (symbol, timeframe, ts, pattern, direction, "
                    "confidence, evidence) VALUES (%s, 'day', %s, 'cdl_engulfing', %s, 0.7, %s)",
                    (symbol, ts[i], direction, Jsonb({"talib": int(engulfing[i])})))
                counts["patterns"] += 1
        db.execute(
            "INSERT INTO pattern_outcomes (pattern, timeframe, universe, horizon_bars, "
            "period_start, period_end, occurrences, mean_return, median_return, p10_return, "
            "p90_return, hit_rate) VALUES ('cdl_engulfing', 'day', %s, 5, %s, %s, %s, 0.004, "
            "0.003, -0.03, 0.04, 0.55)",
            (UNIVERSE, datetime(2016, 1, 1, tzinfo=UTC), datetime(2017, 12, 1, tzinfo=UTC),
             counts["patterns"]))
    return counts


def real_symbols(data: Path, count: int) -> list[str]:
    """The first ``count`` tickers that have a daily file in ../shared/data/daily."""
    files = sorted((data / "daily").glob("*.csv.gz"))
    return [f.name.removesuffix(".csv.gz") for f in files][:count]


def seed_universe(pool: Pool, universe: str, symbols: list[str]) -> None:
    """A universe of ``symbols`` with no bars: a daily run imports them."""
    with pool.connection() as db:
        db.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[]) "
                   "ON CONFLICT DO NOTHING", (symbols,))
        db.execute("INSERT INTO universes (name) VALUES (%s)", (universe,))
        db.execute("INSERT INTO universe_members (universe, symbol) "
                   "SELECT %s, unnest(%s::text[])", (universe, symbols))
