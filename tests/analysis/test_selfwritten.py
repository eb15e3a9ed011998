"""Self-written indicators (not in TA-Lib): hand-computed cases, then real data.

Real-data oracles are independent pandas formulations of the documented definitions (a
different algorithm, so compared to 1e-9 relative, not bit for bit); incremental == batch on
the minute file (sessions, zero volume, warm-up mid-session) is exact.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tests.analysis.test_incremental import key
from tickstock.analysis import DEFAULT_SPECS, Bars, batch
from tickstock.analysis.incremental import Engine
from tickstock.analysis.indicators import hilo, pivots, rvol, vwap

NS = 60_000_000_000  # one minute


def make(prices: list[tuple[float, float, float]], volume: list[float], session: list[int] | None) -> Bars:
    n = len(prices)
    h, lo, c = (np.array(col, dtype=np.float64) for col in zip(*prices, strict=True))
    ts = np.arange(n, dtype=np.int64) * NS
    sess = None if session is None else np.array(session, dtype=np.int64) * NS
    return Bars("T", "1min", ts, c.copy(), h, lo, c, np.array(volume, np.float64), sess)


def flat(p: float) -> tuple[float, float, float]:
    return (p, p, p)  # typical price p


def values(bars: Bars, spec_name: str, specs: tuple[object, ...]) -> dict[str, np.ndarray]:
    result = batch.compute(bars, specs)  # type: ignore[arg-type]
    return {k: v for k, v in result.values.items() if k.split(".")[0] == spec_name}


# -- VWAP ----------------------------------------------------------------------------------


def test_vwap_by_hand() -> None:
    # session 0: p = 10 (v 100), 20 (v 300), 30 (v 0); session 3: p = 40
    bars = make([flat(10), flat(20), flat(30), flat(40)], [100, 300, 0, 50], [0, 0, 0, 3])
    v = values(bars, "vwap", (vwap(),))
    assert v["vwap.mid"].tolist() == [10.0, 17.5, 17.5, 40.0]
    sd = math.sqrt((100 * 100 + 300 * 400) / 400 - 17.5**2)  # 4.330127...
    assert v["vwap.upper1"][1] == pytest.approx(17.5 + sd, rel=1e-12)
    assert v["vwap.lower2"][2] == pytest.approx(17.5 - 2 * sd, rel=1e-12)
    assert v["vwap.upper1"][0] == 10.0 and v["vwap.upper2"][3] == 40.0  # one bar: no spread


def test_vwap_zero_volume_is_the_running_mean_until_volume_appears() -> None:
    bars = make([flat(10), flat(20), flat(30)], [0, 0, 50], [0, 0, 0])
    v = values(bars, "vwap", (vwap(),))
    assert v["vwap.mid"].tolist() == [10.0, 15.0, 30.0]
    assert v["vwap.upper1"][1] == 20.0  # sd of {10, 20} = 5
    assert v["vwap.lower1"][1] == 10.0


def test_vwap_needs_sessions() -> None:
    bars = make([flat(10), flat(20)], [1, 1], None)
    assert np.isnan(values(bars, "vwap", (vwap(),))["vwap.mid"]).all()


def test_vwap_on_the_minute_file_matches_pandas(minute_bars: Bars) -> None:
    # Oracle: per New York session, the expanding mean and population std of the typical
    # price (the index has volume 0, so every bar weighs 1 -- the documented fallback).
    frame = pd.DataFrame(
        {
            "p": (minute_bars.high + minute_bars.low + minute_bars.close) / 3.0,
            "session": minute_bars.session,
        }
    )
    grouped = frame.groupby("session")["p"]
    mid = grouped.transform(lambda s: s.expanding().mean()).to_numpy()
    sd = grouped.transform(lambda s: s.expanding().std(ddof=0)).to_numpy()
    v = values(minute_bars, "vwap", (vwap(),))
    assert len(np.unique(minute_bars.session)) == 4
    np.testing.assert_allclose(v["vwap.mid"], mid, rtol=1e-12)
    np.testing.assert_allclose(v["vwap.upper2"], mid + 2 * sd, rtol=1e-9)
    np.testing.assert_allclose(v["vwap.lower1"], mid - sd, rtol=1e-9)
    first = np.r_[True, minute_bars.session[1:] != minute_bars.session[:-1]]
    assert np.array_equal(v["vwap.mid"][first], frame["p"].to_numpy()[first])  # resets


# -- pivots --------------------------------------------------------------------------------


def test_pivots_by_hand_daily() -> None:
    bars = make([(110, 90, 100), (0.5, 0.1, 0.3)], [1, 1], None)
    classic = values(bars, "pivots_classic", (pivots("classic"),))
    fib = values(bars, "pivots_fib", (pivots("fib"),))
    assert np.isnan(classic["pivots_classic.p"][0])
    got = [classic[f"pivots_classic.{k}"][1] for k in ("p", "r1", "s1", "r2", "s2", "r3", "s3")]
    assert got == [100, 110, 90, 120, 80, 130, 70]
    got = [fib[f"pivots_fib.{k}"][1] for k in ("p", "r1", "s1", "r2", "s2", "r3", "s3")]
    assert got == pytest.approx([100, 107.64, 92.36, 112.36, 87.64, 120, 80], rel=1e-12)


def test_pivots_use_the_previous_session() -> None:
    bars = make([(105, 95, 100), (110, 98, 104), (1, 1, 1), (2, 2, 2)], [1] * 4, [0, 0, 2, 2])
    p = values(bars, "pivots_classic", (pivots("classic"),))["pivots_classic.p"]
    assert np.isnan(p[:2]).all()
    assert p[2] == p[3] == (110 + 95 + 104) / 3


def test_pivots_on_real_daily_data(daily_universe: dict[str, Bars]) -> None:
    bars = daily_universe["MSFT"]
    h, lo, c = (pd.Series(x).shift(1).to_numpy() for x in (bars.high, bars.low, bars.close))
    p = (h + lo + c) / 3
    got = batch.compute(bars, (pivots("classic"),)).values
    np.testing.assert_allclose(got["pivots_classic.r2"], p + (h - lo), rtol=1e-12)
    np.testing.assert_allclose(got["pivots_classic.s3"], lo - 2 * (h - p), rtol=1e-12)


# -- relative volume and 52-week range -----------------------------------------------------


def test_relative_volume_daily_by_hand() -> None:
    bars = make([flat(1)] * 25, list(range(1, 26)), None)
    r = values(bars, "rvol_20", (rvol(20),))["rvol_20"]
    assert np.isnan(r[:20]).all()
    assert r[20] == 21 / 10.5  # 21 over the mean of 1..20
    assert r[24] == 25 / 14.5  # 25 over the mean of 5..24


def test_relative_volume_intraday_compares_the_same_time_of_day() -> None:
    # three sessions of two bars; slot 0 volumes 10, 20, 60; slot 1 volumes 5, 5, 5
    bars = make([flat(1)] * 6, [10, 5, 20, 5, 60, 5], [0, 0, 2, 2, 4, 4])
    r = values(bars, "rvol_2", (rvol(2),))["rvol_2"]
    assert np.isnan(r[:4]).all()
    assert r[4:].tolist() == [60 / 15, 1.0]


def test_relative_volume_on_real_daily_data(daily_universe: dict[str, Bars]) -> None:
    bars = daily_universe["JPM"]
    vol = pd.Series(bars.volume)
    oracle = (vol / vol.rolling(20).mean().shift(1)).to_numpy()
    got = batch.compute(bars, (rvol(20),)).values["rvol_20"]
    np.testing.assert_allclose(got, oracle, rtol=1e-9)


def test_52_week_range_on_real_daily_data(daily_universe: dict[str, Bars]) -> None:
    bars = daily_universe["XOM"]
    hi = pd.Series(bars.high).rolling(252).max().to_numpy()
    lo = pd.Series(bars.low).rolling(252).min().to_numpy()
    got = batch.compute(bars, (hilo(252),)).values
    assert np.array_equal(got["hilo_252.high"], hi, equal_nan=True)
    np.testing.assert_allclose(got["hilo_252.dist_high"], bars.close / hi - 1, rtol=1e-12)
    np.testing.assert_allclose(got["hilo_252.dist_low"], bars.close / lo - 1, rtol=1e-12)
    assert np.nanmax(got["hilo_252.dist_high"]) <= 0 <= np.nanmin(got["hilo_252.dist_low"])


# -- incremental on the minute file --------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1000])  # 1000: a restart in the middle of session 3
def test_incremental_equals_batch_on_minute_bars(minute_bars: Bars, cut: int) -> None:
    n = len(minute_bars)
    trend = np.where(np.arange(n) < 800, 1.0, -1.0)
    trend[900:950] = np.nan  # daily context unknown for a while
    bars = Bars(
        minute_bars.symbol, minute_bars.timeframe, minute_bars.ts, minute_bars.open,
        minute_bars.high, minute_bars.low, minute_bars.close, minute_bars.volume,
        minute_bars.session, trend,
    )  # fmt: skip
    expected = batch.compute(bars, DEFAULT_SPECS)
    engine = Engine(DEFAULT_SPECS)
    if cut:
        engine.warm_up(bars.slice(0, cut))
    got: dict[str, np.ndarray] = {name: np.full(n, np.nan) for name in expected.values}
    found = []
    for i in range(cut, n):
        peeked = engine.peek(bars.bar(i))  # the forming bar, as the live stream shows it
        snap = engine.update(bars.bar(i))
        assert list(map(key, peeked.detections)) == list(map(key, snap.detections))
        for name, value in snap.values.items():
            got[name][i] = value
        found.extend(snap.detections)
    for name, column in expected.values.items():
        assert np.array_equal(got[name][cut:], column[cut:], equal_nan=True), name
    want = [d for d in expected.detections if d.ts_ns >= bars.ts[cut]]
    assert list(map(key, found)) == list(map(key, want))
    agrees = {d.daily_agrees for d in found}
    assert agrees >= {True, False, None}  # the combo flag is really computed
    assert not np.isnan(got["vwap.mid"][cut:]).any()
