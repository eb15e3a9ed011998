"""Top-up loading: bring symbols x timeframes up to date in PostgreSQL, one unit at a time.

Used by the data-load jobs, the daily run's import phase and the CLI. For each (symbol,
timeframe), in this order:

1. cap the range at what is complete (``complete_until``): no bar of a session, week or month
   that has not closed yet
2. read what is stored (first/last bar) and fetch only the missing ranges before and after it
3. retry provider hiccups (timeouts, 5xx, 429) with back-off on the given clock; an auth
   failure stops the whole load (every further call would fail the same way)
4. drop intraday bars outside regular sessions (providers also send extended hours)
5. write every fetched bar of the unit in one transaction (binary COPY + upsert), so a unit is
   stored entirely or not at all; ``top_up`` writes several units per transaction (batches of
   ``batch_bars``) and fetches the next symbol while it writes
6. report the unit: ok with bars written and rows refused, or failed with the reason

A timeframe the provider cannot serve but that derives from a stored lower one (5min, 15min,
hour from 1min; week, month from day) is derived from the stored bars (``derive_stored``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.clock import Clock
from tickstock.core.errors import (
    DataValidationError,
    NotFoundError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderTemporaryError,
    StoreError,
)
from tickstock.market.bars import (
    INTRADAY,
    NS_PER_DAY,
    NS_PER_MINUTE,
    BarFrame,
    RowIssue,
    datetime_to_ns,
)
from tickstock.market.calendar import MarketCalendar
from tickstock.market.derive import DERIVED_FROM, derive
from tickstock.market.ingest_batch import AUTH_PREFIX as _AUTH_PREFIX
from tickstock.market.ingest_batch import BatchWriter, Fetched
from tickstock.market.providers.base import Provider
from tickstock.store import bars as bar_store

log = logging.getLogger(__name__)

_ONE_US = timedelta(microseconds=1)


@dataclass
class UnitResult:
    """The outcome of one (symbol, timeframe)."""

    symbol: str
    timeframe: Timeframe
    ok: bool
    written: int = 0  # bars inserted or changed
    fetched: int = 0  # bars the provider returned and validation kept
    issues: list[RowIssue] = field(default_factory=list)
    error: str | None = None
    ranges: list[tuple[datetime, datetime]] = field(default_factory=list)  # what was fetched


@dataclass
class LoadSummary:
    results: list[UnitResult] = field(default_factory=list)
    cancelled: bool = False

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if not r.ok]

    @property
    def written(self) -> int:
        return sum(r.written for r in self.results)

    @property
    def issues(self) -> list[RowIssue]:
        return [issue for r in self.results for issue in r.issues]


@dataclass(frozen=True)
class LoadOptions:
    """How hard to try. ``attempts`` counts calls per range (1 = no retry)."""

    attempts: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    derive_missing: bool = True
    #: Bars written per transaction by ``top_up`` (a commit per symbol would cost more than
    #: the COPY of a daily history).
    batch_bars: int = 100_000
    #: ... or once the first unit of a batch has waited this long (progress reports follow
    #: the commits).
    batch_seconds: float = 2.0


def complete_until(calendar: MarketCalendar, timeframe: Timeframe, now: datetime) -> datetime:
    """The end (exclusive) of the bars of ``timeframe`` that are complete at ``now``."""
    last = calendar.last_complete_session(now)
    if timeframe in INTRADAY:
        live = calendar.session_at(now)
        if live is None:
            return last.close
        # bars that ended: whole minutes since the open, floored to the bar size
        minutes = {Timeframe.MIN1: 1, Timeframe.MIN5: 5, Timeframe.MIN15: 15,
                   Timeframe.HOUR: 60}[timeframe]
        elapsed = int((now - live.open).total_seconds() // 60) // minutes * minutes
        return live.open + timedelta(minutes=elapsed)
    if timeframe is Timeframe.DAY:
        return _midnight(last.day + timedelta(days=1))
    # a week / month is complete when the next session is in a later week / month
    following = calendar.next_session(last.day).day
    period_of = _week_start if timeframe is Timeframe.WEEK else _month_start
    if period_of(following) != period_of(last.day):
        return _midnight(period_of(following))
    return _midnight(period_of(last.day))


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def missing_ranges(
    start: datetime, end: datetime, stored: bar_store.Coverage | None
) -> list[tuple[datetime, datetime]]:
    """Parts of ``[start, end)`` before the first and after the last stored bar."""
    if start >= end:
        return []
    if stored is None:
        return [(start, end)]
    ranges = []
    if start < stored.first:
        ranges.append((start, min(stored.first, end)))
    after = stored.last + _ONE_US
    if after < end:
        ranges.append((max(after, start), end))
    return ranges


class Loader:
    """Top-up loads from one provider into the ``bars`` table."""

    def __init__(
        self,
        pool: ConnectionPool,
        provider: Provider,
        calendar: MarketCalendar,
        clock: Clock,
        options: LoadOptions | None = None,
    ) -> None:
        self.pool = pool
        self.provider = provider
        self.calendar = calendar
        self.clock = clock
        self.options = options or LoadOptions()

    def top_up(
        self,
        symbols: Sequence[str],
        timeframes: Sequence[Timeframe],
        start: datetime,
        end: datetime,
        *,
        on_result: Callable[[UnitResult], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> LoadSummary:
        """Top up every (symbol, timeframe), symbol by symbol; see the module docstring.

        The next symbol is fetched (a thread, one ahead) while this one is written, and units
        are written in batches of ``options.batch_bars`` (one transaction each, all or nothing):
        a unit is reported once its batch is committed. Raises ProviderAuthError (after
        reporting the unit and writing what was fetched) when the provider refuses the key.
        """
        summary = LoadSummary()
        writer = BatchWriter(self, summary, on_result)
        stored = self._coverage(symbols, timeframes)
        remaining = iter(symbols)
        queue: deque[Future[list[Fetched]]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-fetch") as executor:

            def ahead(depth: int) -> None:
                while len(queue) < depth:
                    symbol = next(remaining, None)
                    if symbol is None:
                        return
                    queue.append(executor.submit(self._fetch_symbol, symbol, timeframes,
                                                 start, end, stored))

            ahead(2)
            try:
                while queue:
                    if cancelled is not None and cancelled():
                        summary.cancelled = True
                        break
                    fetched = queue.popleft().result()
                    writer.seen(fetched)
                    ahead(writer.lookahead())
                    for unit in fetched:
                        writer.add(unit)
            finally:
                for future in queue:
                    future.cancel()
                writer.flush()
        return summary

    def _coverage(self, symbols: Sequence[str], timeframes: Sequence[Timeframe]
                  ) -> dict[tuple[str, Timeframe], bar_store.Coverage]:
        """What is stored of every unit, a few queries in all (a round trip per symbol would
        cost more than its daily history's COPY)."""
        stored: dict[tuple[str, Timeframe], bar_store.Coverage] = {}
        with self.pool.connection() as conn:
            for timeframe in timeframes:
                for i in range(0, len(symbols), 1000):
                    found = bar_store.coverage(conn, timeframe, symbols[i:i + 1000])
                    stored.update({(s, timeframe): c for s, c in found.items()})
        return stored

    def _fetch_symbol(self, symbol: str, timeframes: Sequence[Timeframe], start: datetime,
                      end: datetime, stored: dict[tuple[str, Timeframe], bar_store.Coverage]
                      ) -> list[Fetched]:
        """Every timeframe of ``symbol`` fetched (not written); failures inside the units."""
        units = []
        for timeframe in timeframes:
            unit = Fetched(UnitResult(symbol, timeframe, ok=False), start, end)
            if timeframe not in self.provider.capabilities.timeframes:
                unit.derive = True  # from stored bars, once everything before is written
            else:
                try:
                    unit.frames = self._fetch(unit.result, start, end,
                                              stored.get((symbol, timeframe)))
                except ProviderAuthError as exc:
                    unit.result.error = _AUTH_PREFIX + str(exc)
                except (ProviderError, NotFoundError, DataValidationError, StoreError) as exc:
                    unit.result.error = f"{type(exc).__name__}: {exc}"
            units.append(unit)
        return units

    def load_unit(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> UnitResult:
        """Top up one (symbol, timeframe); never raises for a per-unit failure."""
        result = UnitResult(symbol, timeframe, ok=False)
        try:
            if timeframe not in self.provider.capabilities.timeframes:
                if not self.options.derive_missing or timeframe not in DERIVED_FROM:
                    raise NotFoundError(f"{self.provider.capabilities.name} has no "
                                        f"{timeframe.value} bars and they cannot be derived")
                result.written = self.derive_stored(symbol, timeframe, start, end)
                result.ok = True
                return result
            self._fetch_and_store(result, start, end)
            result.ok = True
        except ProviderAuthError as exc:
            result.error = _AUTH_PREFIX + str(exc)
        except (ProviderError, NotFoundError, DataValidationError, StoreError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        if not result.ok:
            log.warning("load of %s %s failed: %s", symbol, timeframe.value, result.error)
        return result

    def _fetch_and_store(self, result: UnitResult, start: datetime, end: datetime) -> None:
        with self.pool.connection() as conn:
            stored = bar_store.coverage(conn, result.timeframe, [result.symbol])
        frames = self._fetch(result, start, end, stored.get(result.symbol))
        if frames:
            with self.pool.connection() as conn:
                written = bar_store.write_bars(conn, frames, self.provider.capabilities.name)
            result.written = written.written

    def _fetch(self, result: UnitResult, start: datetime, end: datetime,
               stored: bar_store.Coverage | None) -> list[BarFrame]:
        """The bars of the unit missing around ``stored`` (steps 1-4 of the module docstring)."""
        symbol, timeframe = result.symbol, result.timeframe
        end = min(end, complete_until(self.calendar, timeframe, self.clock.now()))
        frames: list[BarFrame] = []
        for lo, hi in missing_ranges(start, end, stored):
            bars, issues = self.fetch_with_retry(symbol, timeframe, lo, hi)
            result.issues.extend(issues)
            if timeframe in INTRADAY:
                bars = self.regular_hours(bars, result)
            frames.append(bars)
            result.ranges.append((lo, hi))
            result.fetched += len(bars)
        return frames

    def fetch_with_retry(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> tuple[BarFrame, tuple[RowIssue, ...]]:
        """The provider's bars of ``[start, end)`` and their row issues, a temporary failure
        retried with back-off (a rate limit's Retry-After honoured) up to ``options.attempts``."""
        delay = self.options.backoff_s
        for attempt in range(1, self.options.attempts + 1):
            try:
                got = self.provider.fetch_bars(symbol, timeframe, start, end)
                return got.bars, got.issues
            except ProviderTemporaryError as exc:
                if attempt == self.options.attempts:
                    raise
                wait = delay
                if isinstance(exc, ProviderRateLimitedError) and exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
                log.info("retrying %s %s in %.1fs (attempt %d): %s", symbol, timeframe.value,
                         wait, attempt, exc)
                self.clock.sleep(min(wait, self.options.max_backoff_s))
                delay = min(delay * 2, self.options.max_backoff_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def regular_hours(self, bars: BarFrame, result: UnitResult) -> BarFrame:
        """Intraday ``bars`` inside regular sessions; what was dropped noted on ``result``."""
        kept, issue = regular_session(self.calendar, bars)
        if issue is not None:
            result.issues.append(issue)
        return kept

    def derive_stored(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> int:
        """Derive ``timeframe`` bars over ``[start, end)`` from stored lower bars; store them."""
        base_tf = DERIVED_FROM[timeframe]
        end = min(end, complete_until(self.calendar, timeframe, self.clock.now()))
        margin = timedelta(days=40) if base_tf is Timeframe.DAY else timedelta(days=1)
        with self.pool.connection() as conn:
            stored = bar_store.bars_between(conn, symbol, base_tf, start - margin, end + margin)
        base = BarFrame(symbol, base_tf, stored.ts, stored.open, stored.high, stored.low,
                        stored.close, stored.volume, stored.vwap, stored.trades)
        if len(base) == 0:
            return 0
        # a bucket is complete once its last session has closed AND its base bars are stored
        base_end = int(base.ts[-1]) + (NS_PER_MINUTE if base_tf in INTRADAY else NS_PER_DAY)
        limit = min(datetime_to_ns(self.clock.now()), base_end)
        derived = derive(base, timeframe, self.calendar, complete_before=limit)
        derived = derived.between(datetime_to_ns(start), datetime_to_ns(end))
        with self.pool.connection() as conn:
            return bar_store.write_bars(conn, [derived], f"derived:{base_tf.value}").written


def regular_session(calendar: MarketCalendar, bars: BarFrame) -> tuple[BarFrame, RowIssue | None]:
    """Intraday ``bars`` inside regular sessions, and an issue counting those dropped (sources
    also carry pre-/after-market bars, which no analysis here expects)."""
    if len(bars) == 0:
        return bars, None
    first = _date_of(int(bars.ts[0])) - timedelta(days=1)
    last = _date_of(int(bars.ts[-1])) + timedelta(days=1)
    _, opens, closes = calendar.session_arrays(first, last)
    idx = np.searchsorted(opens, bars.ts, side="right") - 1
    inside = (idx >= 0) & (bars.ts < closes[np.clip(idx, 0, None)])
    dropped = int((~inside).sum())
    issue = None if not dropped else RowIssue(
        bars.symbol, f"{dropped} bars outside regular sessions not stored", bars.timeframe.value)
    return bars.take(inside), issue


def _date_of(ns: int) -> date:
    return date(1970, 1, 1) + timedelta(days=ns // 86_400_000_000_000)
