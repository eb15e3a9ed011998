"""Batches of ``Loader.top_up``: fetched units wait here and are written several per
transaction (a commit per symbol would cost more than the COPY of its daily history), then
reported in the order they were added, each once its batch is committed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from tickstock.core.errors import ProviderAuthError, StoreError
from tickstock.market.bars import BarFrame
from tickstock.store import bars as bar_store

if TYPE_CHECKING:
    from tickstock.market.ingest import Loader, LoadSummary, UnitResult

log = logging.getLogger(__name__)

#: Marks a unit's error as the provider refusing the key (the load stops).
AUTH_PREFIX = "ProviderAuthError: "


@dataclass
class Fetched:
    """A unit fetched by ``Loader.top_up``, waiting to be written and reported."""

    result: UnitResult
    start: datetime
    end: datetime
    frames: list[BarFrame] = field(default_factory=list)
    derive: bool = False

    @property
    def rows(self) -> int:
        return sum(len(f) for f in self.frames)


class BatchWriter:
    """Writes fetched units in batches, then reports them (in the order they were added)."""

    def __init__(self, loader: Loader, summary: LoadSummary,
                 on_result: Callable[[UnitResult], None] | None) -> None:
        self.loader = loader
        self.summary = summary
        self.on_result = on_result
        self.units: list[Fetched] = []
        self.rows = 0
        self.since = 0.0  # clock.monotonic() when the first pending unit came
        self._symbols_seen = 0
        self._rows_seen = 0

    def seen(self, fetched: list[Fetched]) -> None:
        self._symbols_seen += 1
        self._rows_seen += sum(u.rows for u in fetched)

    def lookahead(self) -> int:
        """Symbols to fetch ahead: about one batch (so fetching goes on while a batch is
        written), at least 2, at most 64; bounded by bars so minute histories stay in memory."""
        per_symbol = max(1, self._rows_seen // max(1, self._symbols_seen))
        return max(2, min(64, self.loader.options.batch_bars // per_symbol))

    def add(self, unit: Fetched) -> None:
        result = unit.result
        if unit.derive:
            self.flush()  # derived bars read the stored lower ones
            self._report(self.loader.load_unit(result.symbol, result.timeframe, unit.start,
                                               unit.end))
        elif result.error is not None:
            auth = result.error.startswith(AUTH_PREFIX)
            if auth:
                self.flush()  # what was fetched before is stored before the load stops
            self._report(result)
            if auth:
                raise ProviderAuthError(result.error[len(AUTH_PREFIX):])
        else:
            self.units.append(unit)
            if len(self.units) == 1:
                self.since = self.loader.clock.monotonic()
            self.rows += unit.rows
            options = self.loader.options
            # big enough to amortise the commit, or waited long enough: progress stays live
            if self.rows >= options.batch_bars or (
                    self.loader.clock.monotonic() - self.since >= options.batch_seconds):
                self.flush()

    def flush(self) -> None:
        units, self.units, self.rows = self.units, [], 0
        if not units:
            return
        source = self.loader.provider.capabilities.name
        try:
            with self.loader.pool.connection() as conn:
                batch = bar_store.insert_new(conn, [f for u in units for f in u.frames], source)
        except StoreError:
            batch = None
        for unit in units:
            if batch is not None:
                unit.result.written = unit.rows
            else:  # something is stored already, or a unit is refused: one unit at a time
                self._write_one(unit, source)
            unit.result.ok = unit.result.error is None
            self._report(unit.result)

    def _write_one(self, unit: Fetched, source: str) -> None:
        try:
            with self.loader.pool.connection() as conn:
                unit.result.written = bar_store.write_bars(conn, unit.frames, source).written
        except StoreError as exc:
            unit.result.error = f"{type(exc).__name__}: {exc}"

    def _report(self, result: UnitResult) -> None:
        if not result.ok:
            log.warning("load of %s %s failed: %s", result.symbol, result.timeframe.value,
                        result.error)
        self.summary.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
