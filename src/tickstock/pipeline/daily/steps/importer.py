"""Data import: top up each symbol of the batch to the run's session.

The rules are the market package's top-up (``tickstock.market.ingest``): fetch only what is
missing around the stored coverage (``missing_ranges``), never a bar that is not complete yet
(``complete_until``), retry provider hiccups with back-off (``Loader``). What this step adds
is batching: one coverage query and one binary COPY for the whole batch per timeframe instead
of one per symbol, which is what makes a 5,000-symbol daily top-up take seconds. Timeframes the
provider does not serve directly (derived ones) go through ``Loader.load_unit`` one by one.

The daily run only appends: a symbol with stored bars gets the bars after its last one (its
older history, if shorter than ``history_years``, is left to a data load; re-asking a provider
every night for years before a listing would cost one request per symbol for nothing). A symbol
never loaded gets ``history_years``.

A symbol whose fetch fails is recorded with its reason (``import_failures``) and fails alone;
its neighbours in the batch are written.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.clock import Clock
from tickstock.core.errors import DataValidationError, NotFoundError, ProviderError
from tickstock.core.timeutil import session_day_start_utc
from tickstock.market.bars import INTRADAY, BarFrame
from tickstock.market.calendar import MarketCalendar
from tickstock.market.ingest import (
    Loader,
    LoadOptions,
    UnitResult,
    complete_until,
    missing_ranges,
)
from tickstock.market.providers.base import BatchFetcher, Provider
from tickstock.pipeline.daily.model import BatchOutcome, BatchWork
from tickstock.store.bars import coverage, write_bars

log = logging.getLogger(__name__)

#: Errors that fail one symbol; anything else (database down, a bug) fails the batch, which
#: the bus retries.
SYMBOL_ERRORS = (ProviderError, NotFoundError, DataValidationError, ValueError)


class TopUpImporter:
    """Tops up bars from ``provider``; ``history_years`` of history for a symbol never loaded."""

    def __init__(self, *, pool: ConnectionPool, provider: Provider, calendar: MarketCalendar,
                 clock: Clock, history_years: float = 5, options: LoadOptions | None = None) -> None:
        self.pool = pool
        self.provider = provider
        self.calendar = calendar
        self.clock = clock
        self.history_years = history_years
        self.loader = Loader(pool, provider, calendar, clock, options)

    def __call__(self, work: BatchWork) -> BatchOutcome:
        session = work.session_date or self.calendar.last_complete_session(self.clock.now()).day
        start = session_day_start_utc(session - timedelta(days=366 * self.history_years))
        errors: dict[str, str] = {}
        outcome = BatchOutcome()
        for tf in work.timeframes:
            timeframe = Timeframe(tf)
            end = min(session_day_start_utc(session + timedelta(days=1)),
                      complete_until(self.calendar, timeframe, self.clock.now()))
            if timeframe in self.provider.capabilities.timeframes:
                failed = self._direct(work.symbols, timeframe, start, end)
            else:
                failed = self._derived(work.symbols, timeframe, start, end)
            for symbol, reason in failed.items():
                outcome.failures.append((symbol, tf, reason))
                errors.setdefault(symbol, reason)
            outcome.resolved.extend((s, tf) for s in work.symbols if s not in failed)
        outcome.failed = len(errors)
        outcome.processed = len(work.symbols) - outcome.failed
        outcome.counters = {"symbols_processed": outcome.processed,
                            "symbols_failed": outcome.failed}
        return outcome

    def _direct(self, symbols: tuple[str, ...], timeframe: Timeframe, start: datetime,
                end: datetime) -> dict[str, str]:
        with self.pool.connection() as conn:
            stored = coverage(conn, timeframe, symbols)
        wanted: dict[tuple[datetime, datetime], list[str]] = {}
        for symbol in symbols:
            covered = stored.get(symbol)
            for lo, hi in missing_ranges(start, end, covered):
                if covered is not None and lo < covered.first:
                    continue  # backfilling older history is a data load's job, not daily
                wanted.setdefault((lo, hi), []).append(symbol)
        frames: list[BarFrame] = []
        errors: dict[str, str] = {}
        for (lo, hi), group in wanted.items():
            fetched = self._fetch_many(group, timeframe, lo, hi)
            for symbol in group:
                try:
                    # The loader's retry/back-off and session filter: only the batching
                    # differs from Loader.top_up.
                    bars = fetched.pop(symbol, None)
                    if bars is None:
                        bars, _issues = self.loader.fetch_with_retry(symbol, timeframe, lo, hi)
                    if timeframe in INTRADAY:
                        bars = self.loader.regular_hours(
                            bars, UnitResult(symbol, timeframe, ok=True))
                    if len(bars):
                        frames.append(bars)
                except SYMBOL_ERRORS as exc:
                    errors[symbol] = f"{type(exc).__name__}: {exc}"[:2000]
        if frames:
            with self.pool.connection() as conn:
                write_bars(conn, frames, self.provider.capabilities.name)
        return errors

    def _fetch_many(self, symbols: list[str], timeframe: Timeframe, start: datetime,
                    end: datetime) -> dict[str, BarFrame]:
        """The bars of every symbol a ``BatchFetcher`` provider serves in one go (empty when
        it is not one, or the call fails: the symbols are then fetched one by one, each with
        its own retries and error)."""
        if not isinstance(self.provider, BatchFetcher) or len(symbols) < 2:
            return {}
        try:
            got = self.provider.fetch_bars_many(symbols, timeframe, start, end)
        except SYMBOL_ERRORS as exc:
            log.info("fetching %d symbols at once failed, one by one instead: %s",
                     len(symbols), exc)
            return {}
        return {symbol: result.bars for symbol, result in got.items()}

    def _derived(self, symbols: tuple[str, ...], timeframe: Timeframe, start: datetime,
                 end: datetime) -> dict[str, str]:
        errors: dict[str, str] = {}
        for symbol in symbols:
            result = self.loader.load_unit(symbol, timeframe, start, end)
            if not result.ok:
                errors[symbol] = result.error or "failed"
        return errors
