"""Indicator specs: one constructor per kind, defaults stated once, canonical names built here.

TA-Lib-backed (the Function API in batch, its stream handles incrementally; ``warmup`` is
TA-Lib's lookback + 1): ``sma``, ``ema``, ``rsi`` (Wilder), ``macd``, ``bbands``, ``stoch``
(slow stochastic, SMA smoothing), ``atr``, ``adx``, ``obv``, ``mfi``, ``cci``, ``willr``, ``roc``.
Self-written (see their kernels): ``vwap``, ``rvol``, ``pivots``, ``hilo`` (52-week high/low
distance), ``donchian``, ``bbw``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tickstock.analysis.bars import CLOSE, HIGH, LOW, SESSION, TS, VOLUME
from tickstock.analysis.kernels import pivots as _pivots
from tickstock.analysis.kernels import vwap as _vwap
from tickstock.analysis.kernels.ranges import BandwidthKernel, ChannelKernel
from tickstock.analysis.kernels.relvol import RelativeVolumeKernel
from tickstock.analysis.kernels.talib_kernel import TalibKernel, lookback
from tickstock.analysis.spec import IndicatorSpec, ParamValue, instance_name


def _talib(  # noqa: PLR0917 -- a private table-building helper, called positionally
    kind: str,
    function: str,
    inputs: tuple[str, ...],
    params: Mapping[str, ParamValue],
    name_params: tuple[ParamValue, ...],
    outputs: tuple[str, ...] = ("value",),
    description: str = "",
) -> IndicatorSpec:
    items = tuple(params.items())
    return IndicatorSpec(
        name=instance_name(kind, *name_params),
        kind=kind,
        inputs=inputs,
        params=items,
        outputs=outputs,
        warmup=lookback(function, params) + 1,
        kernel=TalibKernel(function, inputs, items),
        description=description or f"TA-Lib {function}",
    )


def sma(period: int = 20) -> IndicatorSpec:
    """Simple moving average of the close."""
    return _talib("sma", "SMA", (CLOSE,), {"timeperiod": period}, (period,))


def ema(period: int = 20) -> IndicatorSpec:
    """Exponential moving average of the close (seeded with the SMA of the first bars)."""
    return _talib("ema", "EMA", (CLOSE,), {"timeperiod": period}, (period,))


def rsi(period: int = 14) -> IndicatorSpec:
    """Wilder's relative strength index."""
    return _talib("rsi", "RSI", (CLOSE,), {"timeperiod": period}, (period,))


def macd(fast: int = 12, slow: int = 26, signal: int = 9) -> IndicatorSpec:
    """MACD line, its signal line and the histogram (``.macd``, ``.signal``, ``.hist``)."""
    params = {"fastperiod": fast, "slowperiod": slow, "signalperiod": signal}
    return _talib("macd", "MACD", (CLOSE,), params, (fast, slow, signal), ("macd", "signal", "hist"))


def bbands(period: int = 20, nbdev: float = 2.0) -> IndicatorSpec:
    """Bollinger bands: SMA +/- ``nbdev`` population standard deviations."""
    params: dict[str, ParamValue] = {
        "timeperiod": period,
        "nbdevup": float(nbdev),
        "nbdevdn": float(nbdev),
        "matype": 0,
    }
    return _talib("bbands", "BBANDS", (CLOSE,), params, (period, nbdev), ("upper", "middle", "lower"))


def stoch(fastk: int = 14, slowk: int = 3, slowd: int = 3) -> IndicatorSpec:
    """Slow stochastic %K and %D (``.k``, ``.d``), SMA smoothing."""
    params = {
        "fastk_period": fastk,
        "slowk_period": slowk,
        "slowk_matype": 0,
        "slowd_period": slowd,
        "slowd_matype": 0,
    }
    return _talib("stoch", "STOCH", (HIGH, LOW, CLOSE), params, (fastk, slowk, slowd), ("k", "d"))


def atr(period: int = 14) -> IndicatorSpec:
    """Wilder's average true range."""
    return _talib("atr", "ATR", (HIGH, LOW, CLOSE), {"timeperiod": period}, (period,))


def adx(period: int = 14) -> IndicatorSpec:
    """Average directional index."""
    return _talib("adx", "ADX", (HIGH, LOW, CLOSE), {"timeperiod": period}, (period,))


def obv() -> IndicatorSpec:
    """On-balance volume (cumulative from the first bar given)."""
    return _talib("obv", "OBV", (CLOSE, VOLUME), {}, ())


def mfi(period: int = 14) -> IndicatorSpec:
    """Money flow index."""
    return _talib("mfi", "MFI", (HIGH, LOW, CLOSE, VOLUME), {"timeperiod": period}, (period,))


