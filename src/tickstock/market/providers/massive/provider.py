"""Massive (formerly Polygon.io) REST through the official ``massive`` client.

The client pages by itself (``next_url``) and retries 429/5xx with urllib3's back-off,
honouring Retry-After. What it does not do is say which HTTP status failed: a non-200 becomes
``BadResponse(body)``. So the client's connection pool is wrapped to remember the last status
of the calling thread, and failures are mapped onto the error tree:

    401 / 403                    -> ProviderAuthError (fatal: fix MASSIVE_API_KEY)
    429 after the client retries -> ProviderRateLimitedError (retry later)
    5xx, timeouts, resets        -> ProviderTemporaryError (retry with back-off)
    404                          -> NotFoundError (unknown symbol)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import urllib3

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import (
    NotFoundError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderTemporaryError,
)
from tickstock.market.bars import datetime_to_ns
from tickstock.market.calendar import MarketCalendar
from tickstock.market.providers.base import (
    Capabilities,
    CorporateAction,
    FetchResult,
    SymbolInfo,
)
from tickstock.market.providers.massive.config import MassiveConfig
from tickstock.market.providers.massive.data import TIMESPANS, aggs_to_frame
from tickstock.market.validate import validate

CAPABILITIES = Capabilities(
    name="massive",
    timeframes=frozenset(TIMESPANS),
    max_bars_per_request=50_000,
    adjusted=True,
    live_feed=True,
    reference_data=True,
    corporate_actions=True,
    market_status=True,
)


#: Sessions ``fetch_bars_many`` asks the grouped daily endpoint for (one request each): a
#: longer range is cheaper per symbol (one paged request covers years).
GROUPED_SESSIONS = 5
#: Seconds a grouped daily answer is reused (the batches of one run, not the next evening's)
GROUPED_KEEP_S = 600.0


class _StatusRecordingPool:
    """Delegates to the client's urllib3 pool and remembers each thread's last response."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._local = threading.local()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self._local.status = None
        response = self._inner.request(method, url, **kwargs)
        self._local.status = response.status
        self._local.retry_after = response.headers.get("Retry-After")
        return response

    def last(self) -> tuple[int | None, str | None]:
        return getattr(self._local, "status", None), getattr(self._local, "retry_after", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class MassiveProvider:
    """Bars, reference tickers, splits, dividends and market status from Massive REST."""

    def __init__(self, calendar: MarketCalendar, config: MassiveConfig) -> None:
        from massive import RESTClient  # the official client (urllib3); imported on first use

        self._calendar = calendar
        self._config = config
        self._client = RESTClient(
            api_key=config.api_key, base=config.base_url.rstrip("/"), retries=config.retries,
            connect_timeout=config.connect_timeout_s, read_timeout=config.read_timeout_s,
            pagination=True,
        )
        self._pool = _StatusRecordingPool(self._client.client)
        self._client.client = self._pool
        self._grouped: dict[date, tuple[float, dict[str, Any]]] = {}
        self._grouped_lock = threading.Lock()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def fetch_bars(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> FetchResult:
        multiplier, timespan = TIMESPANS[timeframe]
        # the endpoint's range is inclusive on both ends, in ms; ours is [start, end)
        lo, hi = datetime_to_ns(start), datetime_to_ns(end)
        pages = self._call(symbol, lambda: list(self._client.list_aggs(
            symbol, multiplier, timespan, lo // 1_000_000, hi // 1_000_000 - 1,
            adjusted=self._config.adjusted, sort="asc", limit=self._config.page_limit,
        )))
        frame, issues = validate(aggs_to_frame(symbol, timeframe, pages))
        return FetchResult(frame.between(lo, hi), tuple(issues),
                           requests=max(1, -(-len(pages) // self._config.page_limit)))

    def fetch_bars_many(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> dict[str, FetchResult]:
        """Daily bars of up to ``GROUPED_SESSIONS`` sessions for many symbols from the grouped
        daily endpoint: one request a session for the whole market instead of one a symbol
        (a nightly top-up of thousands of symbols in a few requests, whatever the plan's rate
        limit). A symbol absent from every session's answer is left out (fetched alone, which
        says whether it is unknown); other timeframes and longer ranges leave every symbol out."""
        lo, hi = datetime_to_ns(start), datetime_to_ns(end)
        if timeframe is not Timeframe.DAY or hi <= lo:
            return {}
        days = self._calendar.session_days(start.date(), (end - timedelta(microseconds=1)).date())
        if not days or len(days) > GROUPED_SESSIONS:
            return {}
        market = [self._grouped_day(day) for day in days]
        out: dict[str, FetchResult] = {}
        for symbol in symbols:
            aggs = [by_ticker[symbol] for by_ticker in market if symbol in by_ticker]
            if aggs:
                frame, issues = validate(aggs_to_frame(symbol, timeframe, aggs))
                out[symbol] = FetchResult(frame.between(lo, hi), tuple(issues), requests=0)
        return out

    def _grouped_day(self, day: date) -> dict[str, Any]:
        """The whole market's daily bars of ``day`` by ticker, kept ``GROUPED_KEEP_S`` seconds:
        the batches of one daily run share one request a session."""
        now = time.monotonic()
        with self._grouped_lock:
            kept = self._grouped.get(day)
            if kept is not None and now - kept[0] < GROUPED_KEEP_S:
                return kept[1]
        aggs = self._call(f"grouped daily bars of {day}", lambda: list(
            self._client.get_grouped_daily_aggs(day.isoformat(), adjusted=self._config.adjusted)))
        by_ticker = {agg.ticker: agg for agg in aggs if agg.ticker}
        with self._grouped_lock:
            self._grouped[day] = (now, by_ticker)
            for old in [d for d, (at, _) in self._grouped.items() if now - at >= GROUPED_KEEP_S]:
                del self._grouped[old]
        return by_ticker

    def symbols(self) -> list[SymbolInfo]:
        tickers = self._call("reference tickers", lambda: list(self._client.list_tickers(
            market="stocks", active=True, limit=1000)))
        return [
            SymbolInfo(
                t.ticker, name=t.name, exchange=t.primary_exchange, asset_type=_ASSET.get(
                    t.type or "", "stock"), currency=(t.currency_name or "usd").upper(),
                cik=t.cik, active=bool(t.active) if t.active is not None else True,
            )
            for t in tickers if t.ticker
        ]

    def corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        splits = self._call(symbol, lambda: list(self._client.list_splits(
            ticker=symbol, execution_date_gte=start.isoformat(),
            execution_date_lt=end.isoformat(), limit=1000)))
        dividends = self._call(symbol, lambda: list(self._client.list_dividends(
            ticker=symbol, ex_dividend_date_gte=start.isoformat(),
            ex_dividend_date_lt=end.isoformat(), limit=1000)))
        actions = [
            CorporateAction(symbol, "split", date.fromisoformat(s.execution_date),
                            ratio=s.split_to / s.split_from)
            for s in splits if s.execution_date and s.split_from and s.split_to
        ]
        actions += [
            CorporateAction(symbol, "dividend", date.fromisoformat(d.ex_dividend_date),
                            amount=d.cash_amount)
            for d in dividends if d.ex_dividend_date and d.cash_amount is not None
        ]
        return sorted(actions, key=lambda a: (a.ex_date, a.kind))

    def market_status(self) -> str | None:
        """The provider's word on the market right now ("open", "closed", "extended-hours")."""
        status = self._call("market status", self._client.get_market_status)
        market = getattr(status, "market", None)
        return str(market) if market is not None else None

    def close(self) -> None:
        self._pool.clear()

    def _call(self, what: str, call: Any) -> Any:
        from massive.exceptions import AuthError, BadResponse

        try:
            return call()
        except AuthError as exc:
            raise ProviderAuthError(f"Massive: no API key ({exc}); set MASSIVE_API_KEY") from None
        except BadResponse as exc:
            status, retry_after = self._pool.last()
            raise _for_status(what, status, retry_after, str(exc)) from None
        except urllib3.exceptions.MaxRetryError as exc:
            text = str(exc.reason)
            if "429" in text:
                raise ProviderRateLimitedError(
                    f"Massive rate limit for {what}: still 429 after "
                    f"{self._config.retries} retries") from None
            raise ProviderTemporaryError(f"Massive request for {what} failed: {text}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ProviderTemporaryError(f"Massive request for {what} failed: {exc}") from None


_ASSET = {"CS": "stock", "ETF": "etf", "ETN": "etf", "ADRC": "adr", "PFD": "preferred",
          "FUND": "fund", "INDEX": "index"}


def _for_status(what: str, status: int | None, retry_after: str | None, body: str) -> Exception:
    detail = body.strip()[:300]
    if status in (401, 403):
        return ProviderAuthError(
            f"Massive refused the API key (HTTP {status}) for {what}: {detail}. "
            "Check MASSIVE_API_KEY and the plan's entitlements")
    if status == 404:
        return NotFoundError(f"Massive does not know {what} (HTTP 404)")
    if status == 429:
        after = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ProviderRateLimitedError(f"Massive rate limit for {what} (HTTP 429)", after)
    if status is not None and status >= 500:
        return ProviderTemporaryError(f"Massive server error {status} for {what}: {detail}")
    return ProviderError(f"Massive answered HTTP {status} for {what}: {detail}")
