"""The demo a first ``tickstock up`` gives: synthetic market data, then a daily run over it.

1. only with the synthetic provider (no ``MASSIVE_API_KEY``, no files) and ``TICKSTOCK_DEMO_SYMBOLS`` > 0
2. load the demo market (``tickstock.pipeline.demo.seed_demo``: idempotent, a top-up on later starts)
3. when it wrote bars, queue one daily run over the ``demo`` universe (skipping the market-open
   check), so indicators, patterns and outcome statistics are on every page once a worker has run it

``start_demo`` does it in a thread beside the roles' start-up (it takes a few seconds; the roles
do not need it to be healthy, and the stream role picks the symbols up when they appear).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import redis

from tickstock.bus.connection import connect
from tickstock.bus.submit import send_command
from tickstock.contracts.commands import TriggerDailyProcessing
from tickstock.core.clock import LiveClock
from tickstock.core.errors import TickStockError
from tickstock.ops.infra import Infra
from tickstock.ops.settings import Settings
from tickstock.pipeline.demo import DEMO_UNIVERSE, seed_demo
from tickstock.store.db import create_pool


def prepare_demo(settings: Settings, found: Infra, emit: Callable[[str], None]) -> None:
    """Seed the demo market and queue its first daily run (see the module docstring)."""
    if settings.effective_provider != "synthetic" or settings.demo_symbols == 0:
        return
    pool = create_pool(found.postgres.url, max_size=2, name="tickstock-demo")
    try:
        seeded = seed_demo(pool, clock=LiveClock(), symbols=settings.demo_symbols,
                           years=settings.demo_years, seed=settings.synthetic_seed)
    finally:
        pool.close()
    if not seeded.seeded:
        emit(f"demo data skipped: {seeded.reason}")
        return
    emit(f"demo data: {seeded.symbols} symbols, {seeded.bars} bars written in {seeded.seconds:.1f}s")
    if seeded.bars == 0:
        return
    client = connect(found.redis.url, name="tickstock-up")
    try:
        send_command(client, TriggerDailyProcessing(skip_market_check=True, universes=(DEMO_UNIVERSE,),
                                                    queue_if_busy=True), source="up")
    finally:
        client.close()
    emit("demo data: daily run queued (indicators, patterns) for the demo universe")


def start_demo(settings: Settings, found: Infra, emit: Callable[[str], None]) -> threading.Thread:
    """``prepare_demo`` in a daemon thread; a failure is one line, never a crash of the launcher."""

    def _prepare() -> None:
        try:
            prepare_demo(settings, found, emit)
        except (TickStockError, OSError, psycopg.Error, redis.RedisError) as exc:
            emit(f"demo data failed: {exc}")

    thread = threading.Thread(target=_prepare, name="demo-seed", daemon=True)
    thread.start()
    return thread
