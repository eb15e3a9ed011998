"""No holes in the stored minutes: find each symbol's gap after a (re)connect and fill it.

When the feed (re)connects, every symbol is marked "to check". Its first minute after that is
compared with the minute expected next (the one after its last processed minute, or the session
open when it has none today). If minutes are missing, the gap ``[expected, first)`` is fetched
from the REST provider, and the symbol's live minutes wait ("held") until the repair is done, so
the processor still sees every symbol's minutes in order. A symbol that sends nothing after a
reconnect is swept at the end of the session (``sweep``) up to the close.

Repairs retry temporary provider errors with back-off; after ``attempts`` failures the held
minutes are released and the hole is reported (log, metric, ``service.error``), never hidden.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import ns_to_datetime
from tickstock.market.providers.base import Provider
from tickstock.pipeline.stream.bars import MINUTE, LiveBar
from tickstock.pipeline.stream.sessions import SessionLookup

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gap:
    """Minutes ``[start, end)`` of ``symbol`` that must come from REST."""

    symbol: str
    start: datetime
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start) / MINUTE)


@dataclass
class _Pending:
    gap: Gap
    held: list[LiveBar] = field(default_factory=list)


class GapTracker:
    """Decides, minute by minute, whether a symbol's bar can go on or must wait for a repair.

    Lives on the event loop (single-threaded); ``last`` follows what has been handed on.
    """

    def __init__(self, sessions: SessionLookup) -> None:
        self.sessions = sessions
        self.last: dict[str, datetime] = {}
        self._check: set[str] = set()
        self._pending: dict[str, _Pending] = {}

    @property
    def holding(self) -> set[str]:
        return set(self._pending)

    @property
    def held(self) -> int:
        return sum(len(p.held) for p in self._pending.values())

    def seed(self, last: dict[str, datetime]) -> None:
        """The last stored minute of each symbol (warm-up)."""
        self.last.update(last)

    def reconnected(self, symbols: Iterable[str]) -> None:
        """A connection (re)starts: any minute of these symbols may have been missed."""
        self._check.update(symbols)

    def admit(self, bars: Iterable[LiveBar]) -> tuple[list[LiveBar], list[Gap]]:
        """Split incoming minutes into those to process now and the new gaps to repair."""
        ready: list[LiveBar] = []
        gaps: list[Gap] = []
        for bar in bars:
            pending = self._pending.get(bar.symbol)
            if pending is not None:
                pending.held.append(bar)
                continue
            if bar.symbol in self._check:
                self._check.discard(bar.symbol)
                gap = self._gap_before(bar)
                if gap is not None:
                    self._pending[bar.symbol] = _Pending(gap, [bar])
                    gaps.append(gap)
                    continue
            last = self.last.get(bar.symbol)
            if last is None or bar.start > last:
                self.last[bar.symbol] = bar.start
            ready.append(bar)
        return ready, gaps

    def repaired(self, gap: Gap, bars: list[LiveBar]) -> list[LiveBar]:
        """The repair of ``gap`` is done (``bars`` may be empty if it failed): return the
        repaired minutes followed by the held ones, in order, to process now."""
        pending = self._pending.pop(gap.symbol)
        inside = [b for b in bars if gap.start <= b.start < gap.end]
        out = sorted(inside, key=lambda b: b.start) + pending.held
        if out:
            self.last[gap.symbol] = max(self.last.get(gap.symbol, out[-1].start), out[-1].start)
        return out

    def sweep(self, until: datetime) -> list[Gap]:
        """Gaps up to ``until`` (a session close) of symbols still unchecked since a reconnect."""
        gaps = []
        for symbol in sorted(self._check):
            if symbol in self._pending:
                continue
            expected = self._expected(symbol, until - MINUTE)
            if expected is not None and expected < until:
                gap = Gap(symbol, expected, until)
                self._pending[symbol] = _Pending(gap)
                gaps.append(gap)
        self._check.clear()
        return gaps

    def _gap_before(self, bar: LiveBar) -> Gap | None:
        expected = self._expected(bar.symbol, bar.start)
        if expected is None or expected >= bar.start:
            return None
        return Gap(bar.symbol, expected, bar.start)

    def _expected(self, symbol: str, at: datetime) -> datetime | None:
        """The minute that should follow the symbol's last one, in the session of ``at``."""
        session = self.sessions.session_of(at)
        if session is None:
            return None
        last = self.last.get(symbol)
        if last is None or last < session.open:
            return session.open
        return last + MINUTE


def fetch_minutes(provider: Provider, gap: Gap) -> list[LiveBar]:
    """The 1-minute bars of ``gap`` from ``provider`` (blocking: run it in a thread)."""
    result = provider.fetch_bars(gap.symbol, Timeframe.MIN1, gap.start, gap.end)
    frame = result.bars
    bars = []
    for i in range(len(frame)):
        start = ns_to_datetime(int(frame.ts[i]))
        vwap = float(frame.vwap[i])
        trades = int(frame.trades[i])
        bars.append(LiveBar(
            gap.symbol, Timeframe.MIN1, start, start + timedelta(minutes=1),
            float(frame.open[i]), float(frame.high[i]), float(frame.low[i]),
            float(frame.close[i]), float(frame.volume[i]),
            None if math.isnan(vwap) else vwap, None if trades < 0 else trades,
        ))
    return bars
