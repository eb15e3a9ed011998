"""The synthetic provider: a deterministic market for demos, tests and load tests."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
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
    BLOCK,
    Coarse,
    DailyPath,
    coarses,
    daily_path,
    daily_paths,
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
#: Symbol-sessions ``fetch_bars_many`` draws at once (12 draws of 8 bytes each: ~48 MB)
_SESSIONS_PER_CALL = 500_000
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

    def fetch_bars_many(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> dict[str, FetchResult]:
        """``fetch_bars`` of each known symbol (unknown ones are left out): daily bars drawn for
        all of them at once (``data.daily_paths``), other timeframes one symbol at a time."""
        known = [s for s in symbols if self._known(s)]
        if timeframe is not Timeframe.DAY:
            return {s: self.fetch_bars(s, timeframe, start, end) for s in known}
        lo, hi = datetime_to_ns(start), datetime_to_ns(end)
        a = int(np.searchsorted(self._days, lo, side="left"))
        b = int(np.searchsorted(self._days, hi, side="left"))
        days = self._days[a:b]
        blocks = max(-(-b // BLOCK) - a // BLOCK, 1)
        step = max(1, _SESSIONS_PER_CALL // (blocks * BLOCK))
        out: dict[str, FetchResult] = {}
        for i in range(0, len(known), step):
            group = known[i:i + step]
            paths = daily_paths(self._config.seed, group, self._market, a, b,
                                drawn=self._coarses(group))
            for symbol, path in zip(group, paths, strict=True):
                out[symbol] = FetchResult(BarFrame(symbol, Timeframe.DAY, days, path.open,
                                                   path.high, path.low, path.close, path.volume))
        return out

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

    def _known(self, symbol: str) -> bool:
        known = self._config.known_symbols
        return bool(_SYMBOL.match(symbol)) and (known is None or symbol in known)

    def _check(self, symbol: str) -> None:
        if not self._known(symbol):
            raise NotFoundError(f"unknown symbol {symbol!r} in the synthetic market")

    def _coarses(self, symbols: Sequence[str]) -> list[Coarse]:
        """The coarse draws of ``symbols``: cached ones, the others drawn together and cached."""
        missing = [s for s in symbols if s not in self._coarse]
        for symbol, c in zip(missing, coarses(self._config.seed, missing, self._market),
                             strict=True):
            self._coarse[symbol] = c
        found = []
        for symbol in symbols:
            self._coarse.move_to_end(symbol)
            found.append(self._coarse[symbol])
        while len(self._coarse) > _CACHED_SYMBOLS:
            self._coarse.popitem(last=False)
        return found

    def _path(self, symbol: str, first: int, last: int) -> DailyPath:
        """Sessions ``first .. last - 1`` (calendar positions) of the symbol's daily path."""
        return daily_path(self._config.seed, symbol, self._market, first, last,
                          c=self._coarses([symbol])[0])

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
