"""The synthetic provider: a deterministic market for demos, tests and load tests."""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import date, datetime

import numpy as np

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import NotFoundError
from tickstock.market.bars import NS_PER_DAY, NS_PER_MINUTE, BarFrame, datetime_to_ns
from tickstock.market.calendar import MarketCalendar
from tickstock.market.derive import DERIVED_FROM, derive
from tickstock.market.providers.base import (
    Capabilities,
    CorporateAction,
    FetchResult,
    SymbolInfo,
)
from tickstock.market.providers.synthetic.config import SyntheticConfig
from tickstock.market.providers.synthetic.data import (
    Coarse,
    DailyPath,
    coarse,
    daily_path,
    market_factor,
    minute_block,
)

CAPABILITIES = Capabilities(
    name="synthetic",
    timeframes=frozenset(Timeframe),
    max_bars_per_request=None,
    adjusted=True,
    live_feed=False,
    reference_data=True,
    corporate_actions=False,
    market_status=False,
    derived_timeframes=frozenset(DERIVED_FROM),
)
_SYMBOL = re.compile(r"^[A-Z0-9.\-]{1,24}$")
_CACHED_SYMBOLS = 4096  # coarse draws (~5 KB each) of recently asked symbols
_SESSIONS_PER_CHUNK = 128  # bounds the memory of one minute block (128 x 390 x 8 arrays)


class SyntheticProvider:
    """Bars drawn from a seeded model over every session of the calendar; see ``data``."""

    def __init__(self, calendar: MarketCalendar, config: SyntheticConfig | None = None) -> None:
        self._calendar = calendar
        self._config = config or SyntheticConfig()
        days, opens, closes = calendar.session_arrays(calendar.first_day, calendar.last_day)
        self._days, self._opens, self._closes = days, opens, closes
        self._market = market_factor(self._config.seed, len(days))
        self._coarse: OrderedDict[str, Coarse] = OrderedDict()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def fetch_bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> FetchResult:
        self._check(symbol)
        lo, hi = datetime_to_ns(start), datetime_to_ns(end)
        if timeframe is Timeframe.DAY:
            bars = self._daily(symbol, lo, hi)
        elif timeframe is Timeframe.MIN1:
            bars = self._minutes(symbol, lo, hi)
        elif timeframe in (Timeframe.WEEK, Timeframe.MONTH):
            margin = 40 * NS_PER_DAY  # whole weeks/months around the range
            daily = self._daily(symbol, lo - margin, hi + margin)
            bars = derive(daily, timeframe, self._calendar).between(lo, hi)
        else:
            minutes = self._minutes(symbol, lo, hi)
            bars = derive(minutes, timeframe, self._calendar).between(lo, hi)
        return FetchResult(bars)

    def symbols(self) -> list[SymbolInfo]:
        ref = self._config.reference
        names = sorted(self._config.known_symbols or ref)
        return [
            SymbolInfo(s, name=ref[s][0] if s in ref else f"Synthetic {s}",
                       sector=ref[s][1] if s in ref else None,
                       sub_industry=ref[s][2] if s in ref else None, exchange="SYNTH")
            for s in names
        ]

    def corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        return []

    def market_status(self) -> str | None:
        return None

    def close(self) -> None:
        self._coarse.clear()

    # -- internals ---------------------------------------------------------------------------

    def _check(self, symbol: str) -> None:
        known = self._config.known_symbols
        if not _SYMBOL.match(symbol) or (known is not None and symbol not in known):
            raise NotFoundError(f"unknown symbol {symbol!r} in the synthetic market")

    def _path(self, symbol: str, first: int, last: int) -> DailyPath:
        """Sessions ``first .. last - 1`` (calendar positions) of the symbol's daily path."""
        c = self._coarse.get(symbol)
        if c is None:
            c = coarse(self._config.seed, symbol, self._market)
            self._coarse[symbol] = c
            if len(self._coarse) > _CACHED_SYMBOLS:
                self._coarse.popitem(last=False)
        else:
            self._coarse.move_to_end(symbol)
        return daily_path(self._config.seed, symbol, self._market, first, last, c=c)

    def _daily(self, symbol: str, lo: int, hi: int) -> BarFrame:
        a = int(np.searchsorted(self._days, lo, side="left"))
        b = int(np.searchsorted(self._days, hi, side="left"))
        path = self._path(symbol, a, b)
        return BarFrame(
            symbol, Timeframe.DAY, self._days[a:b], path.open, path.high, path.low, path.close,
            path.volume,
        )

    def _minutes(self, symbol: str, lo: int, hi: int) -> BarFrame:
        first = int(np.searchsorted(self._closes, lo, side="right"))
        last = int(np.searchsorted(self._opens, hi, side="left"))
        frames = [BarFrame.empty(symbol, Timeframe.MIN1)]
        for chunk in range(first, last, _SESSIONS_PER_CHUNK):
            stop = min(chunk + _SESSIONS_PER_CHUNK, last)
            counts = (self._closes[chunk:stop] - self._opens[chunk:stop]) // NS_PER_MINUTE
            path = self._path(symbol, chunk, stop)
            block = minute_block(self._config.seed, symbol, chunk, path, counts)
            active = ~np.isnan(block.close)
            ts = self._opens[chunk:stop, None] + np.arange(block.close.shape[1]) * NS_PER_MINUTE
            frames.append(BarFrame(
                symbol, Timeframe.MIN1, ts[active], block.open[active], block.high[active],
                block.low[active], block.close[active], block.volume[active],
            ))
        return BarFrame.concat(frames).between(lo, hi)
