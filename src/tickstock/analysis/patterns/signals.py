"""Chart and signal patterns TA-Lib does not have, as specs with vectorised detectors.

Every pattern fires on the bar where its condition becomes true (a cross), not on every bar it
stays true, except ``volume_surge`` which fires on every bar with ``rvol >= threshold``.
``strength`` (S of the confidence formula, in [0, 1]) and ``metric`` (evidence) per kind:

=================  ===========================================  ==============================
kind               fires when (bar t)                            metric -> strength
=================  ===========================================  ==============================
ma_cross           fast MA crosses above (golden) / below        m = d*(close - slow MA)/ATR,
                   (death) the slow MA                           S = clip(m, 0, 1)
price_cross        close crosses above / below the MA            m = d*(close - MA)/ATR, same S
breakout           close crosses above the previous bar's        m = d*(close - level)/ATR,
                   N-bar high (breakdown: below its N-bar low)   same S; level = that high/low
volume_surge       rvol_20 >= threshold (2x); direction is the   m = rvol, S = clip(rvol/(2*thr))
                   candle's colour (neutral if close == open)
rsi_zone           RSI crosses into (entry) or out of (exit)     m = RSI,
                   oversold 30 / overbought 70                   S = clip(|RSI - level|/5, 0, 1)
bb_squeeze         Bollinger bandwidth falls to its 120-bar low  m = width / 120-bar widest,
                                                                 S = clip(1 - m, 0, 1)
bb_break           close crosses above the upper / below the     m = d*(close - band)/ATR,
                   lower band                                    S = clip(m, 0, 1)
gap                open above the previous high (gap up) /       m = d*(open - level)/ATR,
                   below the previous low (gap down)             S = clip(m, 0, 1); level = edge
=================  ===========================================  ==============================

RSI zones are read the conventional way: oversold entries and exits are bullish (a reversal
set-up, then its trigger), overbought ones bearish. Outcome statistics show whether that
reading has meant anything. Breakouts, crosses, band breaks and gaps are continuation
patterns for the trend-context score, RSI zones reversal patterns, a squeeze is neutral.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, HIGH, LOW, OPEN, FloatArray
from tickstock.analysis.indicators import bbands, bbw, donchian, hilo, rsi, sma
from tickstock.analysis.kernels.common import safe_ratio
from tickstock.analysis.patterns.found import Found
from tickstock.analysis.patterns.scoring import SCORING_COLUMNS, SCORING_DEPENDS
from tickstock.analysis.spec import Columns, Direction, IndicatorSpec, PatternSpec, Role

IntArray = NDArray[np.int64]
_ATR = SCORING_COLUMNS[2]


def _spec(  # noqa: PLR0917 -- a private table-building helper, called positionally
    name: str,
    kind: str,
    direction: Direction,
    role: Role,
    columns: tuple[str, ...],
    depends: tuple[IndicatorSpec, ...],
    params: dict[str, int | float],
    lag: int,
    description: str,
) -> PatternSpec:
    return PatternSpec(
        name=name,
        kind=kind,
        direction=direction,
        role=role,
        requires=(*columns, OPEN, HIGH, LOW, *SCORING_COLUMNS),
        params=tuple(params.items()),
        warmup=max([d.warmup for d in depends] + [d.warmup for d in SCORING_DEPENDS]) + lag,
        span=1,
        description=description,
        lag=lag,
        depends=(*depends, *SCORING_DEPENDS),
    )


def ma_cross(bullish: bool = True, fast: int = 50, slow: int = 200) -> PatternSpec:
    """Golden cross (fast SMA crosses above the slow one) or death cross (below)."""
    f, s = sma(fast), sma(slow)
    name = ("golden_cross" if bullish else "death_cross") + (
        "" if (fast, slow) == (50, 200) else f"_{fast}_{slow}"
    )
    return _spec(
        name,
        "ma_cross",
        "bullish" if bullish else "bearish",
        "continuation",
        (f.name, s.name),
        (f, s),
        {"fast": fast, "slow": slow},
        1,
        "moving-average cross",
    )


def price_cross(bullish: bool = True, period: int = 50) -> PatternSpec:
    """The close crosses above (or below) its ``period``-bar SMA."""
    ma = sma(period)
    name = f"cross_{'above' if bullish else 'below'}_{ma.name}"
    return _spec(
        name,
        "price_cross",
        "bullish" if bullish else "bearish",
        "continuation",
        (ma.name,),
        (ma,),
        {"period": period},
        1,
        "close crosses a moving average",
    )


def breakout(bullish: bool = True, period: int = 20) -> PatternSpec:
    """Close beyond the previous bar's ``period``-bar high (breakout) or low (breakdown).

    ``period=252`` on daily bars is the 52-week breakout (named ``breakout_52w``).
    """
    ind = hilo(period) if period == 252 else donchian(period)
    column = ind.columns[0] if bullish else ind.columns[1]
    label = "52w" if period == 252 else f"{period}d"
    name = f"{'breakout' if bullish else 'breakdown'}_{label}"
    return _spec(
        name,
        "breakout",
        "bullish" if bullish else "bearish",
        "continuation",
        (column,),
        (ind,),
        {"period": period},
        2,
        "channel breakout",
    )


def volume_surge(threshold: float = 2.0, period: int = 20) -> PatternSpec:
    """Volume at least ``threshold`` times its relative-volume average."""
    rv = SCORING_DEPENDS[2] if period == 20 else None
    if rv is None:
        raise ValueError("volume_surge reads rvol_20 (the scoring volume average)")
    return _spec(
        "volume_surge",
        "volume_surge",
        "both",
        "continuation",
        (rv.name,),
        (rv,),
        {"threshold": threshold},
        0,
        "volume surge",
    )


def rsi_zone(zone: str, event: str, period: int = 14) -> PatternSpec:
    """RSI entering (``entry``) or leaving (``exit``) the ``oversold`` (30) / ``overbought`` (70) zone."""
    r = rsi(period)
    level = 30.0 if zone == "oversold" else 70.0
    # Entering oversold is a cross down through 30; leaving it a cross up; mirrored at 70.
    down = (zone == "oversold") == (event == "entry")
    return _spec(
        f"rsi_{zone}_{event}",
        "rsi_zone",
        "bullish" if zone == "oversold" else "bearish",
        "reversal",
        (r.name,),
        (r,),
        {"level": level, "down": int(down)},
        1,
        "RSI zone",
    )


def bb_squeeze(period: int = 20, nbdev: float = 2.0, lookback_bars: int = 120) -> PatternSpec:
    """Bollinger bandwidth falls to its lowest in ``lookback_bars`` bars."""
    w = bbw(period, nbdev, lookback_bars)
    return _spec(
        "bb_squeeze", "bb_squeeze", "neutral", "neutral", w.columns, (w,), {}, 1, "Bollinger squeeze"
    )


def bb_break(bullish: bool = True, period: int = 20, nbdev: float = 2.0) -> PatternSpec:
    """Close crosses outside the upper (bullish) or lower (bearish) Bollinger band."""
    b = bbands(period, nbdev)
    column = b.columns[0] if bullish else b.columns[2]
    return _spec(
        f"bb_break_{'upper' if bullish else 'lower'}",
        "bb_break",
        "bullish" if bullish else "bearish",
        "continuation",
        (column,),
        (b,),
        {},
        1,
        "Bollinger band breakout",
    )


def gap(up: bool = True) -> PatternSpec:
    """Open above the previous bar's high (gap up) or below its low (gap down)."""
    return _spec(
        "gap_up" if up else "gap_down",
        "gap",
        "bullish" if up else "bearish",
        "continuation",
        (),
        (),
        {},
        1,
        "opening gap",
    )


