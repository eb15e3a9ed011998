"""TA-Lib-backed kernels: the Function API for batch, TA-Lib stream handles for bars.

A TA-Lib stream handle (opened and updated through ``talib_c``, the C calls ``talib.stream``
wraps) is bit-identical to the Function API for every bar after it opens
(verified on the real daily universe by ``tests/analysis/test_golden.py`` and
``test_incremental.py``), but it can only be opened on enough history: ``lookback + 1`` bars,
a little more where a function's seeding needs it (the open reports too short a history). Until then
``TalibCell`` keeps the bars and answers with the Function API over them, which is the batch
answer by definition; the first bar that makes the handle open switches it to O(1) updates.

A bar that is not finite (an upstream indicator still warming up feeds NaN) is buffered the
same way before the handle opens (leading NaNs are not history for TA-Lib); after it opens,
such a bar is counted with ``advance()`` and answered with NaN, so the handle stays aligned.

While the buffered history is no longer than the function's lookback (counted from the first bar
whose inputs are all non-NaN, as the Function API counts it), the batch answer for the last bar
is TA-Lib's fill value (NaN, or 0 for integer outputs), so it is answered without a call and no
open is tried: a per-minute relative-volume slot or a coarse timeframe warmed from few bars
would otherwise pay a failed open and a batch call on every bar. Opening later than possible
never changes an answer, since the fallback is the batch answer by definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import talib
import talib.abstract

from tickstock.analysis.bars import FloatArray
from tickstock.analysis.kernels.talib_c import CFunction, Handle, c_function
from tickstock.analysis.spec import Columns, ParamValue, Row

# The stubs of the wheel lag its runtime (abstract.Function, get_function_groups).
_TALIB: Any = talib
_ABSTRACT: Any = talib.abstract


def batch_function(function: str) -> Callable[..., Any]:
    """TA-Lib's Function API ``function`` without the adapter ``talib`` wraps it in (which
    accepts pandas and polars series: the engine always passes numpy arrays, and the adapter's
    type checks cost ~2.5 us a call, a third of a candlestick function over a year of bars)."""
    fn = getattr(talib, function)
    return getattr(fn, "__wrapped__", fn)  # type: ignore[no-any-return]


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


@lru_cache(maxsize=256)
def _lookback_and_fill(
    function: str, n_inputs: int, params: tuple[tuple[str, ParamValue], ...]
) -> tuple[int, tuple[float, ...]]:
    """``function``'s lookback and its outputs for a bar inside it (NaN, or 0 if integer)."""
    kwargs = dict(params)
    bars = lookback(function, kwargs)
    if bars < 1:
        return bars, ()
    one_bar = [np.ones(1, dtype=np.float64) for _ in range(n_inputs)]
    out = _as_tuple(getattr(talib, function)(*one_bar, **kwargs))
    return bars, tuple(float(col[-1]) for col in out)


def _valid_bars(history: Sequence[FloatArray]) -> int:
    """Bars from the first one whose inputs are all non-NaN: the history TA-Lib counts."""
    defined = np.logical_and.reduce([~np.isnan(np.asarray(a, dtype=np.float64)) for a in history])
    first = np.flatnonzero(defined)
    return int(defined.shape[0] - first[0]) if first.shape[0] else 0


