"""Declarative specs: what an indicator or pattern reads, its parameters, warm-up and outputs.

In the manner of zipline's pipeline terms, a spec states everything the engines need to know
without running anything: the input columns (base bar columns such as ``close``, or outputs of
other indicators such as ``bbands_20_2.upper``), the parameters, the warm-up (how many bars
must exist before the first value), and the output column names. The engines resolve the
inputs, order specs so every input exists before it is read, and know from ``warmup`` how much
stored history to load.

Naming (one scheme, defined here and used everywhere): an instance is named
``<kind>_<param>_<param>...`` with its naming parameters in declaration order and floats
written without a trailing ``.0`` (``sma_20``, ``macd_12_26_9``, ``bbands_20_2``); a kind with
no parameters is its kind (``obv``, ``vwap``). A single-output indicator's output column is
its instance name; a multi-output indicator's columns are ``<instance>.<output>``
(``macd_12_26_9.signal``, ``bbands_20_2.upper``). These column names are the ``name`` of
``indicator_values`` rows. A pattern's name is its ``pattern`` in ``pattern_detections``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import FloatArray

#: Columns by name: base bar columns and indicator outputs, all of one length.
Columns = Mapping[str, NDArray[np.float64] | NDArray[np.int64]]
#: One row of the same columns: the bar being committed or peeked.
Row = Mapping[str, float]

Direction = Literal["bullish", "bearish", "both", "neutral"]
Role = Literal["reversal", "continuation", "neutral"]
ParamValue = int | float


def format_param(value: ParamValue) -> str:
    """A parameter as it appears in an instance name: ``20``, ``2`` (for 2.0), ``0.5``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def instance_name(kind: str, *params: ParamValue) -> str:
    """The canonical instance name of ``kind`` with naming parameters ``params``."""
    return "_".join([kind, *(format_param(p) for p in params)])


class IndicatorStream(Protocol):
    """Incremental state of one indicator for one symbol."""

    def warm_up(self, history: Columns) -> None:
        """Seed the state from the bars before the first ``update`` (may be empty)."""

    def update(self, row: Row) -> tuple[float, ...]:
        """Commit one closed bar; return its outputs (equal to batch output for that bar)."""

    def peek(self, row: Row) -> tuple[float, ...]:
        """The outputs ``update(row)`` would return, committing nothing."""


class IndicatorKernel(Protocol):
    """The computation behind a spec: a batch function and a factory of incremental states."""

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        """Every output over the whole history, aligned with the input arrays."""

    def stream(self) -> IndicatorStream:
        """A fresh incremental state."""


@dataclass(frozen=True)
class IndicatorSpec:
    """A named, parameterised indicator instance."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    params: tuple[tuple[str, ParamValue], ...]
    outputs: tuple[str, ...]
    warmup: int
    kernel: IndicatorKernel = field(compare=False, repr=False)
    description: str = field(default="", compare=False)
    #: True when the kernel uses the optional ``session`` input (VWAP, pivots, relative volume).
    uses_session: bool = field(default=False, compare=False)
    #: Indicators whose outputs this one reads (computed first by both engines).
    depends: tuple[IndicatorSpec, ...] = field(default=(), compare=False)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The output column names (``indicator_values.name``)."""
        if len(self.outputs) == 1:
            return (self.name,)
        return tuple(f"{self.name}.{out}" for out in self.outputs)

    def param(self, name: str) -> ParamValue:
        return dict(self.params)[name]


@dataclass(frozen=True)
class PatternSpec:
    """A named pattern: what it reads, its direction and how it is detected.

    ``direction``: ``bullish``/``bearish`` patterns always point that way; ``both`` takes the
    sign of each detection (TA-Lib's +/- output, or the candle's colour); ``neutral`` patterns
    have no direction. ``role`` says which trend context confirms the pattern (module
    ``tickstock.analysis.patterns.scoring``). ``span`` is the number of bars the pattern
    covers (its key levels span them); ``warmup`` the bars needed before it can fire.
    """

    name: str
    kind: str
    direction: Direction
    role: Role
    requires: tuple[str, ...]
    params: tuple[tuple[str, ParamValue], ...]
    warmup: int
    span: int
    #: The TA-Lib function of a candlestick pattern (``CDLENGULFING``); empty otherwise.
    talib_function: str = ""
    description: str = field(default="", compare=False)
    #: How many bars back (besides the current one) the detector looks at.
    lag: int = 0
    #: Indicators whose outputs the detector or its confidence reads.
    depends: tuple[IndicatorSpec, ...] = field(default=(), compare=False)

    def param(self, name: str) -> ParamValue:
        return dict(self.params)[name]


Spec = IndicatorSpec | PatternSpec
