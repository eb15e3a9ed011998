"""Data-load jobs: historical load, multi-timeframe load, universe seed, file import.

Every handler runs the same steps:

1. resolve the target: the job's symbols, or a universe's members (a universe the database
   does not hold yet is imported from the catalogue; ``universe_seed`` always re-imports it)
2. ``set_total`` = symbols x timeframes: progress is reported per (symbol, timeframe) unit
3. top up unit by unit (``market.ingest.Loader``): only the ranges not stored yet are fetched,
   written with binary COPY + upsert in one transaction per unit, so a unit is stored whole or
   not at all and a rerun changes nothing
4. report each unit: done with the bars written, or failed with the reason (the job store also
   records it in ``import_failures``); refused rows go to ``import_row_issues``; open failures
   of the unit left by earlier jobs are resolved once it loads
5. stop at the next symbol boundary when ``ctx.cancelled()``

A provider that refuses the API key fails the job: every further symbol would fail the same way.
``retry_failed_job`` builds the job that re-runs exactly the failed units of an earlier one.

The worker process (``tickstock.ops``) calls ``configure`` with the provider of its settings;
until then jobs use the synthetic market, the default when no provider key is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from tickstock.contracts.common import ProviderName, Timeframe
from tickstock.contracts.jobs import (
    FileImport,
    HistoricalLoad,
    Job,
    MultiTimeframeLoad,
    UniverseSeed,
)
from tickstock.core.errors import (
    ConfigurationError,
    DataValidationError,
    NotFoundError,
    StoreError,
)
from tickstock.market.bars import INTRADAY, BarFrame, RowIssue
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.market.ingest import Loader, LoadOptions, UnitResult, regular_session
from tickstock.market.providers import Provider, create_provider
from tickstock.market.providers.files.data import parse_file
from tickstock.market.universes import UniverseCatalog, import_universe
from tickstock.market.universes.files import TICKER
from tickstock.market.validate import validate
from tickstock.pipeline.jobs import JobContext, JobHandler, job_handlers, register_job_handler
from tickstock.store import imports
from tickstock.store import universes as universe_store
from tickstock.store.bars import write_bars

log = logging.getLogger(__name__)

#: The provider called ``name`` (None: the configured one).
ProviderFactory = Callable[[ProviderName | None], Provider]
_J = TypeVar("_J", bound=Job)


class DataLoadJobs:
    """The four data-load handlers over one provider factory, calendar and universe catalogue."""

    def __init__(self, *, providers: ProviderFactory, calendar: MarketCalendar,
                 catalog: UniverseCatalog | None = None,
                 options: LoadOptions | None = None) -> None:
        self.providers = providers
        self.calendar = calendar
        self.catalog = catalog or UniverseCatalog()
        self.options = options or LoadOptions()

    def handlers(self) -> dict[str, JobHandler]:
        return {HistoricalLoad.message_type: self.historical_load,
                MultiTimeframeLoad.message_type: self.multi_timeframe_load,
                UniverseSeed.message_type: self.universe_seed,
                FileImport.message_type: self.file_import}

    # -- handlers -----------------------------------------------------------------------------
    def historical_load(self, payload: BaseModel, ctx: JobContext) -> None:
        job = _as(payload, HistoricalLoad)
        self._top_up(ctx, job, self._targets(ctx.pool, job.symbols, job.universe))

    def multi_timeframe_load(self, payload: BaseModel, ctx: JobContext) -> None:
        """Same as a historical load: units go symbol by symbol, every timeframe of a symbol
        before the next symbol, so a cancelled job leaves whole symbols."""
        job = _as(payload, MultiTimeframeLoad)
        self._top_up(ctx, job, self._targets(ctx.pool, job.symbols, job.universe))

    def universe_seed(self, payload: BaseModel, ctx: JobContext) -> None:
        job = _as(payload, UniverseSeed)
        self._top_up(ctx, job, self.seed_universe(ctx.pool, job.universe))

    def file_import(self, payload: BaseModel, ctx: JobContext) -> None:
        job = _as(payload, FileImport)
        FileImporter(self.calendar, ctx).run(job)

    # -- steps --------------------------------------------------------------------------------
    def seed_universe(self, pool: ConnectionPool, name: str) -> list[str]:
        """(Re-)import ``name`` from the catalogue when it has a file for it; the members."""
        with pool.connection() as conn:
            if name in self.catalog.names():
                import_universe(conn, self.catalog.load(name))
            return self._members(conn, name)

    def _targets(self, pool: ConnectionPool, symbols: Sequence[str],
                 universe: str | None) -> list[str]:
        if universe is None:
            return list(dict.fromkeys(symbols))
        with pool.connection() as conn:
            if universe_store.get_universe(conn, universe) is None and (
                    universe in self.catalog.names()):
                import_universe(conn, self.catalog.load(universe))
            return self._members(conn, universe)

    def _members(self, conn: Any, name: str) -> list[str]:
        try:
            return universe_store.members(conn, name)
        except NotFoundError as exc:
            raise NotFoundError(f"{exc}; universe files available: "
                                f"{', '.join(self.catalog.names())}") from None

    def _top_up(self, ctx: JobContext, job: HistoricalLoad | MultiTimeframeLoad | UniverseSeed,
                symbols: list[str]) -> None:
        loader = Loader(ctx.pool, self.providers(job.provider), self.calendar, ctx.clock,
                        self.options)
        ctx.set_total(len(symbols) * len(job.timeframes))
        reporter = UnitReporter(ctx)
        try:
            loader.top_up(symbols, job.timeframes, job.start, job.end, on_result=reporter,
                          cancelled=ctx.cancelled)
        finally:
            reporter.register_loaded()


class UnitReporter:
    """Reports each (symbol, timeframe) result of a load through the job context."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.loaded: set[str] = set()

    def __call__(self, result: UnitResult) -> None:
        ctx, tf = self.ctx, result.timeframe.value
        with ctx.pool.connection() as conn:
            imports.replace_row_issues(conn, ctx.job_id, result.symbol, tf, result.issues)
            if result.ok:
                imports.resolve_failures(conn, result.symbol, tf, resolved_by=ctx.job_id,
                                         now=ctx.clock.now())
        if result.ok:
            self.loaded.add(result.symbol)
            ctx.symbol_done(result.symbol, timeframe=tf, bars=result.written)
        else:
            ctx.symbol_failed(result.symbol, result.error or "failed", timeframe=tf)

    def register_loaded(self) -> None:
        """Symbols with bars get a ``symbols`` row (pages list symbols from there)."""
        if self.loaded:
            with self.ctx.pool.connection() as conn:
                universe_store.ensure_symbols(conn, self.loaded)


