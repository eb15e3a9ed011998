"""The 61 TA-Lib candlestick patterns as pattern specs (detected in ``detect`` / ``assemble``).

TA-Lib reports a pattern on a bar as a signed integer: +100 / -100 (bullish / bearish), +-80 for
the weaker "partial" engulfing and harami forms, +-200 for a confirmed hikkake. The spec of each
pattern fixes what that sign means:

- ``both``: the sign is the direction (engulfing, harami, belt hold, ...);
- ``bullish`` / ``bearish``: the pattern has one meaning whatever TA-Lib's sign (a gravestone
  doji is reported as +100 but is read as a bearish reversal);
- ``neutral``: indecision candles (doji, spinning top, high wave, rickshaw man, short line).

``role`` is ``continuation`` for patterns that confirm the trend they appear in (rising/falling
three methods, tasuki gap, separating lines, marubozu, long line, ...), ``reversal`` for the
others; ``span`` is the number of candles the pattern covers (its high/low are the pattern's
key levels). The strength is ``|TA-Lib output| / 200`` (80 -> 0.4, 100 -> 0.5, 200 -> 1.0).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, HIGH, LOW, OPEN
from tickstock.analysis.kernels.talib_kernel import batch_function, function_names, lookback
from tickstock.analysis.patterns.scoring import SCORING_COLUMNS, SCORING_DEPENDS
from tickstock.analysis.spec import Direction, PatternSpec, Role

# function: (direction, role, span)
_TABLE: dict[str, tuple[Direction, Role, int]] = {
    "CDL2CROWS": ("bearish", "reversal", 3),
    "CDL3BLACKCROWS": ("bearish", "reversal", 3),
    "CDL3INSIDE": ("both", "reversal", 3),
    "CDL3LINESTRIKE": ("both", "continuation", 4),
    "CDL3OUTSIDE": ("both", "reversal", 3),
    "CDL3STARSINSOUTH": ("bullish", "reversal", 3),
    "CDL3WHITESOLDIERS": ("bullish", "reversal", 3),
    "CDLABANDONEDBABY": ("both", "reversal", 3),
    "CDLADVANCEBLOCK": ("bearish", "reversal", 3),
    "CDLBELTHOLD": ("both", "reversal", 1),
    "CDLBREAKAWAY": ("both", "reversal", 5),
    "CDLCLOSINGMARUBOZU": ("both", "continuation", 1),
    "CDLCONCEALBABYSWALL": ("bullish", "reversal", 4),
    "CDLCOUNTERATTACK": ("both", "reversal", 2),
    "CDLDARKCLOUDCOVER": ("bearish", "reversal", 2),
    "CDLDOJI": ("neutral", "neutral", 1),
    "CDLDOJISTAR": ("both", "reversal", 2),
    "CDLDRAGONFLYDOJI": ("bullish", "reversal", 1),
    "CDLENGULFING": ("both", "reversal", 2),
    "CDLEVENINGDOJISTAR": ("bearish", "reversal", 3),
    "CDLEVENINGSTAR": ("bearish", "reversal", 3),
    "CDLGAPSIDESIDEWHITE": ("both", "continuation", 3),
    "CDLGRAVESTONEDOJI": ("bearish", "reversal", 1),
    "CDLHAMMER": ("bullish", "reversal", 1),
    "CDLHANGINGMAN": ("bearish", "reversal", 1),
    "CDLHARAMI": ("both", "reversal", 2),
    "CDLHARAMICROSS": ("both", "reversal", 2),
    "CDLHIGHWAVE": ("neutral", "neutral", 1),
    "CDLHIKKAKE": ("both", "continuation", 3),
    "CDLHIKKAKEMOD": ("both", "continuation", 4),
    "CDLHOMINGPIGEON": ("bullish", "reversal", 2),
    "CDLIDENTICAL3CROWS": ("bearish", "reversal", 3),
    "CDLINNECK": ("bearish", "continuation", 2),
    "CDLINVERTEDHAMMER": ("bullish", "reversal", 1),
    "CDLKICKING": ("both", "reversal", 2),
    "CDLKICKINGBYLENGTH": ("both", "reversal", 2),
    "CDLLADDERBOTTOM": ("bullish", "reversal", 5),
    "CDLLONGLEGGEDDOJI": ("neutral", "neutral", 1),
    "CDLLONGLINE": ("both", "continuation", 1),
    "CDLMARUBOZU": ("both", "continuation", 1),
    "CDLMATCHINGLOW": ("bullish", "reversal", 2),
    "CDLMATHOLD": ("bullish", "continuation", 5),
    "CDLMORNINGDOJISTAR": ("bullish", "reversal", 3),
    "CDLMORNINGSTAR": ("bullish", "reversal", 3),
    "CDLONNECK": ("bearish", "continuation", 2),
    "CDLPIERCING": ("bullish", "reversal", 2),
    "CDLRICKSHAWMAN": ("neutral", "neutral", 1),
    "CDLRISEFALL3METHODS": ("both", "continuation", 5),
    "CDLSEPARATINGLINES": ("both", "continuation", 2),
    "CDLSHOOTINGSTAR": ("bearish", "reversal", 1),
    "CDLSHORTLINE": ("neutral", "neutral", 1),
    "CDLSPINNINGTOP": ("neutral", "neutral", 1),
    "CDLSTALLEDPATTERN": ("bearish", "reversal", 3),
    "CDLSTICKSANDWICH": ("bullish", "reversal", 3),
    "CDLTAKURI": ("bullish", "reversal", 1),
    "CDLTASUKIGAP": ("both", "continuation", 3),
    "CDLTHRUSTING": ("bearish", "continuation", 2),
    "CDLTRISTAR": ("both", "reversal", 3),
    "CDLUNIQUE3RIVER": ("bullish", "reversal", 3),
    "CDLUPSIDEGAP2CROWS": ("bearish", "reversal", 3),
    "CDLXSIDEGAP3METHODS": ("both", "continuation", 3),
}

CANDLE_INPUTS = (OPEN, HIGH, LOW, CLOSE)
_SIGN = {"bullish": 1, "bearish": -1, "neutral": 0, "both": 2}


def candle_name(function: str) -> str:
    """``CDLENGULFING`` -> ``cdl_engulfing``."""
    return "cdl_" + function[3:].lower()


def candle(function: str) -> PatternSpec:
    """The pattern spec of one TA-Lib candlestick function."""
    direction, role, span = _TABLE[function]
    return PatternSpec(
        name=candle_name(function),
        kind="candle",
        direction=direction,
        role=role,
        requires=(*CANDLE_INPUTS, *SCORING_COLUMNS),
        params=(),
        warmup=lookback(function, {}) + 1,
        span=span,
        talib_function=function,
        description=f"TA-Lib {function}",
        lag=span - 1,
        depends=SCORING_DEPENDS,
    )


def all_candles() -> tuple[PatternSpec, ...]:
    """All 61 TA-Lib candlestick patterns, in TA-Lib's order."""
    functions = function_names("Pattern Recognition")
    missing = set(functions) ^ set(_TABLE)
    if missing:  # a TA-Lib upgrade added or renamed one: classify it in _TABLE
        raise RuntimeError(f"candlestick table out of date with TA-Lib: {sorted(missing)}")
    return tuple(candle(f) for f in functions)


def functions(specs: tuple[PatternSpec, ...]) -> tuple[Callable[..., NDArray[np.int32]], ...]:
    """The TA-Lib Function API of each candlestick spec (called with open, high, low, close)."""
    return tuple(batch_function(spec.talib_function) for spec in specs)


def direction_table(specs: tuple[PatternSpec, ...]) -> NDArray[np.int8]:
    """``table[p, 0 | 1]``: pattern ``p``'s direction for a negative | positive TA-Lib output."""
    table = np.zeros((len(specs), 2), dtype=np.int8)
    for p, spec in enumerate(specs):
        mode = _SIGN[spec.direction]
        table[p] = (-1, 1) if mode == 2 else (mode, mode)
    return table
