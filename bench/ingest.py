"""Ingest throughput: bars/s end to end against the physical limit, a raw binary COPY.

End to end is what a historical-load job does per symbol (``market.ingest.Loader.top_up``):
read the provider's response (the 489 real daily files of ``../shared/data/daily``, gzip CSV,
with their flawed rows), parse, validate, drop nothing silently, and write each symbol with
binary COPY + upsert in its own transaction, after asking what is stored already.
The limit is one binary COPY of exactly the rows that end to end stored, pre-encoded, into the
same (emptied) table with the same indexes, in the same run.

    ratio = (bars / s end to end) / (bars / s raw COPY)      target >= 0.5

Each round runs both, back to back; the result is the median of the rounds' ratios (a round's
pair shares the machine's load of the moment).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from common import SHARED_DATA, median, report, scratch_database
from tickstock.contracts.common import Timeframe
from tickstock.core.clock import FrozenClock
from tickstock.market.calendar import nyse
from tickstock.market.ingest import Loader
from tickstock.market.providers.files import FilesConfig, FilesProvider
from tickstock.store.bars import bars_between, encode_copy
from tickstock.store.db import create_pool

ROUNDS = 5
START, END = datetime(2010, 1, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC)


def end_to_end(dsn: str, directory: Path) -> tuple[float, int, int]:
    """(seconds, bars stored, rows refused) of one load of every file into an empty table."""
    calendar = nyse()
    provider = FilesProvider(calendar, FilesConfig(directory))
    symbols = [s.symbol for s in provider.symbols()]
    pool = create_pool(dsn, min_size=1, max_size=2, name="bench-ingest")
    try:
        loader = Loader(pool, provider, calendar, FrozenClock(datetime(2018, 1, 2, tzinfo=UTC)))
        started = time.perf_counter()
        summary = loader.top_up(symbols, [Timeframe.DAY], START, END)
        seconds = time.perf_counter() - started
    finally:
        pool.close()
    if summary.failed:
        raise SystemExit(f"end-to-end load failed for {[r.symbol for r in summary.failed][:5]}")
    return seconds, summary.written, len(summary.issues)


def stored_copy_data(dsn: str) -> tuple[bytes, int]:
    """The rows end to end stored, as one binary COPY payload (encoded outside the timing)."""
    with psycopg.connect(dsn) as conn:
        symbols = [r[0] for r in conn.execute("SELECT DISTINCT symbol FROM bars ORDER BY 1")]
        frames = []
        for symbol in symbols:
            stored = bars_between(conn, symbol, Timeframe.DAY, START, END)
            frames.append(_Frame(symbol, stored))
    return encode_copy(frames, "files")


class _Frame:
    """Stored bars of one symbol in the shape ``encode_copy`` takes."""

    timeframe = Timeframe.DAY

    def __init__(self, symbol: str, stored: object) -> None:
        self.symbol = symbol
        for name in ("ts", "open", "high", "low", "close", "volume", "vwap", "trades"):
            setattr(self, name, getattr(stored, name))


def raw_copy(dsn: str, data: bytes) -> float:
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY bars (symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, "
                "source) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        conn.commit()
        return time.perf_counter() - started


def empty(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE bars")
        conn.execute("VACUUM ANALYZE bars")


def main() -> int:
    directory = SHARED_DATA / "daily"
    e2e: list[float] = []
    raw: list[float] = []
    with scratch_database() as dsn:
        data, rows = b"", 0
        for _ in range(ROUNDS):
            empty(dsn)
            seconds, bars, refused = end_to_end(dsn, directory)
            e2e.append(seconds)
            if not data:
                data, rows = stored_copy_data(dsn)
                assert rows == bars, (rows, bars)
            empty(dsn)
            raw.append(raw_copy(dsn, data))
            print(f"round: {bars} bars ({refused} rows refused), end to end {seconds:.2f}s "
                  f"= {bars / seconds:,.0f} bars/s; raw COPY {raw[-1]:.2f}s "
                  f"= {rows / raw[-1]:,.0f} bars/s")
    print(f"median: end to end {rows / median(e2e):,.0f} bars/s, raw binary COPY "
          f"{rows / median(raw):,.0f} bars/s")
    ratio = median([r / e for e, r in zip(e2e, raw, strict=True)])
    return report("ingest_vs_raw_copy_ratio", ratio, ">=", 0.5)


if __name__ == "__main__":
    sys.exit(main())