def default_signals() -> tuple[PatternSpec, ...]:
    return (
        ma_cross(True), ma_cross(False),
        price_cross(True, 50), price_cross(False, 50),
        price_cross(True, 200), price_cross(False, 200),
        breakout(True, 20), breakout(False, 20),
        breakout(True, 252), breakout(False, 252),
        volume_surge(),
        rsi_zone("oversold", "entry"), rsi_zone("oversold", "exit"),
        rsi_zone("overbought", "entry"), rsi_zone("overbought", "exit"),
        bb_squeeze(), bb_break(True), bb_break(False),
        gap(True), gap(False),
    )  # fmt: skip


# -- detection -------------------------------------------------------------------------------
#
# Detectors evaluate their condition on every row of a frame; ``ok[i]`` says whether row ``i``
# may fire (it has the ``lag`` earlier rows of its own segment, and it is reported), so a
# frame of many symbols gives each one exactly its own answer.


@dataclass(frozen=True)
class _Hits:
    index: IntArray
    direction: NDArray[np.int8]
    level: FloatArray
    metric: FloatArray
    strength: FloatArray


BoolArray = NDArray[np.bool_]


def _col(cols: Columns, name: str) -> FloatArray:
    return np.asarray(cols[name], dtype=np.float64)


def _rows(cond: BoolArray, ok: BoolArray, shift: int = 0) -> IntArray:
    """Rows ``i`` with ``cond[i - shift]`` true that may fire."""
    idx = np.flatnonzero(cond) + shift
    return idx[ok[idx]]


def _cross(a: FloatArray, b: FloatArray, up: bool, ok: BoolArray) -> IntArray:
    """Rows where ``a`` crosses above (``up``) or below ``b``; NaN never crosses."""
    if up:
        return _rows((a[1:] > b[1:]) & (a[:-1] <= b[:-1]), ok, 1)
    return _rows((a[1:] < b[1:]) & (a[:-1] >= b[:-1]), ok, 1)


