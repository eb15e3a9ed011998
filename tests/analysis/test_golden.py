"""Golden test: every TA-Lib-backed output of the engine equals TA-Lib's own batch output.

Oracle recipe: for each of the 489 real daily histories (conftest: empty rows dropped,
duplicate dates keep the last row), call the TA-Lib Function API directly with the arguments
written out below -- independently of the registry -- and compare with ``batch.compute`` over
``DEFAULT_SPECS``, bit for bit (NaN where TA-Lib has NaN). Candlesticks: the engine must
report exactly the bars where TA-Lib's output is non-zero, with that raw output as evidence,
``|output| / 200`` as strength and the direction rule of the pattern table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import talib

from tickstock.analysis import CANDLE_PATTERNS, DEFAULT_SPECS, Bars, Result, batch, registry
from tickstock.analysis.bars import FloatArray

Recipe = Callable[[Bars], FloatArray]


def _recipes() -> dict[str, Recipe]:
    r: dict[str, Recipe] = {}
    for p in (5, 10, 20, 50, 100, 200):
        r[f"sma_{p}"] = lambda b, p=p: talib.SMA(b.close, timeperiod=p)
        r[f"ema_{p}"] = lambda b, p=p: talib.EMA(b.close, timeperiod=p)
    r["rsi_14"] = lambda b: talib.RSI(b.close, timeperiod=14)
    for i, out in enumerate(("macd", "signal", "hist")):
        r[f"macd_12_26_9.{out}"] = lambda b, i=i: talib.MACD(
            b.close, fastperiod=12, slowperiod=26, signalperiod=9
        )[i]
    for i, out in enumerate(("upper", "middle", "lower")):
        r[f"bbands_20_2.{out}"] = lambda b, i=i: talib.BBANDS(
            b.close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0
        )[i]
    for i, out in enumerate(("k", "d")):
        r[f"stoch_14_3_3.{out}"] = lambda b, i=i: talib.STOCH(
            b.high, b.low, b.close, fastk_period=14, slowk_period=3, slowk_matype=0,
            slowd_period=3, slowd_matype=0,
        )[i]  # fmt: skip
    r["atr_14"] = lambda b: talib.ATR(b.high, b.low, b.close, timeperiod=14)
    r["adx_14"] = lambda b: talib.ADX(b.high, b.low, b.close, timeperiod=14)
    r["obv"] = lambda b: talib.OBV(b.close, b.volume)
    r["mfi_14"] = lambda b: talib.MFI(b.high, b.low, b.close, b.volume, timeperiod=14)
    r["cci_20"] = lambda b: talib.CCI(b.high, b.low, b.close, timeperiod=20)
    r["willr_14"] = lambda b: talib.WILLR(b.high, b.low, b.close, timeperiod=14)
    r["roc_10"] = lambda b: talib.ROC(b.close, timeperiod=10)
    r["donchian_20.upper"] = lambda b: talib.MAX(b.high, timeperiod=20)
    r["donchian_20.lower"] = lambda b: talib.MIN(b.low, timeperiod=20)
    r["hilo_252.high"] = lambda b: talib.MAX(b.high, timeperiod=252)
    r["hilo_252.low"] = lambda b: talib.MIN(b.low, timeperiod=252)
    return r


RECIPES = _recipes()
DIRECTION = {"bullish": 1, "bearish": -1, "neutral": 0}


def _candle_mismatches(bars: Bars, result: Result) -> list[str]:
    det = result.detections
    names = np.array(det.names)[det.found.pattern]
    bad: list[str] = []
    for spec in CANDLE_PATTERNS:
        raw = getattr(talib, spec.talib_function)(bars.open, bars.high, bars.low, bars.close)
        expected_idx = np.flatnonzero(raw)
        mine = names == spec.name
        idx = det.found.index[mine]
        metric = det.found.metric[mine]
        if not np.array_equal(idx, expected_idx) or not np.array_equal(metric, raw[idx]):
            bad.append(f"{bars.symbol} {spec.name}: bars differ from TA-Lib")
            continue
        if not np.array_equal(det.found.strength[mine], np.abs(raw[idx]) / 200.0):
            bad.append(f"{bars.symbol} {spec.name}: strength")
        want = np.sign(raw[idx]) if spec.direction == "both" else DIRECTION[spec.direction]
        if not np.array_equal(det.found.direction[mine], np.broadcast_to(want, idx.shape)):
            bad.append(f"{bars.symbol} {spec.name}: direction")
    return bad


def test_recipes_cover_every_talib_backed_default_indicator() -> None:
    talib_backed = {
        col
        for spec in registry.DEFAULT_INDICATORS
        if type(spec.kernel).__name__ == "TalibKernel"
        for col in spec.columns
    }
    assert talib_backed <= set(RECIPES)
    assert len(CANDLE_PATTERNS) == 61 == len(talib.get_function_groups()["Pattern Recognition"])


def test_every_talib_backed_value_equals_talib_on_all_daily_symbols(
    daily_universe: dict[str, Bars],
) -> None:
    mismatches: list[str] = []
    for bars in daily_universe.values():
        result = batch.compute(bars, DEFAULT_SPECS)
        for name, recipe in RECIPES.items():
            if not np.array_equal(result.values[name], recipe(bars), equal_nan=True):
                mismatches.append(f"{bars.symbol} {name}")
        mismatches.extend(_candle_mismatches(bars, result))
    assert len(daily_universe) == 489
    assert mismatches == []
