"""The cyclic garbage collector while a live state is held (the stream process and its
analysis processes): the warmed state frozen out of its sight, and fewer collections."""

from __future__ import annotations

import gc

#: The cyclic collector's thresholds while a live state is frozen. A burst allocates hundreds
#: of thousands of short-lived objects, freed by reference counting (the path makes few
#: cycles); at CPython's defaults (``DEFAULT_GC_THRESHOLDS``) a collection ran every few
#: hundred bars and a full one every few bursts, together a sixth of the stream process's CPU.
LIVE_GC_THRESHOLDS = (20_000, 20, 20)
DEFAULT_GC_THRESHOLDS = (700, 10, 10)


def settle_live_state() -> None:
    """Step 5: freeze what the warm-up built (after collecting its cyclic garbage) and raise
    the collector's thresholds; ``release_live_state`` undoes it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*LIVE_GC_THRESHOLDS)


def release_live_state() -> None:
    """Unfreeze the live state and put back the default thresholds (the role stopped)."""
    gc.unfreeze()
    gc.set_threshold(*DEFAULT_GC_THRESHOLDS)
