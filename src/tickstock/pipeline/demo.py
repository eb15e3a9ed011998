"""The demo market: what a first ``tickstock up`` on an empty database loads, so every page has
data at once. Synthetic provider only (the default without ``MASSIVE_API_KEY``).

1. refuse politely when the database already holds bars from a real source: the demo never
   mixes made-up prices into real data
2. pick ``symbols`` tickers: SPY, QQQ, DIA and IWM, the Dow 30, the NASDAQ-100, the other ETFs
   of the built-in lists (real names and sectors), then made-up ``SYN0001``... if more are asked
3. store them as the ``demo`` universe (plus one universe per sector)
4. top up ``years`` of daily bars and the minute bars of the last ``intraday_sessions``
   complete sessions: one coverage query and one binary COPY per timeframe for all symbols

Idempotent: a second call fetches nothing that is stored and writes nothing (a later call
adds the sessions that closed since). Interrupted half-way, the next call completes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.clock import Clock
from tickstock.core.timeutil import session_day_start_utc
from tickstock.market.bars import BarFrame
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.market.ingest import complete_until, missing_ranges
from tickstock.market.providers.synthetic import SyntheticConfig, SyntheticProvider
from tickstock.market.universes import UniverseCatalog, UniverseDefinition, import_universe
from tickstock.store.bars import coverage, write_bars
from tickstock.store.universes import SymbolRow

log = logging.getLogger(__name__)

DEMO_UNIVERSE = "demo"
_SOURCE_LISTS = ("dow30", "nasdaq100", "etfs")
_MARKET_ETFS = frozenset({"SPY", "QQQ", "DIA", "IWM"})
#: ``bars.source`` of real providers: their data is never mixed with the demo's.
_REAL_SOURCES = ("massive", "files")


@dataclass(frozen=True)
class DemoSeed:
    """What ``seed_demo`` did."""

    seeded: bool  # False: skipped, see ``reason``
    reason: str
    symbols: int = 0
    bars: int = 0  # bars written by this call
    seconds: float = 0.0


def demo_members(count: int) -> tuple[SymbolRow, ...]:
    """``count`` demo symbols with reference data (see the module docstring)."""
    catalog = UniverseCatalog()
    lists = {name: catalog.load(name).members for name in _SOURCE_LISTS}
    chosen: dict[str, SymbolRow] = {}
    # the broad-market ETFs lead: pages compare symbols with the market
    for member in (*(m for m in lists["etfs"] if m.symbol in _MARKET_ETFS),
                   *(m for name in _SOURCE_LISTS for m in lists[name])):
        chosen.setdefault(member.symbol, member)
    rows = list(chosen.values())[:count]
    rows += [SymbolRow(f"SYN{i:04d}", name=f"Synthetic {i}", exchange="SYNTH")
             for i in range(1, count - len(rows) + 1)]
    return tuple(rows)


def seed_demo(pool: ConnectionPool, *, clock: Clock, symbols: int = 100, years: int = 2,
              intraday_sessions: int = 5, seed: int = 42,
              calendar: MarketCalendar | None = None) -> DemoSeed:
    """Load the demo market into the database behind ``pool`` (see the module docstring).

    The launcher calls it with the settings ``TICKSTOCK_DEMO_SYMBOLS``,
    ``TICKSTOCK_DEMO_YEARS`` and ``TICKSTOCK_SYNTHETIC_SEED`` when the provider is synthetic.
    """
    started = time.monotonic()
    with pool.connection() as conn:
        real = conn.cursor(row_factory=tuple_row).execute(
            "SELECT source FROM bars WHERE source = ANY(%s) LIMIT 1",
            (list(_REAL_SOURCES),)).fetchone()
    if real is not None:
        return DemoSeed(False, f"the database already holds {real[0]} bars; no demo data mixed in")
    calendar = calendar or nyse()
    members = demo_members(symbols)
    provider = SyntheticProvider(calendar, SyntheticConfig(seed=seed))
    with pool.connection() as conn:
        import_universe(conn, UniverseDefinition(
            DEMO_UNIVERSE, "custom", f"Demo market: {len(members)} synthetic symbols", members))
    now = clock.now()
    last = calendar.last_complete_session(now)
    daily_start = session_day_start_utc(last.day - timedelta(days=round(365.25 * years)))
    tickers = [m.symbol for m in members]
    written = _top_up(pool, provider, calendar, symbols=tickers, timeframe=Timeframe.DAY,
                      start=daily_start, now=now)
    if intraday_sessions > 0:
        first = last.day
        for _ in range(intraday_sessions - 1):
            first = calendar.previous_session(first).day
        written += _top_up(pool, provider, calendar, symbols=tickers, timeframe=Timeframe.MIN1,
                           start=calendar.session(first).open, now=now)
    seconds = time.monotonic() - started
    log.info("demo market: %d symbols, %d bars written in %.1fs", len(members), written, seconds)
    return DemoSeed(True, "seeded" if written else "already complete", len(members), written,
                    seconds)


def _top_up(pool: ConnectionPool, provider: SyntheticProvider, calendar: MarketCalendar, *,
            symbols: list[str], timeframe: Timeframe, start: datetime, now: datetime) -> int:
    """Every symbol's missing bars of ``timeframe`` in one COPY (the synthetic market has no
    failures or flawed rows to report)."""
    end = complete_until(calendar, timeframe, now)
    with pool.connection() as conn:
        stored = coverage(conn, timeframe, symbols)
    frames: list[BarFrame] = []
    for symbol in symbols:
        for lo, hi in missing_ranges(start, end, stored.get(symbol)):
            frames.append(provider.fetch_bars(symbol, timeframe, lo, hi).bars)
    if not frames:
        return 0
    with pool.connection() as conn:
        return write_bars(conn, frames, provider.capabilities.name).written