class TalibCell:
    """One TA-Lib function's incremental state: buffered history, then a stream handle
    (``talib_c``: ``handle`` is its address, 0 while the history is buffered, so an engine can
    update many cells' handles in one call)."""

    __slots__ = ("_buffer", "_fill", "_fn", "_lookback", "_params", "_valid", "handle")

    def __init__(self, function: str, params: Mapping[str, ParamValue]) -> None:
        self.handle: Handle = 0  # first: ``__del__`` reads it even if the rest fails
        self._params = params
        self._fn = c_function(function, tuple(sorted(params.items())))
        self._buffer: list[list[float]] | None = None
        # Known once the number of inputs is (first warm-up or bar); -1 until then.
        self._lookback = -1
        self._fill: tuple[float, ...] = ()
        self._valid = 0  # buffered bars TA-Lib counts as history (see ``_valid_bars``)

    def __del__(self) -> None:
        self._release()

    def __copy__(self) -> TalibCell:
        raise TypeError("a TalibCell owns a C handle: it cannot be copied")

    def __deepcopy__(self, memo: object) -> TalibCell:
        raise TypeError("a TalibCell owns a C handle: it cannot be copied")

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a TalibCell owns a C handle: it cannot be pickled")

    def _release(self) -> None:
        if self.handle:
            self._fn.close(self.handle)
            self.handle = 0

    @property
    def function(self) -> CFunction:
        return self._fn

    def _learn_shape(self, n_inputs: int) -> None:
        if self._lookback < 0:
            key = tuple(sorted(self._params.items()))
            self._lookback, self._fill = _lookback_and_fill(self._fn.function, n_inputs, key)

    def _inside_lookback(self, valid: int) -> bool:
        return bool(self._fill) and valid <= self._lookback

    def warm_up(self, history: Sequence[FloatArray]) -> None:
        """Seed from ``history`` (one array per input); opens the handle if it is enough."""
        self._release()
        self._buffer = None
        if history and len(history[0]):
            opened = self._fn.open(history)  # straight from the arrays: most are long enough
            if opened is not None:
                self.handle = opened[0]
                return
        self._buffer = [list(map(float, arr)) for arr in history]
        self._learn_shape(len(history))
        self._valid = _valid_bars(history) if history and len(history[0]) else 0

    def _try_open(self) -> tuple[float, ...] | None:
        assert self._buffer is not None
        opened = self._fn.open(np.array(self._buffer, dtype=np.float64))
        if opened is None:
            return None
        self.handle, value = opened
        self._buffer = None
        return value

    def _batch_last(self, arrays: Sequence[FloatArray]) -> tuple[float, ...]:
        out = _as_tuple(batch_function(self._fn.function)(*arrays, **self._params))
        return tuple(float(col[-1]) for col in out)

    def update(self, *values: float) -> tuple[float, ...]:
        """Commit one bar of inputs; return the function's outputs for it."""
        if self.handle:
            return self._fn.update(self.handle, values)
        if self._buffer is None:
            self._buffer = [[] for _ in values]
            self._valid = 0
        for col, v in zip(self._buffer, values, strict=True):
            col.append(v)
        self._learn_shape(len(values))
        if self._valid or not any(map(math.isnan, values)):
            self._valid += 1
        if self._inside_lookback(self._valid):
            return self._fill
        opened = self._try_open()
        if opened is not None:
            return opened
        assert self._buffer is not None
        return self._batch_last([np.asarray(col, dtype=np.float64) for col in self._buffer])

    @staticmethod
    def update_many(cells: Sequence[TalibCell], inputs: Sequence[FloatArray]) -> FloatArray:
        """``update`` of ``cells[i]`` (all of one function and parameters, none twice) with
        bar ``i`` of ``inputs`` (one array per input): the outputs, ``[cells, outputs]``. The
        open handles are updated in one compiled call (``CFunction.update_many``)."""
        handles = np.fromiter((c.handle for c in cells), dtype=np.uint64, count=len(cells))
        return update_cells(cells[0]._fn, handles, inputs, cells.__getitem__)[0]

    def peek(self, *values: float) -> tuple[float, ...]:
        """What ``update`` would return for this bar; commits nothing."""
        if self.handle:
            return self._fn.peek(self.handle, values)
        self._learn_shape(len(values))
        valid = self._valid + 1 if self._valid or not any(map(math.isnan, values)) else 0
        if self._inside_lookback(valid):
            return self._fill
        buffer = self._buffer or [[] for _ in values]
        arrays = [np.asarray([*col, v], dtype=np.float64) for col, v in zip(buffer, values, strict=True)]
        return self._batch_last(arrays)


def update_cells(fn: CFunction, handles: np.ndarray, inputs: Sequence[FloatArray],
                 cell: Callable[[int], TalibCell]) -> tuple[FloatArray, list[int]]:
    """Bar ``i`` of ``inputs`` committed to the cell with handle ``handles[i]`` (cells of
    ``fn``, none twice): the open handles in one compiled call, a cell still buffering its
    history (handle 0; ``cell(i)``) by itself. The outputs ``[cells, outputs]``, and the rows
    answered by a buffering cell (its handle may have opened)."""
    opened = handles != 0
    if opened.all():
        return fn.update_many(handles, inputs), []
    out = np.empty((handles.shape[0], fn.n_outputs), dtype=np.float64)
    idx = np.flatnonzero(opened)
    if idx.shape[0]:
        out[idx] = fn.update_many(handles[idx], [np.asarray(a)[idx] for a in inputs])
    buffering = np.flatnonzero(~opened).tolist()
    for i in buffering:
        out[i] = cell(i).update(*(float(a[i]) for a in inputs))
    return out, buffering


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
        return batch_function(self.function), dict(self.params)

    def stream(self) -> TalibStream:
        return TalibStream(self)


class TalibStream:
    """Incremental state of a ``TalibKernel``."""

    __slots__ = ("_cell", "_inputs", "_only")

    def __init__(self, kernel: TalibKernel) -> None:
        self._inputs = kernel.inputs
        # most read one column (the close): no argument tuple to build per bar
        self._only = kernel.inputs[0] if len(kernel.inputs) == 1 else None
        self._cell = TalibCell(kernel.function, dict(kernel.params))

    @property
    def cell(self) -> TalibCell:
        return self._cell

    @property
    def inputs(self) -> tuple[str, ...]:
        return self._inputs

    def warm_up(self, history: Columns) -> None:
        self._cell.warm_up([np.asarray(history[name], dtype=np.float64) for name in self._inputs])

    def update(self, row: Row) -> tuple[float, ...]:
        if self._only is not None:
            return self._cell.update(row[self._only])
        return self._cell.update(*[row[name] for name in self._inputs])

    def peek(self, row: Row) -> tuple[float, ...]:
        if self._only is not None:
            return self._cell.peek(row[self._only])
        return self._cell.peek(*[row[name] for name in self._inputs])
