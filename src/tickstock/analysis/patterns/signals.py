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
The detectors are in ``signal_detectors``.
"""

from __future__ import annotations

from tickstock.analysis.bars import HIGH, LOW, OPEN
from tickstock.analysis.indicators import bbands, bbw, donchian, hilo, rsi, sma
from tickstock.analysis.patterns.scoring import SCORING_COLUMNS, SCORING_DEPENDS
from tickstock.analysis.spec import Direction, IndicatorSpec, PatternSpec, Role


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