class FileImporter:
    """A CSV file (plain or gzip) into ``bars``: every symbol in it is one unit."""

    def __init__(self, calendar: MarketCalendar, ctx: JobContext) -> None:
        self.calendar = calendar
        self.ctx = ctx

    def run(self, job: FileImport) -> None:
        path = Path(job.path)
        if not path.is_file():
            raise DataValidationError(f"file_import: {path} is not a file readable by this worker")
        parsed = parse_file(path, symbol=job.symbol, timeframe=job.timeframe)
        timeframe = parsed.timeframe
        valid = {s: f for s, f in parsed.frames.items() if TICKER.match(s)}
        stray = [RowIssue(path.name, f"row {line} names {s!r}, which is not a ticker",
                          timeframe.value, int(line))
                 for s, (_, lines) in parsed.frames.items() if s not in valid for line in lines]
        file_issues = [i for i in parsed.issues if i.symbol not in valid] + stray
        with self.ctx.pool.connection() as conn:
            imports.replace_row_issues(conn, self.ctx.job_id, path.name, timeframe.value,
                                       file_issues)
        if not valid:
            raise DataValidationError(
                f"{path}: no rows of a valid symbol to import ({len(file_issues)} rows refused; "
                f"first: {file_issues[0] if file_issues else 'the file has no data rows'})")
        self.ctx.set_total(len(valid))
        for symbol, (frame, lines) in valid.items():
            if self.ctx.cancelled():
                return
            self._unit(symbol, frame, lines, [i for i in parsed.issues if i.symbol == symbol])

    def _unit(self, symbol: str, frame: BarFrame, lines: Any, issues: list[RowIssue]) -> None:
        tf = frame.timeframe.value
        bars, refused = validate(frame, lines)
        issues = issues + refused
        if frame.timeframe in INTRADAY:
            bars, outside = regular_session(self.calendar, bars)
            issues += [outside] if outside is not None else []
        try:
            with self.ctx.pool.connection() as conn:
                written = write_bars(conn, [bars], "files")
                universe_store.ensure_symbols(conn, [symbol])
                imports.replace_row_issues(conn, self.ctx.job_id, symbol, tf, issues)
        except StoreError as exc:
            self.ctx.symbol_failed(symbol, f"StoreError: {exc}", timeframe=tf)
            return
        self.ctx.symbol_done(symbol, timeframe=tf, bars=written.written)


