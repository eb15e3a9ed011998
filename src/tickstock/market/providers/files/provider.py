"""The files provider: bars from CSV files on disk (one per symbol), plain or gzip."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import ConfigurationError, NotFoundError
from tickstock.market.bars import datetime_to_ns
from tickstock.market.calendar import MarketCalendar
from tickstock.market.derive import DERIVED_FROM, derive
from tickstock.market.providers.base import (
    Capabilities,
    CorporateAction,
    FetchResult,
    SymbolInfo,
)
from tickstock.market.providers.files.config import FilesConfig
from tickstock.market.providers.files.data import parse_file
from tickstock.market.validate import validate

CAPABILITIES = Capabilities(
    name="files",
    timeframes=frozenset(Timeframe),  # whatever the files hold, plus what derives from it
    max_bars_per_request=None,
    adjusted=False,
    live_feed=False,
    reference_data=False,
    corporate_actions=False,
    market_status=False,
    derived_timeframes=frozenset(DERIVED_FROM),
)
_SUFFIXES = (".csv.gz", ".csv", ".CSV.gz", ".CSV")


class FilesProvider:
    """Reads ``<directory>/<SYMBOL>.csv[.gz]``; derives week/month/5min/15min/hour if asked."""

    def __init__(self, calendar: MarketCalendar, config: FilesConfig) -> None:
        if not config.directory.is_dir():
            raise ConfigurationError(
                f"TICKSTOCK_FILES_DIR {config.directory} is not a directory")
        self._calendar = calendar
        self._dir = config.directory

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def path_of(self, symbol: str) -> Path:
        for suffix in _SUFFIXES:
            candidate = self._dir / f"{symbol}{suffix}"
            if candidate.is_file():
                return candidate
        raise NotFoundError(f"unknown symbol {symbol}: no {symbol}.csv[.gz] in {self._dir}")

    def fetch_bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> FetchResult:
        path = self.path_of(symbol)
        parsed = parse_file(path, symbol=symbol)
        frame, rows = parsed.frames[symbol]
        bars, issues = validate(frame, rows)
        if parsed.timeframe is not timeframe:
            if DERIVED_FROM.get(timeframe) is not parsed.timeframe:
                raise NotFoundError(
                    f"{path} holds {parsed.timeframe.value} bars; {timeframe.value} bars of "
                    f"{symbol} cannot be made from them")
            bars = derive(bars, timeframe, self._calendar)
        return FetchResult(
            bars.between(datetime_to_ns(start), datetime_to_ns(end)),
            tuple(parsed.issues) + tuple(issues),
        )

    def symbols(self) -> list[SymbolInfo]:
        names: set[str] = set()
        for path in self._dir.iterdir():
            for suffix in _SUFFIXES:
                if path.name.endswith(suffix):
                    names.add(path.name[: -len(suffix)].upper())
        return [SymbolInfo(name) for name in sorted(names)]

    def corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        return []

    def market_status(self) -> str | None:
        return None

    def close(self) -> None:
        return None
