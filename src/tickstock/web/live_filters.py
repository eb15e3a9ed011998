"""What one browser wants from the live feed: topics and filters, checked per event.

A topic is the first part of an event type (``job``, ``run``, ``pattern``, ``schedule``,
``service``, ``command``, ``bar``, ``indicator``). Topics that expose operations (jobs, runs,
schedule, services, commands) are for admins only; the rest is market data any user may see.
Filters narrow events by the fields they carry; a filter an event lacks does not exclude it,
except that symbol/universe filters only let through events that name a matching symbol.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tickstock.contracts.common import Symbol, Timeframe, UniverseName

Topic = Literal["job", "run", "schedule", "service", "command", "pattern", "bar", "indicator"]
ADMIN_TOPICS: frozenset[str] = frozenset({"job", "run", "schedule", "service", "command"})
MARKET_TOPICS: frozenset[str] = frozenset({"pattern", "bar", "indicator"})
MAX_SYMBOLS = 5000


class Filters(BaseModel):
    """Per-client narrowing of events; every field optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[Symbol, ...] = Field(default=(), max_length=MAX_SYMBOLS)
    universe: UniverseName | None = None
    patterns: tuple[Annotated[str, Field(max_length=128)], ...] = Field(default=(), max_length=200)
    direction: Literal["bullish", "bearish", "neutral"] | None = None
    timeframes: tuple[Timeframe, ...] = ()
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    correlation_id: Annotated[str, Field(max_length=128)] | None = None


class Subscribe(BaseModel):
    """The message a browser sends first (and again to change its subscription)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    op: Literal["subscribe"] = "subscribe"
    topics: tuple[Topic, ...] = Field(default=(), max_length=8)
    filters: Filters = Filters()
    last_id: Annotated[str, Field(pattern=r"^\d{1,20}-\d{1,20}$")] | None = None


class Matcher:
    """A subscription compiled for fast per-event checks; ``universe_symbols`` resolved once."""

    def __init__(self, sub: Subscribe, universe_symbols: frozenset[str] | None) -> None:
        self.topics = frozenset(sub.topics)
        f = sub.filters
        symbols = set(f.symbols)
        if universe_symbols is not None:
            symbols = symbols & universe_symbols if symbols else set(universe_symbols)
        self.symbols: frozenset[str] | None = (
            frozenset(symbols) if (f.symbols or universe_symbols is not None) else None
        )
        self.patterns = frozenset(f.patterns)
        self.direction = f.direction
        self.timeframes = frozenset(t.value for t in f.timeframes)
        self.min_confidence = f.min_confidence
        self.correlation_id = f.correlation_id

    def matches(self, topic: str, correlation_id: str | None, data: dict[str, Any]) -> bool:
        if topic not in self.topics:
            return False
        if self.correlation_id is not None and correlation_id != self.correlation_id:
            return False
        if topic in ADMIN_TOPICS:
            return True
        return self._market_matches(data)

    def _market_matches(self, data: dict[str, Any]) -> bool:
        if self.symbols is not None and data.get("symbol") not in self.symbols:
            return False
        if self.timeframes and data.get("timeframe") not in self.timeframes:
            return False
        if "pattern" in data:
            if self.patterns and data["pattern"] not in self.patterns:
                return False
            if self.direction is not None and data.get("direction") != self.direction:
                return False
            if float(data.get("confidence", 0.0)) < self.min_confidence:
                return False
        return True


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """Order of Redis stream ids (``<ms>-<seq>``)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
