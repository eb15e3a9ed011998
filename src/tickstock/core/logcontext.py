"""Ids bound to a block of work for every log line written inside it (stdlib only, so the bus
can bind a message's ids around its handler; ``ops.logs`` stamps them on each record).

    with log_context(correlation_id=envelope.correlation_id, job_id=job.job_id):
        handle(job)            # every log line here has correlation_id and job_id

asyncio tasks started inside inherit the ids; a thread started inside needs
``contextvars.copy_context().run``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

_NO_IDS: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "tickstock_log_context", default=_NO_IDS
)


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Add ``ids`` (``job_id=…``, ``run_id=…``; None values are skipped) to every log line
    written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    """The ids bound by the enclosing ``log_context`` blocks."""
    return dict(_context.get())
