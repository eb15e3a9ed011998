"""Start (or restart) from what is stored, so a restart mid-session continues seamlessly.

1. Read each symbol's last stored minutes (enough for the engine, and at least the longest
   derived bucket).
2. Feed the minutes of each symbol's still-open buckets to the roll-ups: the forming 5-minute,
   15-minute and hourly bars are back as they were (a bucket completed but not stored before a
   crash is stored now).
3. Read the last stored bars of every timeframe and warm the engine and the alert rules.
4. Tell the gap tracker each symbol's last stored minute: the first live minute shows what is
   missing, and the repair fetches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY_MINUTES
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.repair import GapTracker
from tickstock.pipeline.stream.rollup import bucket
from tickstock.pipeline.stream.storage import BarStore

logger = logging.getLogger(__name__)


def warm_up(store: BarStore, processor: LiveProcessor, tracker: GapTracker,
            symbols: Sequence[str]) -> None:
    started = time.perf_counter()
    derived = processor.rollup.timeframes
    longest = max((INTRADAY_MINUTES[tf] for tf in derived), default=1)
    count = max(processor.engine.warmup_bars(Timeframe.MIN1), longest)
    minutes = store.last_bars(symbols, Timeframe.MIN1, count)
    if derived:
        processor.warm_rollups(_open_buckets(processor, minutes))
    history: dict[Timeframe, dict[str, list[LiveBar]]] = {
        Timeframe.MIN1: {s: bars[-processor.engine.warmup_bars(Timeframe.MIN1):]
                         for s, bars in minutes.items()},
    }
    for tf in derived:
        history[tf] = store.last_bars(symbols, tf, processor.engine.warmup_bars(tf))
    processor.warm_state(history)
    tracker.seed({s: bars[-1].start for s, bars in minutes.items() if bars})
    logger.info("warmed up from stored bars", extra={
        "symbols": len(symbols), "with_history": len(minutes),
        "seconds": round(time.perf_counter() - started, 2)})


def _open_buckets(processor: LiveProcessor,
                  minutes: dict[str, list[LiveBar]]) -> dict[str, list[LiveBar]]:
    """Each symbol's minutes since the start of the longest derived bucket holding its last one."""
    widest = max(processor.rollup.timeframes, key=lambda tf: INTRADAY_MINUTES[tf])
    out: dict[str, list[LiveBar]] = {}
    for symbol, bars in minutes.items():
        if not bars:
            continue
        session = processor.sessions.session_of(bars[-1].start)
        if session is None:
            continue
        start, _ = bucket(session, bars[-1].start, widest)
        out[symbol] = [b for b in bars if b.start >= start]
    return out
