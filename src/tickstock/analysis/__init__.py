"""Pure computation over bar arrays: indicator and pattern specs, registry, two engines.

No I/O, no clock, no settings: the daily run and the live stream call the same code with
different inputs.

    from tickstock.analysis import Bars, Bar, DEFAULT_SPECS, batch, incremental

    result = batch.compute(bars)                 # Result: .values {column: array}, .detections
    engine = incremental.Engine(DEFAULT_SPECS)
    engine.warm_up(stored_bars)                  # seed after a restart
    snapshot = engine.update(bar)                # closed bar -> Snapshot(values, detections)
    engine.peek(forming_bar)                     # forming bar, nothing committed
    stats = outcomes.pattern_outcomes(results)   # forward returns after each pattern

Modules: ``bars`` (inputs), ``spec`` (spec types, naming), ``indicators`` and ``patterns``
(constructors), ``registry`` (catalogue, ``DEFAULT_SPECS``), ``plan`` (dependency
resolution), ``batch``, ``incremental``, ``results``, ``outcomes``, ``context`` (the daily trend
an intraday bar's detections are checked against).
"""

from tickstock.analysis.bars import Bar, Bars, datetime_to_ns, ns_to_datetime
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import (
    CANDLE_PATTERNS,
    DEFAULT_INDICATORS,
    DEFAULT_PATTERNS,
    DEFAULT_SPECS,
    SIGNAL_PATTERNS,
    get,
)
from tickstock.analysis.results import Detection, Detections, Result, Snapshot
from tickstock.analysis.spec import IndicatorSpec, PatternSpec, Spec

__all__ = [
    "CANDLE_PATTERNS",
    "DEFAULT_INDICATORS",
    "DEFAULT_PATTERNS",
    "DEFAULT_SPECS",
    "SIGNAL_PATTERNS",
    "Bar",
    "Bars",
    "Detection",
    "Detections",
    "IndicatorSpec",
    "PatternSpec",
    "Plan",
    "Result",
    "Snapshot",
    "Spec",
    "datetime_to_ns",
    "get",
    "ns_to_datetime",
    "plan",
]
