"""The catalogue: every canonical instance by name, and the default set the system computes.

``DEFAULT_SPECS`` is what the daily run and the live stream compute (one constant, imported
by both). ``get(name)`` finds any instance of the default catalogue by its canonical name;
other parameterisations are built with the constructors in ``tickstock.analysis.indicators``
and ``tickstock.analysis.patterns.signals`` / ``candles``.
"""

from __future__ import annotations

from tickstock.analysis.indicators import default_indicators
from tickstock.analysis.patterns.candles import all_candles
from tickstock.analysis.patterns.signals import default_signals
from tickstock.analysis.plan import plan
from tickstock.analysis.spec import IndicatorSpec, PatternSpec, Spec
from tickstock.core.errors import NotFoundError

DEFAULT_INDICATORS: tuple[IndicatorSpec, ...] = default_indicators()
CANDLE_PATTERNS: tuple[PatternSpec, ...] = all_candles()
SIGNAL_PATTERNS: tuple[PatternSpec, ...] = default_signals()
DEFAULT_PATTERNS: tuple[PatternSpec, ...] = (*CANDLE_PATTERNS, *SIGNAL_PATTERNS)
#: What the daily run and the live stream compute.
DEFAULT_SPECS: tuple[Spec, ...] = (*DEFAULT_INDICATORS, *DEFAULT_PATTERNS)

_BY_NAME: dict[str, Spec] = {s.name: s for s in plan(DEFAULT_SPECS).indicators}
_BY_NAME.update((p.name, p) for p in DEFAULT_PATTERNS)


def get(name: str) -> Spec:
    """The default catalogue's instance named ``name`` (``sma_20``, ``cdl_engulfing``, ...)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFoundError(f"no indicator or pattern named {name!r}") from None


def names() -> tuple[str, ...]:
    """Every instance name of the default catalogue."""
    return tuple(_BY_NAME)


def indicator_columns(specs: tuple[Spec, ...] = DEFAULT_SPECS) -> tuple[str, ...]:
    """The ``indicator_values.name`` columns ``specs`` produce."""
    return plan(specs).columns


def pattern_names(specs: tuple[Spec, ...] = DEFAULT_SPECS) -> tuple[str, ...]:
    return tuple(p.name for p in plan(specs).patterns)
