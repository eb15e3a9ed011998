"""Price channels built on TA-Lib's MAX / MIN (bit-identical streams).

- ``ChannelKernel``: highest high and lowest low of the last ``period`` bars, the current bar
  included (Donchian channel; with ``distance`` also the close's fractional distance from
  them, ``close / upper - 1`` <= 0 and ``close / lower - 1`` >= 0 -- the 52-week high/low
  distance with ``period=252`` on daily bars).
- ``BandwidthKernel``: Bollinger bandwidth ``(upper - lower) / middle`` read from a
  ``bbands`` instance's outputs, with its lowest and highest value of the last ``lookback``
  bars (a squeeze is the bandwidth at its low).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickstock.analysis.bars import CLOSE, HIGH, LOW, FloatArray
from tickstock.analysis.kernels.common import distance, safe_ratio, safe_ratio1
from tickstock.analysis.kernels.talib_kernel import TalibCell, batch_function
from tickstock.analysis.spec import Columns, Row

_MAX, _MIN = batch_function("MAX"), batch_function("MIN")


@dataclass(frozen=True)
class ChannelKernel:
    period: int
    distance: bool

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        upper = _MAX(np.asarray(cols[HIGH], dtype=np.float64), self.period)
        lower = _MIN(np.asarray(cols[LOW], dtype=np.float64), self.period)
        if not self.distance:
            return upper, lower
        close = np.asarray(cols[CLOSE], dtype=np.float64)
        return upper, lower, distance(close, upper), distance(close, lower)

    def stream(self) -> ChannelStream:
        return ChannelStream(self)


class ChannelStream:
    __slots__ = ("_distance", "_max", "_min")

    def __init__(self, kernel: ChannelKernel) -> None:
        self._distance = kernel.distance
        self._max = TalibCell("MAX", {"timeperiod": kernel.period})
        self._min = TalibCell("MIN", {"timeperiod": kernel.period})

    def warm_up(self, history: Columns) -> None:
        self._max.warm_up([np.asarray(history[HIGH], dtype=np.float64)])
        self._min.warm_up([np.asarray(history[LOW], dtype=np.float64)])

    def _out(self, upper: float, lower: float, close: float) -> tuple[float, ...]:
        if not self._distance:
            return upper, lower
        return upper, lower, safe_ratio1(close, upper) - 1.0, safe_ratio1(close, lower) - 1.0

    def update(self, row: Row) -> tuple[float, ...]:
        return self._out(self._max.update(row[HIGH])[0], self._min.update(row[LOW])[0], row[CLOSE])

    def peek(self, row: Row) -> tuple[float, ...]:
        return self._out(self._max.peek(row[HIGH])[0], self._min.peek(row[LOW])[0], row[CLOSE])


@dataclass(frozen=True)
class BandwidthKernel:
    upper: str
    middle: str
    lower: str
    lookback: int

    def width(self, cols: Columns) -> FloatArray:
        up = np.asarray(cols[self.upper], dtype=np.float64)
        lo = np.asarray(cols[self.lower], dtype=np.float64)
        return safe_ratio(up - lo, np.asarray(cols[self.middle], dtype=np.float64))

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        width = self.width(cols)
        return width, _MIN(width, self.lookback), _MAX(width, self.lookback)

    def stream(self) -> BandwidthStream:
        return BandwidthStream(self)


class BandwidthStream:
    __slots__ = ("_kernel", "_max", "_min")

    def __init__(self, kernel: BandwidthKernel) -> None:
        self._kernel = kernel
        self._min = TalibCell("MIN", {"timeperiod": kernel.lookback})
        self._max = TalibCell("MAX", {"timeperiod": kernel.lookback})

    def warm_up(self, history: Columns) -> None:
        width = self._kernel.width(history)
        self._min.warm_up([width])
        self._max.warm_up([width])

    def _width(self, row: Row) -> float:
        k = self._kernel
        return safe_ratio1(row[k.upper] - row[k.lower], row[k.middle])

    def update(self, row: Row) -> tuple[float, ...]:
        w = self._width(row)
        return w, self._min.update(w)[0], self._max.update(w)[0]

    def peek(self, row: Row) -> tuple[float, ...]:
        w = self._width(row)
        return w, self._min.peek(w)[0], self._max.peek(w)[0]