def cci(period: int = 20) -> IndicatorSpec:
    """Commodity channel index."""
    return _talib("cci", "CCI", (HIGH, LOW, CLOSE), {"timeperiod": period}, (period,))


def willr(period: int = 14) -> IndicatorSpec:
    """Williams %R."""
    return _talib("willr", "WILLR", (HIGH, LOW, CLOSE), {"timeperiod": period}, (period,))


def roc(period: int = 10) -> IndicatorSpec:
    """Rate of change in percent over ``period`` bars."""
    return _talib("roc", "ROC", (CLOSE,), {"timeperiod": period}, (period,))


def vwap() -> IndicatorSpec:
    """Session VWAP with +/-1 and +/-2 sigma bands (needs ``session``; NaN without it)."""
    return IndicatorSpec(
        name="vwap",
        kind="vwap",
        inputs=_vwap.INPUTS,
        params=(),
        outputs=_vwap.OUTPUTS,
        warmup=1,
        kernel=_vwap.VwapKernel(),
        description="session VWAP and bands",
        uses_session=True,
    )


def rvol(period: int = 20) -> IndicatorSpec:
    """Relative volume vs the last ``period`` bars (daily) or sessions at this time of day."""
    return IndicatorSpec(
        name=instance_name("rvol", period),
        kind="rvol",
        inputs=(VOLUME, TS, SESSION),
        params=(("period", period),),
        outputs=("value",),
        warmup=period + 1,
        kernel=RelativeVolumeKernel(period),
        description="relative volume",
        uses_session=True,
    )


def pivots(method: _pivots.Method = "classic") -> IndicatorSpec:
    """Classic or Fibonacci pivot points from the previous period (``.p``, ``.r1`` .. ``.s3``)."""
    return IndicatorSpec(
        name=f"pivots_{method}",
        kind="pivots",
        inputs=(HIGH, LOW, CLOSE, SESSION),
        params=(("method", 0 if method == "classic" else 1),),
        outputs=_pivots.OUTPUTS,
        warmup=2,
        kernel=_pivots.PivotKernel(method),
        description=f"{method} pivot points",
        uses_session=True,
    )


def hilo(period: int = 252) -> IndicatorSpec:
    """52-week (252 daily bars) high and low and the close's distance from them.

    Outputs ``.high``, ``.low``, ``.dist_high`` (``close / high - 1``, <= 0) and ``.dist_low``
    (``close / low - 1``, >= 0).
    """
    return IndicatorSpec(
        name=instance_name("hilo", period),
        kind="hilo",
        inputs=(HIGH, LOW, CLOSE),
        params=(("period", period),),
        outputs=("high", "low", "dist_high", "dist_low"),
        warmup=period,
        kernel=ChannelKernel(period, distance=True),
        description="52-week high/low distance",
    )


def donchian(period: int = 20) -> IndicatorSpec:
    """Highest high and lowest low of the last ``period`` bars (``.upper``, ``.lower``)."""
    return IndicatorSpec(
        name=instance_name("donchian", period),
        kind="donchian",
        inputs=(HIGH, LOW),
        params=(("period", period),),
        outputs=("upper", "lower"),
        warmup=period,
        kernel=ChannelKernel(period, distance=False),
        description="Donchian channel",
    )


def bbw(period: int = 20, nbdev: float = 2.0, lookback_bars: int = 120) -> IndicatorSpec:
    """Bollinger bandwidth and its ``lookback_bars`` low and high (``.width``, ``.low``, ``.high``)."""
    bands = bbands(period, nbdev)
    upper, middle, lower = bands.columns
    return IndicatorSpec(
        name=instance_name("bbw", period, nbdev, lookback_bars),
        kind="bbw",
        inputs=(upper, middle, lower),
        params=(("period", period), ("nbdev", float(nbdev)), ("lookback", lookback_bars)),
        outputs=("width", "low", "high"),
        warmup=bands.warmup + lookback_bars - 1,
        kernel=BandwidthKernel(upper, middle, lower, lookback_bars),
        description="Bollinger bandwidth",
        depends=(bands,),
    )


def default_indicators() -> tuple[IndicatorSpec, ...]:
    """The indicator instances the daily run and the live stream compute."""
    periods = (5, 10, 20, 50, 100, 200)
    return (
        *(sma(p) for p in periods),
        *(ema(p) for p in periods),
        rsi(14),
        macd(12, 26, 9),
        bbands(20, 2.0),
        stoch(14, 3, 3),
        atr(14),
        adx(14),
        obv(),
        mfi(14),
        cci(20),
        willr(14),
        roc(10),
        vwap(),
        rvol(20),
        pivots("classic"),
        pivots("fib"),
        hilo(252),
        donchian(20),
        bbw(20, 2.0, 120),
    )
