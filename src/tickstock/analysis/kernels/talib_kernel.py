"""TA-Lib-backed kernels: the Function API for batch, ``talib.stream`` handles for bars.

A ``talib.stream`` handle is bit-identical to the Function API for every bar after it opens
(verified on the real daily universe by ``tests/analysis/test_golden.py`` and
``test_incremental.py``), but it can only be opened on enough history: ``lookback + 1`` bars,
a little more where a function's seeding needs it (``talib.InsufficientHistory``). Until then
``TalibCell`` keeps the bars and answers with the Function API over them, which is the batch
answer by definition; the first bar that makes the handle open switches it to O(1) updates.

A bar that is not finite (an upstream indicator still warming up feeds NaN) is buffered the
same way before the handle opens (leading NaNs are not history for TA-Lib); after it opens,
such a bar is counted with ``advance()`` and answered with NaN, so the handle stays aligned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import talib
import talib.abstract
import talib.stream

from tickstock.analysis.bars import FloatArray
from tickstock.analysis.spec import Columns, ParamValue, Row

# The stubs of the wheel lag its runtime (InsufficientHistory, abstract.Function).
_TALIB: Any = talib
_ABSTRACT: Any = talib.abstract
InsufficientHistory: type[Exception] = _TALIB.InsufficientHistory


def lookback(function: str, params: Mapping[str, ParamValue]) -> int:
    """TA-Lib's lookback of ``function`` with ``params``: bars before its first value."""
    return int(_ABSTRACT.Function(function, **params).lookback)


def function_names(group: str) -> list[str]:
    """TA-Lib's functions of ``group`` (e.g. ``Pattern Recognition``), in its order."""
    names: list[str] = _TALIB.get_function_groups()[group]
    return names


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if isinstance(value, tuple):
        return value
    return (value,)


class TalibCell:
    """One TA-Lib function's incremental state: buffered history, then a stream handle."""

    __slots__ = ("_batch", "_buffer", "_handle", "_opener", "_params")

    def __init__(self, function: str, params: Mapping[str, ParamValue]) -> None:
        self._batch: Callable[..., Any] = getattr(talib, function)
        self._opener: Any = getattr(talib.stream, function)
        self._params = params
        self._buffer: list[list[float]] | None = None
        self._handle: Any = None

    def warm_up(self, history: Sequence[FloatArray]) -> None:
        """Seed from ``history`` (one array per input); opens the handle if it is enough."""
        self._handle, self._buffer = None, None
        if history and len(history[0]):
            try:  # straight from the arrays: most warm-ups are long enough
                self._handle = self._opener(
                    *(np.asarray(a, dtype=np.float64) for a in history), **self._params
                )
                return
            except InsufficientHistory:
                pass
        self._buffer = [list(map(float, arr)) for arr in history]

    def _try_open(self) -> tuple[float, ...] | None:
        assert self._buffer is not None
        arrays = [np.asarray(col, dtype=np.float64) for col in self._buffer]
        try:
            self._handle = self._opener(*arrays, **self._params)
        except InsufficientHistory:
            return None
        self._buffer = None
        return _as_tuple(self._handle.value)

    def _batch_last(self, arrays: Sequence[FloatArray]) -> tuple[float, ...]:
        out = _as_tuple(self._batch(*arrays, **self._params))
        return tuple(float(col[-1]) for col in out)

    def update(self, *values: float) -> tuple[float, ...]:
        """Commit one bar of inputs; return the function's outputs for it."""
        handle = self._handle
        if handle is not None:
            try:
                return _as_tuple(handle.update(*values))
            except Exception:  # TA-Lib refuses a non-finite bar with a bare Exception
                if all(math.isfinite(v) for v in values):
                    raise
            handle.advance()
            return (math.nan,) * len(_as_tuple(handle.value))
        if self._buffer is None:
            self._buffer = [[] for _ in values]
        for col, v in zip(self._buffer, values, strict=True):
            col.append(v)
        opened = self._try_open()
        if opened is not None:
            return opened
        assert self._buffer is not None
        return self._batch_last([np.asarray(col, dtype=np.float64) for col in self._buffer])

    def peek(self, *values: float) -> tuple[float, ...]:
        """What ``update`` would return for this bar; commits nothing."""
        handle = self._handle
        if handle is not None:
            try:
                return _as_tuple(handle.peek(*values))
            except Exception:
                if all(math.isfinite(v) for v in values):
                    raise
            return (math.nan,) * len(_as_tuple(handle.value))
        buffer = self._buffer or [[] for _ in values]
        arrays = [np.asarray([*col, v], dtype=np.float64) for col, v in zip(buffer, values, strict=True)]
        return self._batch_last(arrays)


@dataclass(frozen=True)
class TalibKernel:
    """An indicator that is exactly one TA-Lib function over named input columns."""

    function: str
    inputs: tuple[str, ...]
    params: tuple[tuple[str, ParamValue], ...]

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        fn, kwargs = self._call
        return _as_tuple(fn(*[cols[name] for name in self.inputs], **kwargs))

    @cached_property
    def _call(self) -> tuple[Callable[..., Any], dict[str, ParamValue]]:
        return getattr(talib, self.function), dict(self.params)

    def stream(self) -> TalibStream:
        return TalibStream(self)


class TalibStream:
    """Incremental state of a ``TalibKernel``."""

    __slots__ = ("_cell", "_inputs")

    def __init__(self, kernel: TalibKernel) -> None:
        self._inputs = kernel.inputs
        self._cell = TalibCell(kernel.function, dict(kernel.params))

    def warm_up(self, history: Columns) -> None:
        self._cell.warm_up([np.asarray(history[name], dtype=np.float64) for name in self._inputs])

    def update(self, row: Row) -> tuple[float, ...]:
        return self._cell.update(*(row[name] for name in self._inputs))

    def peek(self, row: Row) -> tuple[float, ...]:
        return self._cell.peek(*(row[name] for name in self._inputs))
