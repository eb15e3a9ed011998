"""Start (or restart) from what is stored, so a restart mid-session continues seamlessly.

Two phases, so that a large universe's warm-up does not keep the feed waiting (minutes that
arrive meanwhile queue up instead of becoming gaps that REST must fill):

``read_history`` (before the feed connects; queries only)
1. Read each symbol's last stored minutes (enough for the engine, and at least the longest
   derived bucket) and the last stored bars of every derived timeframe.
2. Tell the gap tracker and the processor each symbol's last stored minute: the first live
   minute shows what is missing, and a minute already stored is not processed twice.

``apply_history`` (on the processing thread, before the first live batch)
3. Feed the minutes of each symbol's still-open buckets to the roll-ups: the forming 5-minute,
   15-minute and hourly bars are back as they were (a bucket completed but not stored before a
   crash is stored now).
4. Warm the engine and the alert rules from the stored bars of every timeframe.
5. Move what the warm-up built (millions of objects for thousands of symbols: engine states,
   windows, alert records) out of the cyclic garbage collector's sight (``gc.freeze``). They
   live as long as the process, and a full collection walking them took 0.4 s for 2,000
   symbols in the middle of a minute burst; frozen objects are still freed by reference
   counting when dropped. Then raise the collector's thresholds (``collector``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY_MINUTES
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.collector import settle_live_state
from tickstock.pipeline.stream.processor import LiveProcessor
from tickstock.pipeline.stream.repair import GapTracker
from tickstock.pipeline.stream.rollup import bucket
from tickstock.pipeline.stream.storage import BarStore

logger = logging.getLogger(__name__)

History = dict[Timeframe, dict[str, list[LiveBar]]]


def read_history(store: BarStore, processor: LiveProcessor, tracker: GapTracker,
                 symbols: Sequence[str]) -> History:
    """Steps 1-2; returns what ``apply_history`` needs."""
    started = time.perf_counter()
    longest = max((INTRADAY_MINUTES[tf] for tf in processor.rollup.timeframes), default=1)
    count = max(processor.engine.warmup_bars(Timeframe.MIN1), longest)
    history: History = {Timeframe.MIN1: store.last_bars(symbols, Timeframe.MIN1, count)}
    for tf in processor.rollup.timeframes:
        history[tf] = store.last_bars(symbols, tf, processor.engine.warmup_bars(tf))
    last = {s: bars[-1].start for s, bars in history[Timeframe.MIN1].items() if bars}
    tracker.seed(last)
    processor.last_minute.update(last)
    logger.info("read stored bars for the warm-up", extra={
        "symbols": len(symbols), "with_history": len(last),
        "seconds": round(time.perf_counter() - started, 2)})
    return history


def apply_history(processor: LiveProcessor, history: History) -> None:
    """Steps 3-5 (CPU only: run it on the processing thread)."""
    started = time.perf_counter()
    minutes = history[Timeframe.MIN1]
    if processor.rollup.timeframes:
        processor.warm_rollups(_open_buckets(processor, minutes))
    keep = processor.engine.warmup_bars(Timeframe.MIN1)
    processor.warm_state({**history, Timeframe.MIN1: {s: b[-keep:] for s, b in minutes.items()}})
    settle_live_state()
    logger.info("warmed up from stored bars", extra={
        "symbols": len(minutes), "seconds": round(time.perf_counter() - started, 2)})


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
