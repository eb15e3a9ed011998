"""A job handler for worker tests. In-process workers get ``HANDLERS``; a real ``tickstock
worker`` subprocess gets it through ``TICKSTOCK_WORKER_HANDLER_MODULES=worker_test_handlers``
(with this folder on PYTHONPATH), which registers it — this module does not, so the pytest
process's handler registry stays as production has it.

It stands in for the market-data loader of ``job.historical_load`` and
``job.multi_timeframe_load`` (the jobs seed-shaped messages become): per symbol it upserts
``BARS_PER_SYMBOL`` daily bars (the natural-key upsert real loaders use) and then waits
``TICKSTOCK_TEST_SLOW_MS`` milliseconds, so a test can kill a worker in the middle of a job.
A symbol named ``FAIL...`` fails; a symbol named ``BOOM`` makes the handler raise.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import cast

from pydantic import BaseModel

from tickstock.contracts.jobs import HistoricalLoad, MultiTimeframeLoad
from tickstock.pipeline.jobs import JobContext

BARS_PER_SYMBOL = 5
SLOW_MS_VARIABLE = "TICKSTOCK_TEST_SLOW_MS"


def slow_upsert_load(payload: BaseModel, ctx: JobContext) -> None:
    job = cast(HistoricalLoad | MultiTimeframeLoad, payload)
    delay_s = int(os.environ.get(SLOW_MS_VARIABLE, "0")) / 1000.0
    ctx.set_total(len(job.symbols))
    for symbol in job.symbols:
        if ctx.cancelled():
            return
        if symbol == "BOOM":
            raise RuntimeError("provider exploded")
        if symbol.startswith("FAIL"):
            ctx.symbol_failed(symbol, "no data from provider", timeframe="day")
            continue
        with ctx.pool.connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, source) "
                "VALUES (%s, 'day', %s, 1, 2, 0.5, 1.5, 100, 'test') "
                "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET close = EXCLUDED.close",
                [(symbol, job.start + timedelta(days=i)) for i in range(BARS_PER_SYMBOL)])
        ctx.clock.sleep(delay_s)
        ctx.symbol_done(symbol, timeframe="day", bars=BARS_PER_SYMBOL)


HANDLERS = {HistoricalLoad.message_type: slow_upsert_load,
            MultiTimeframeLoad.message_type: slow_upsert_load}
