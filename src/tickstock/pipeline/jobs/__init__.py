"""Job handlers: the registry the worker dispatches from, and the context a handler gets.

A handler module registers itself at import time::

    from tickstock.contracts.jobs import HistoricalLoad
    from tickstock.pipeline.jobs import JobContext, register_job_handler

    def historical_load(payload: BaseModel, ctx: JobContext) -> None:
        job = cast(HistoricalLoad, payload)
        ctx.set_total(len(job.symbols))
        for symbol in job.symbols:
            if ctx.cancelled():
                return
            ...  # upsert bars: a rerun after a crash must not duplicate rows
            ctx.symbol_done(symbol, timeframe="day", bars=n)

    register_job_handler(HistoricalLoad.message_type, historical_load)

The worker imports every module of ``HANDLER_MODULES`` (plus any named by the setting
``TICKSTOCK_WORKER_HANDLER_MODULES``) at start. A handler raises to fail the job; returning
normally completes it (or cancels it, when ``ctx.cancelled()`` was true).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from tickstock.contracts.registry import JOB_TYPES
from tickstock.core.clock import Clock

#: Modules that register job handlers, imported by the worker at start.
HANDLER_MODULES: tuple[str, ...] = ("tickstock.pipeline.jobs.data_load",)


class JobContext(Protocol):
    """What a running job handler may use and must report through."""

    job_id: str
    pool: ConnectionPool  # dict_row connections (tickstock.store.db.create_pool)
    clock: Clock

    def set_total(self, total: int) -> None:
        """Number of units (symbols, or symbol x timeframe) this job will process."""

    def symbol_done(self, symbol: str, *, timeframe: str = "", bars: int = 0) -> None:
        """One unit finished well; ``bars`` written."""

    def symbol_failed(self, symbol: str, reason: str, *, timeframe: str = "") -> None:
        """One unit failed; also recorded in ``import_failures`` for retry."""

    def cancelled(self) -> bool:
        """True once cancellation was requested; poll it at each symbol boundary."""

    def emit(self, event_type: str, data: BaseModel) -> None:
        """Publish an event with this job's correlation id."""


JobHandler = Callable[[BaseModel, JobContext], None]

_HANDLERS: dict[str, JobHandler] = {}


def register_job_handler(job_type: str, handler: JobHandler, *, replace: bool = False) -> None:
    """Register ``handler`` for ``job_type`` (a ``job.*`` message type of the contract).

    Registering the same handler twice is harmless (module reloads); a different handler for
    a type that already has one is a programming error unless ``replace`` says it is meant (an
    extra handler module of ``TICKSTOCK_WORKER_HANDLER_MODULES`` overriding a built-in one;
    those are imported last).
    """
    if job_type not in JOB_TYPES:
        raise ValueError(f"{job_type!r} is not a job type of the contract: {sorted(JOB_TYPES)}")
    existing = _HANDLERS.get(job_type)
    if existing is not None and existing is not handler and not replace:
        raise ValueError(f"job type {job_type!r} already has handler {existing!r}")
    _HANDLERS[job_type] = handler


def job_handlers() -> Mapping[str, JobHandler]:
    """Every registered handler, by job type (read-only view)."""
    return MappingProxyType(_HANDLERS)


def load_handler_modules(extra: Iterable[str] = ()) -> Mapping[str, JobHandler]:
    """Import ``HANDLER_MODULES`` and ``extra`` (each registers its handlers); ImportError
    propagates: a configured handler module that does not import is a broken deployment."""
    for module in (*HANDLER_MODULES, *extra):
        importlib.import_module(module)
    return job_handlers()
