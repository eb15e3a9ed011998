"""TA-Lib's stream C API, called directly: one function over many handles per call.

``talib.stream`` wraps each handle in a Python object; a minute-boundary burst updates a
dozen handles for each of thousands of symbols, and the Python call around each C update
(argument conversion, releasing the GIL, a mutex) is most of what it costs. Here the same C
library the ``talib`` wheel loaded (``TA_<FUNCTION>_Open / _Update / _Peek / _Advance /
_Close``) is called through ``ctypes``, and ``CFunction.update_many`` runs one compiled loop
(numba) over a column of handles: the same C code, so the same numbers, bit for bit, as
``talib.stream`` and the Function API.

Signatures follow the stream API's one pattern: ``Open(handle**, inputs..., historyLen,
params..., outputs*)`` and ``Update(handle*, inputs..., outputs*)``, every input a double,
every output a double (an ``integer`` output, the candlesticks', an int), a parameter an int
or a double as its default in ``talib.abstract`` is. Functions whose inputs are not plain
price series (``MAVP``) are not supported.

TA-Lib's global settings (candle settings, unstable periods) are read while a handle opens
and updates; the project never changes them, so no lease is taken around these calls.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import numba
import numpy as np
import talib
import talib.abstract

from tickstock.analysis.bars import FloatArray
from tickstock.analysis.spec import ParamValue

_ABSTRACT: Any = talib.abstract
_U64, _DOUBLE, _INT = ctypes.c_uint64, ctypes.c_double, ctypes.c_int
_INSUFFICIENT_HISTORY = 17  # TA_INSUFFICIENT_HISTORY

#: A handle, as the C library knows it: an address (0: none).
Handle = int


class TalibCError(RuntimeError):
    """A TA-Lib stream call failed (its return code and the function are named)."""


@cache
def _library() -> ctypes.CDLL:
    """The TA-Lib C library as the ``talib`` extension sees it: opening the extension module
    again and looking symbols up in it searches its own dependencies, whichever library it was
    linked against (the wheel's bundled one, a system one, or statically).

    One ``talib.stream`` handle stays open for the life of the process: talib's own handle
    count is what keeps it from shutting TA-Lib down at exit, or changing its global settings,
    while handles are open -- and it cannot see the handles opened here."""
    import talib._ta_lib as extension
    import talib.stream

    _GUARD.append(talib.stream.SMA(np.arange(3, dtype=np.float64), timeperiod=2))
    return ctypes.CDLL(extension.__file__)


_GUARD: list[Any] = []


class CFunction:
    """One TA-Lib function's stream calls (``function`` with ``n_inputs`` series)."""

    def __init__(self, function: str, params: Mapping[str, ParamValue]) -> None:
        info = _ABSTRACT.Function(function).info
        inputs = [x for v in info["input_names"].values() for x in ([v] if isinstance(v, str) else v)]
        if "periods" in inputs:
            raise TalibCError(f"{function}: a stream of variable periods is not supported")
        defaults: dict[str, Any] = dict(info["parameters"])
        unknown = set(params) - set(defaults)
        if unknown:
            raise TalibCError(f"{function}: unknown parameters {sorted(unknown)}")
        self.function = function
        self.n_inputs = len(inputs)
        self.n_outputs = len(info["output_names"])
        self.integer = info["output_names"] == ["integer"]
        param_types: list[Any] = [_DOUBLE if isinstance(v, float) else _INT for v in defaults.values()]
        self._params = [t(params.get(name, default))
                        for t, (name, default) in zip(param_types, defaults.items(), strict=True)]
        lib = _library()
        # pointers travel as addresses (the compiled loop passes array addresses)
        ins, outs = [_DOUBLE] * self.n_inputs, [_U64] * self.n_outputs
        self._open = _bind(lib, f"TA_{function}_Open",
                           [_U64, *[_U64] * self.n_inputs, _INT, *param_types, *outs])
        self._update = _bind(lib, f"TA_{function}_Update", [_U64, *ins, *outs])
        self._peek = _bind(lib, f"TA_{function}_Peek", [_U64, *ins, *outs])
        self._advance = _bind(lib, f"TA_{function}_Advance", [_U64])
        self._close = _bind(lib, f"TA_{function}_Close", [_U64])
        self._out_type: Any = (_INT if self.integer else _DOUBLE) * self.n_outputs
        self._width = ctypes.sizeof(_INT if self.integer else _DOUBLE)
        # the same C function as a first-class value for the compiled loop, which is compiled
        # once per call signature (inputs, outputs), not once per TA-Lib function
        address = ctypes.cast(self._update, ctypes.c_void_p).value
        assert address is not None
        self._update_fn = ctypes.CFUNCTYPE(_INT, _U64, *ins, *outs)(address)
        self._loop = _loop(self.n_inputs, self.n_outputs, self.integer)

    # -- one handle (Python calls) -------------------------------------------------------------

    def open(self, history: Sequence[FloatArray] | FloatArray) -> tuple[Handle, tuple[float, ...]] | None:
        """A handle opened on ``history`` (one row per input, oldest bar first; leading bars
        NaN in any input are skipped, as the Function API skips them) and its outputs at the
        last bar; ``None`` when the history is too short."""
        rows = np.ascontiguousarray(history, dtype=np.float64)
        n = rows.shape[1]
        if not n:
            return None
        begin = 0
        if any(math.isnan(x) for x in rows[:, 0].tolist()):  # most histories start defined
            first = np.flatnonzero(~np.isnan(rows).any(axis=0))
            if not first.shape[0]:
                return None
            begin = int(first[0])
        box = _U64(0)
        out, addresses = self._outputs()
        at = rows.ctypes.data + 8 * begin
        code = self._open(ctypes.addressof(box), *[at + 8 * n * k for k in range(self.n_inputs)],
                          n - begin, *self._params, *addresses)
        if code == _INSUFFICIENT_HISTORY:
            return None
        self._check(code, "Open")
        return int(box.value), tuple(map(float, out))

    def update(self, handle: Handle, values: Sequence[float]) -> tuple[float, ...]:
        """Commit one bar; its outputs. A bar not finite is counted (``Advance``) and answered
        with NaN, so the handle stays aligned with the bars."""
        out, addresses = self._outputs()
        code = self._update(handle, *values, *addresses)
        if code:
            if all(math.isfinite(v) for v in values):
                self._check(code, "Update")
            self._check(self._advance(handle), "Advance")
            return (math.nan,) * self.n_outputs
        return tuple(float(v) for v in out)

    def peek(self, handle: Handle, values: Sequence[float]) -> tuple[float, ...]:
        """What ``update`` would return; commits nothing."""
        out, addresses = self._outputs()
        code = self._peek(handle, *values, *addresses)
        if code:
            if all(math.isfinite(v) for v in values):
                self._check(code, "Peek")
            return (math.nan,) * self.n_outputs
        return tuple(float(v) for v in out)

    def _outputs(self) -> tuple[Any, list[int]]:
        """A fresh output buffer and the address of each output in it."""
        out = self._out_type()
        at = ctypes.addressof(out)
        return out, [at + k * self._width for k in range(self.n_outputs)]

    def close(self, handle: Handle) -> None:
        """Release ``handle`` (0: nothing to release)."""
        if handle:
            self._close(handle)

    def prepare(self) -> None:
        """Compile ``update_many``'s loop for this signature now (about half a second the
        first time a signature is seen in a process), not inside the first burst."""
        self.update_many(np.zeros(0, dtype=np.uint64), [np.zeros(0)] * self.n_inputs)

    # -- many handles (one compiled loop) ------------------------------------------------------

    def update_many(self, handles: np.ndarray, inputs: Sequence[FloatArray]) -> np.ndarray:
        """``update`` of ``handles[i]`` with bar ``i`` of ``inputs`` (one array per input), for
        every ``i``: the outputs as float64 ``[n, n_outputs]``. A handle must not repeat."""
        n = handles.shape[0]
        out = np.empty((n, self.n_outputs), dtype=np.int32 if self.integer else np.float64)
        columns = [np.ascontiguousarray(a, dtype=np.float64) for a in inputs]
        failed = self._loop(self._update_fn, np.ascontiguousarray(handles, dtype=np.uint64),
                            *columns, out)
        result = out.astype(np.float64) if self.integer else out
        if failed.shape[0]:  # a bar a handle refused: NaN inputs are skipped, others an error
            for i in failed.tolist():
                values = [float(c[i]) for c in columns]
                if all(math.isfinite(v) for v in values):
                    raise TalibCError(f"TA_{self.function}_Update refused bar {i}: {values}")
                self._check(self._advance(int(handles[i])), "Advance")
                result[i] = math.nan
        return result

    def _check(self, code: int, call: str) -> None:
        if code:
            raise TalibCError(f"TA_{self.function}_{call} failed with TA-Lib return code {code}")


def _bind(lib: ctypes.CDLL, name: str, argtypes: list[Any]) -> Any:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise TalibCError(f"the TA-Lib C library has no {name} (a stream API is needed)") from None
    fn.argtypes = argtypes
    fn.restype = _INT
    return fn


@cache
def c_function(function: str, params: tuple[tuple[str, ParamValue], ...]) -> CFunction:
    """The (shared) ``CFunction`` of ``function`` with ``params``."""
    return CFunction(function, dict(params))


@cache
def _loop(n_inputs: int, n_outputs: int, integer: bool) -> Callable[..., np.ndarray]:
    """The compiled loop ``loop(update, handles, input_0, ..., out)`` calling a TA-Lib
    ``Update`` (a ctypes function of ``n_inputs`` doubles and ``n_outputs`` output pointers)
    over a column of handles; it returns the indices of the bars a handle refused. The C
    call's arity is fixed, so the loop's source is written for it."""
    width = 4 if integer else 8
    inputs = ", ".join(f"x{k}" for k in range(n_inputs))
    values = ", ".join(f"x{k}[i]" for k in range(n_inputs))
    outputs = ", ".join(f"at + {k * width}" for k in range(n_outputs))
    source = f"""
def loop(update, handles, {inputs}, out):
    base = out.ctypes.data
    failed = []
    for i in range(handles.shape[0]):
        at = base + {width * n_outputs} * i
        if update(handles[i], {values}, {outputs}):
            failed.append(i)
    return np.array(failed, dtype=np.int64)
"""
    namespace: dict[str, Any] = {"np": np}
    exec(compile(source, f"<TA-Lib update loop {n_inputs}x{n_outputs}>", "exec"), namespace)
    loop: Callable[..., np.ndarray] = numba.njit(nogil=True)(namespace["loop"])
    return loop
