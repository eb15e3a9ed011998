"""``jit``: the one way analysis compiles a loop (numba), with the options exactness needs.

Compiled loops are for passes numpy cannot fuse (one pass over the rows that would otherwise be
a dozen whole-array temporaries). They keep the engines' answers bit-identical to the numpy
and pure-Python formulas they replace:

- no ``fastmath``: LLVM may then neither reassociate ``a + b + c`` nor contract ``a * b + c``
  into a fused multiply-add, so every ``+ - * /`` rounds exactly as numpy's and Python's do;
- ``error_model="numpy"``: a division by zero gives inf / NaN as in numpy instead of raising;
- ``cache=True``: the machine code is written next to the module (``__pycache__``) on the
  first call and loaded by every later process, so a role pays the compilation once per
  install, not at each start-up. Measured: the first batch call after an install compiles
  for ~18 s CPU; later processes load the cache in ~0.5 s CPU on their first call (plus
  ~1.5 s to import numba, also deferred to the first call: a role that never analyses never
  imports it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}


class _Deferred:
    """A compiled loop whose numba dispatcher is made on the first call: importing numba costs
    ~1.5 s of CPU, which every role paid at start-up although most never analyse."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.dispatcher: Callable[..., Any] | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any) -> Any:
        dispatcher = self.dispatcher or self._resolve()
        return dispatcher(*args)

    def _resolve(self) -> Callable[..., Any]:
        import numba

        # The compiled callers must see dispatchers, not this wrapper: swap every deferred
        # loop the module refers to (its own and imported ones) before anything compiles.
        module = self.fn.__globals__
        for name, value in list(module.items()):
            if isinstance(value, _Deferred):
                if value.dispatcher is None:
                    value.dispatcher = numba.njit(**_OPTIONS)(value.fn)
                module[name] = value.dispatcher
        assert self.dispatcher is not None
        return self.dispatcher


def jit(fn: F) -> F:
    """``fn`` compiled to machine code on its first call (nopython mode)."""
    return cast(F, _Deferred(fn))
