"""Relative volume: a bar's volume over the average volume of comparable earlier bars.

- Without a ``session`` input (daily and longer bars): the average of the previous ``period``
  bars, ``volume[t] / SMA(volume, period)[t-1]``.
- With ``session`` (intraday): the average of the bars at the same time of day in the
  previous ``period`` sessions that have one; "time of day" is the offset from the session
  start, ``ts - session``, so DST and early closes need no special case. A minute bar at
  10:05 compares with the 10:05 bars of the last 20 sessions.

The average is TA-Lib's SMA (a TA-Lib SMA stream per time-of-day slot when incremental), so
both engines give the same number. The ratio is NaN while fewer than ``period`` comparable
bars exist and when their average is 0 (an index without volume).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tickstock.analysis.bars import SESSION, TS, VOLUME, FloatArray
from tickstock.analysis.kernels.common import ratio_to_previous, safe_ratio1
from tickstock.analysis.kernels.talib_kernel import TalibCell, batch_function
from tickstock.analysis.spec import Columns, Row

_SMA = batch_function("SMA")


def _ratio_to_previous_average(volume: FloatArray, period: int) -> FloatArray:
    return ratio_to_previous(volume, _SMA(volume, period))


@dataclass(frozen=True)
class RelativeVolumeKernel:
    period: int

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        volume = np.asarray(cols[VOLUME], dtype=np.float64)
        session = cols.get(SESSION)
        if session is None:
            return (_ratio_to_previous_average(volume, self.period),)
        slot = np.asarray(cols[TS], dtype=np.int64) - np.asarray(session, dtype=np.int64)
        order = np.argsort(slot, kind="stable")
        sorted_slots = slot[order]
        bounds = np.flatnonzero(sorted_slots[1:] != sorted_slots[:-1]) + 1
        out = np.empty(volume.shape[0], dtype=np.float64)
        for idx in np.split(order, bounds):
            out[idx] = _ratio_to_previous_average(volume[idx], self.period)
        return (out,)

    def stream(self) -> RelativeVolumeStream:
        return RelativeVolumeStream(self.period)


class _Slot:
    """The SMA of one time-of-day slot and its value after the last committed bar.

    Most slots of a young history hold a few volumes (a minute slot gets one bar a session):
    they keep them in a list, and open a TA-Lib SMA cell only once ``period`` are there (the
    batch answer before that is NaN, and at that bar the batch SMA over the kept volumes)."""

    __slots__ = ("average", "cell", "period", "volumes")

    def __init__(self, period: int) -> None:
        self.period = period
        self.cell: TalibCell | None = None
        self.volumes: list[float] = []
        self.average = math.nan

    def seed(self, volumes: FloatArray) -> None:
        """Start from the slot's stored volumes, oldest first."""
        if volumes.shape[0] < self.period:
            self.volumes = volumes.tolist()
            return
        self.cell = TalibCell("SMA", {"timeperiod": self.period})
        self.cell.warm_up([volumes])
        self.average = float(_SMA(volumes, self.period)[-1])

    def add(self, volume: float) -> None:
        """Commit one bar's volume."""
        if self.cell is not None:
            self.average = self.cell.update(volume)[0]
            return
        self.volumes.append(volume)
        if len(self.volumes) >= self.period:
            volumes, self.volumes = np.array(self.volumes, dtype=np.float64), []
            self.seed(volumes)


class RelativeVolumeStream:
    __slots__ = ("_period", "_slots")

    def __init__(self, period: int) -> None:
        self._period = period
        self._slots: dict[int, _Slot] = {}

    @staticmethod
    def _key(row: Row) -> int:
        session = row.get(SESSION)
        return 0 if session is None else int(row[TS]) - int(session)

    def warm_up(self, history: Columns) -> None:
        self._slots = {}
        volume = np.asarray(history[VOLUME], dtype=np.float64)
        session = history.get(SESSION)
        if session is None:
            keys = np.zeros(volume.shape[0], dtype=np.int64)
        else:
            keys = np.asarray(history[TS], dtype=np.int64) - np.asarray(session, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        bounds = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        for idx in np.split(order, bounds) if order.shape[0] else []:
            slot = _Slot(self._period)
            slot.seed(volume[idx])
            self._slots[int(keys[idx[0]])] = slot

    def update(self, row: Row) -> tuple[float, ...]:
        key = self._key(row)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(self._period)
        volume = row[VOLUME]
        out = safe_ratio1(volume, slot.average)
        slot.add(volume)
        return (out,)

    @staticmethod
    def update_many(streams: Sequence[RelativeVolumeStream], cols: Columns) -> tuple[FloatArray, ...]:
        """``update`` of ``streams[i]`` (none twice) with row ``i`` of ``cols``; the slots
        with an SMA cell advance in one ``TalibCell.update_many``."""
        volume = np.asarray(cols[VOLUME], dtype=np.float64)
        session = cols.get(SESSION)
        keys = ([0] * len(streams) if session is None
                else (np.asarray(cols[TS], dtype=np.int64) - np.asarray(session, dtype=np.int64)).tolist())
        slots = []
        for stream, key in zip(streams, keys, strict=True):
            slot = stream._slots.get(key)
            if slot is None:
                slot = stream._slots[key] = _Slot(stream._period)
            slots.append(slot)
        average = np.array([slot.average for slot in slots], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(average > 0, volume / average, np.nan)
        opened = [i for i, slot in enumerate(slots) if slot.cell is not None]
        if opened:
            cells = [cell for cell in (slots[i].cell for i in opened) if cell is not None]
            updated = TalibCell.update_many(cells, [volume[opened]])[:, 0].tolist()
            for i, value in zip(opened, updated, strict=True):
                slots[i].average = value
        if len(opened) < len(slots):
            has_cell = set(opened)
            for i, slot in enumerate(slots):
                if i not in has_cell:
                    slot.add(float(volume[i]))
        return (out,)

    def peek(self, row: Row) -> tuple[float, ...]:
        slot = self._slots.get(self._key(row))
        return (math.nan if slot is None else safe_ratio1(row[VOLUME], slot.average),)
