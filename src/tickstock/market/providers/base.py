"""What every market-data provider is: one Protocol, capabilities declared as data.

Callers never branch on a provider's type; they read ``capabilities`` (which timeframes it
serves, how many bars one request returns, whether prices are split-adjusted, whether it has
reference data or a live feed) and call the same methods. Errors are those of
``tickstock.core.errors``: ``ProviderTemporaryError`` / ``ProviderRateLimitedError`` (retry with
back-off), ``ProviderAuthError`` (fatal), ``NotFoundError`` (unknown symbol),
``DataValidationError`` (the source itself is unreadable: wrong layout, truncated file).
Row-level flaws do not raise: they come back as ``RowIssue``s beside the good bars.

Every provider package has the same files:

    __init__.py   exports the provider class and its CAPABILITIES
    config.py     a frozen dataclass of the provider's settings
    data.py       the provider's raw data (JSON pages, CSV rows, random draws) into BarFrames
    provider.py   the class implementing ``Provider``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import BarFrame, RowIssue


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, declared as data."""

    name: str
    timeframes: frozenset[Timeframe]
    max_bars_per_request: int | None  # None: no per-request limit (files, synthetic)
    adjusted: bool  # prices adjusted for splits
    live_feed: bool
    reference_data: bool  # names, exchanges, sectors of symbols
    corporate_actions: bool  # splits and dividends
    market_status: bool  # the provider can say whether the market is open
    requests_per_minute: int | None = None  # None: unlimited
    #: Timeframes the provider returns only by aggregating a lower one it serves.
    derived_timeframes: frozenset[Timeframe] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Bars of one symbol/timeframe over a range, and the rows refused on the way."""

    bars: BarFrame
    issues: tuple[RowIssue, ...] = ()
    requests: int = 1  # round trips it took (pages), for metrics


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """Reference data of one symbol, as the ``symbols`` table stores it."""

    symbol: str
    name: str | None = None
    exchange: str | None = None
    asset_type: str = "stock"
    sector: str | None = None
    sub_industry: str | None = None
    currency: str = "USD"
    cik: str | None = None
    active: bool = True
    listed_on: date | None = None


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """A split (``ratio`` = to / from) or a cash dividend (``amount`` per share)."""

    symbol: str
    kind: str  # 'split' | 'dividend'
    ex_date: date
    ratio: float | None = None
    amount: float | None = None


@runtime_checkable
class Provider(Protocol):
    """A source of bars and reference data. Ranges are half-open ``[start, end)``, aware UTC."""

    @property
    def capabilities(self) -> Capabilities: ...

    def fetch_bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> FetchResult:
        """Bars of ``symbol`` with ``start <= ts < end``, oldest first, validated.

        Raises NotFoundError for an unknown symbol, DataValidationError for an unreadable
        source, ProviderTemporaryError/ProviderAuthError for the provider's own failures.
        """
        ...

    def symbols(self) -> list[SymbolInfo]:
        """Every symbol the provider knows (may be empty when it has no reference data)."""
        ...

    def corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        """Splits and dividends with ``start <= ex_date < end`` (empty when not supported)."""
        ...

    def market_status(self) -> str | None:
        """The provider's own word on the market now, or None (then ask the calendar)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class BatchFetcher(Protocol):
    """A provider that serves many symbols' bars in one go (one request, or one computation):
    what a daily top-up of a whole universe for one session asks for."""

    def fetch_bars_many(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> dict[str, FetchResult]:
        """``fetch_bars`` of each symbol it knows; a symbol left out is one to fetch alone
        (which names the error)."""
        ...