def retry_failed_job(pool: ConnectionPool, job_id: str, *, requested_by: str | None = None
                     ) -> Job | None:
    """The job that re-runs exactly the open failed units of job ``job_id`` (same range and
    provider; a file import is re-run whole, which only writes what is missing), or None when
    nothing of it is left to retry. NotFoundError when there is no such job."""
    with pool.connection() as conn:
        row = conn.cursor(row_factory=dict_row).execute(
            "SELECT job_type, params FROM jobs WHERE job_id = %s", (job_id,)).fetchone()
        failures = imports.open_failures(conn, job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id}")
    if not failures:
        return None
    params: dict[str, Any] = dict(row["params"])
    who = {"requested_by": requested_by} if requested_by else {}
    if row["job_type"] == FileImport.message_type:
        return FileImport.model_validate({**params, **who})
    order = list(Timeframe)
    timeframes = sorted({Timeframe(f["timeframe"]) for f in failures if f["timeframe"]},
                        key=order.index) or [Timeframe.DAY]
    return HistoricalLoad(symbols=tuple(sorted({f["symbol"] for f in failures})),
                          timeframes=tuple(timeframes), start=params["start"], end=params["end"],
                          provider=params.get("provider"), **who)


def _as(payload: BaseModel, model: type[_J]) -> _J:
    if not isinstance(payload, model):
        raise TypeError(f"expected {model.__name__}, got {type(payload).__name__}")
    return payload


# -- registration with the worker --------------------------------------------------------------

_lock = threading.Lock()
_configured: DataLoadJobs | None = None


def synthetic_only(calendar: MarketCalendar) -> ProviderFactory:
    """The provider factory of an unconfigured worker: the synthetic market only."""
    provider: list[Provider] = []

    def factory(name: ProviderName | None) -> Provider:
        if name not in (None, "synthetic"):
            raise ConfigurationError(
                f"this worker has no {name} provider configured; set TICKSTOCK_PROVIDER and its "
                "settings (MASSIVE_API_KEY, TICKSTOCK_FILES_DIR) for the worker")
        if not provider:
            provider.append(create_provider("synthetic", calendar))
        return provider[0]

    return factory


def configure(jobs: DataLoadJobs | None) -> None:
    """Make the registered handlers use ``jobs`` (the worker's composition root calls this with
    the provider of its settings; None goes back to the synthetic default)."""
    global _configured  # noqa: PLW0603 - set once by the composition root, read by handlers
    with _lock:
        _configured = jobs


def _active() -> DataLoadJobs:
    global _configured  # noqa: PLW0603
    with _lock:
        if _configured is None:
            calendar = nyse()
            _configured = DataLoadJobs(providers=synthetic_only(calendar), calendar=calendar)
        return _configured


def _delegate(job_type: str) -> JobHandler:
    def handle(payload: BaseModel, ctx: JobContext) -> None:
        _active().handlers()[job_type](payload, ctx)

    handle.__name__ = f"data_load[{job_type}]"
    return handle


for _type in (HistoricalLoad, MultiTimeframeLoad, UniverseSeed, FileImport):
    # a handler registered before (an override module imported first) is left in place
    if _type.message_type not in job_handlers():
        register_job_handler(_type.message_type, _delegate(_type.message_type))

