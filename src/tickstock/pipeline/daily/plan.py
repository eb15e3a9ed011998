"""How a phase's symbols are split into batches.

Batches are the unit a worker claims, the unit that is redone after a crash, and the unit of
one database read and one COPY in the analysis phases: big enough to amortise those round
trips, small enough that N workers share a phase evenly and a crash loses little. The outcome
statistics refresh works on the whole universe at once, so it is one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from tickstock.contracts.common import Phase

WHOLE_UNIVERSE_PHASES = frozenset({Phase.OUTCOMES})
#: Aim for at least this many batches per phase, so several workers share even a small run.
TARGET_BATCHES = 16
MIN_BATCH = 10


def batch_size_for(count: int, max_size: int) -> int:
    """``TARGET_BATCHES`` batches for ``count`` symbols, but none smaller than ``MIN_BATCH``
    (per-batch overhead) or larger than ``max_size``."""
    return max(1, min(max_size, max(MIN_BATCH, -(-count // TARGET_BATCHES))))


def split_batches(symbols: Sequence[str], phase: Phase, max_size: int) -> list[list[str]]:
    """Consecutive chunks of symbols (one chunk for whole-universe phases)."""
    if max_size < 1:
        raise ValueError(f"batch size must be >= 1, got {max_size}")
    if phase in WHOLE_UNIVERSE_PHASES:
        return [list(symbols)] if symbols else []
    size = batch_size_for(len(symbols), max_size)
    return [list(symbols[i:i + size]) for i in range(0, len(symbols), size)]
