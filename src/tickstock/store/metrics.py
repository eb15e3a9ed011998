"""Prometheus metrics of the store (served by each role's metrics endpoint, ``ops.metrics``).
Labels are bar sources only (provider names, ``files``, ``derived:<tf>``): bounded."""

from __future__ import annotations

from prometheus_client import Counter

BARS_INGESTED = Counter(
    "tickstock_bars_ingested_total",
    "Bars upserted into the bars table by loads, imports and derivations (rows offered).",
    ["source"])
BARS_CHANGED = Counter(
    "tickstock_bars_changed_total",
    "Bars that were new or differed from the stored row (a re-run of a load adds none).",
    ["source"])