def _beyond(cols: Columns, idx: IntArray, d: int, price: FloatArray, level: FloatArray) -> _Hits:
    metric = safe_ratio(d * (price - level), _col(cols, _ATR)[idx])
    return _Hits(idx, np.full(idx.shape[0], d, np.int8), level, metric, np.clip(metric, 0.0, 1.0))


def _sign(spec: PatternSpec) -> int:
    return 1 if spec.direction == "bullish" else -1


def _ma_cross(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    slow = _col(cols, spec.requires[1])
    idx = _cross(_col(cols, spec.requires[0]), slow, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, _col(cols, CLOSE)[idx], slow[idx])


def _price_cross(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    ma, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    idx = _cross(close, ma, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], ma[idx])


def _breakout(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    ch, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    # close[t] beyond ch[t-1] while close[t-1] was not beyond ch[t-2]
    a, b = close[2:], ch[1:-1]
    cond = (a > b) & (close[1:-1] <= ch[:-2]) if d > 0 else (a < b) & (close[1:-1] >= ch[:-2])
    idx = _rows(cond, ok, 2)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], ch[idx - 1])


def _volume_surge(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    threshold = float(spec.param("threshold"))
    rv = _col(cols, spec.requires[0])
    idx = _rows(rv >= threshold, ok)
    if not idx.shape[0]:
        return None
    d = np.sign(_col(cols, CLOSE)[idx] - _col(cols, OPEN)[idx]).astype(np.int8)
    metric = rv[idx]
    level = np.full(idx.shape[0], np.nan)
    return _Hits(idx, d, level, metric, np.clip(metric / (2.0 * threshold), 0.0, 1.0))


def _rsi_zone(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    level = float(spec.param("level"))
    r = _col(cols, spec.requires[0])
    up = not spec.param("down")
    cond = (r[1:] > level) & (r[:-1] <= level) if up else (r[1:] < level) & (r[:-1] >= level)
    idx = _rows(cond, ok, 1)
    if not idx.shape[0]:
        return None
    metric = r[idx]
    d = np.full(idx.shape[0], _sign(spec), np.int8)
    close = _col(cols, CLOSE)[idx]
    return _Hits(idx, d, close, metric, np.clip(np.abs(metric - level) / 5.0, 0.0, 1.0))


def _bb_squeeze(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    width, low, high = (_col(cols, name) for name in spec.requires[:3])
    # The width reaches its lookback low (which includes the current bar) from above.
    idx = _rows((width[1:] <= low[1:]) & (width[:-1] > low[:-1]), ok, 1)
    if not idx.shape[0]:
        return None
    metric = safe_ratio(width[idx], high[idx])
    d = np.zeros(idx.shape[0], np.int8)
    return _Hits(idx, d, np.full(idx.shape[0], np.nan), metric, np.clip(1.0 - metric, 0.0, 1.0))


def _bb_break(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    band, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    idx = _cross(close, band, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], band[idx])


def _gap(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    opens = _col(cols, OPEN)
    edge = _col(cols, HIGH if d > 0 else LOW)
    idx = _rows(opens[1:] > edge[:-1] if d > 0 else opens[1:] < edge[:-1], ok, 1)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, opens[idx], edge[idx - 1])


DETECTORS: dict[str, Callable[[PatternSpec, Columns, BoolArray], _Hits | None]] = {
    "ma_cross": _ma_cross,
    "price_cross": _price_cross,
    "breakout": _breakout,
    "volume_surge": _volume_surge,
    "rsi_zone": _rsi_zone,
    "bb_squeeze": _bb_squeeze,
    "bb_break": _bb_break,
    "gap": _gap,
}


def detect(
    specs: tuple[PatternSpec, ...],
    offset: int,
    cols: Columns,
    pos: IntArray,
    reported: BoolArray | None = None,
) -> Found:
    """Detections of signal ``specs`` (``pattern`` numbered from ``offset``) on the frame rows
    with ``pos >= lag`` of each spec that are ``reported`` (all when ``None``)."""
    high, low = _col(cols, HIGH), _col(cols, LOW)
    masks: dict[int, BoolArray] = {}
    parts: list[Found] = []
    for k, spec in enumerate(specs):
        ok = masks.get(spec.lag)
        if ok is None:
            ok = masks[spec.lag] = pos >= spec.lag if reported is None else (pos >= spec.lag) & reported
        hits = DETECTORS[spec.kind](spec, cols, ok)
        if hits is None:
            continue
        idx = hits.index
        parts.append(
            Found(
                pattern=np.full(idx.shape[0], offset + k, np.int64),
                index=idx.astype(np.int64),
                direction=hits.direction.astype(np.int8),
                strength=hits.strength,
                metric=hits.metric,
                level=hits.level,
                high=high[idx],
                low=low[idx],
            )
        )
    return Found.concat(parts)
