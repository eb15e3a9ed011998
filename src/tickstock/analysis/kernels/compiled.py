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
  ~0.5 s to import numba).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(fn: F) -> F:
    """``fn`` compiled to machine code on its first call (nopython mode)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))
