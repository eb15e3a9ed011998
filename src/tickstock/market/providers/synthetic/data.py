"""The synthetic market's generator: deterministic, vectorised, the same bar whatever the range.

Daily bars: every symbol's whole daily history (every session of the calendar) is drawn from
one counter-based generator keyed by (seed, symbol), so a bar never depends on the requested
range. Log returns follow a regime-switching random walk (drift and volatility change every
~60 sessions), plus a market factor shared by all symbols (so they are correlated, as real
stocks are), overnight gaps, and volume that grows with the size of the move and spikes.

Minute bars of a session are drawn from a generator keyed by (seed, symbol) whose counter is
the session's position in the calendar: random access, so any range of days is cheap. The
minute path is a Brownian bridge from the day's open to its close inside its [low, high]; it
touches both; minute volumes follow the intraday U-shape and sum to the day's volume. So bars
derived from the minutes equal the daily bar exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MINUTES = 390  # minute slots drawn per session (an early close uses the first ones)
_DRAWS_PER_SESSION = 3 * MINUTES + 10  # uniforms per session; multiple of 4 (Philox block)
_BLOCKS_PER_SESSION = _DRAWS_PER_SESSION // 4
_REFERENCE_SESSION = 7560  # ~2020 when the calendar starts in 1990
assert _DRAWS_PER_SESSION % 4 == 0


def key(seed: int, symbol: str, stream: str) -> int:
    """A 128-bit generator key for one (seed, symbol, stream)."""
    digest = hashlib.blake2b(f"{seed}:{symbol}:{stream}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "little")


def _uniforms(raw: npt.NDArray[np.uint64]) -> F64:
    # 53 random bits -> (0, 1]; never 0 so log() below is finite
    result: F64 = ((raw >> np.uint64(11)).astype(np.float64) + 1.0) * (1.0 / 9007199254740992.0)
    return result


def _normal_pair(u1: F64, u2: F64) -> tuple[F64, F64]:
    """Box-Muller: two independent standard normals per pair of uniforms (fixed consumption,
    which keeps a session's draws at a fixed counter position)."""
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return radius * np.cos(angle), radius * np.sin(angle)


def market_factor(seed: int, n: int) -> F64:
    """Daily log return of the whole market, shared by every symbol."""
    rng = np.random.Generator(np.random.Philox(key=key(seed, "", "market")))
    regime = np.cumsum(rng.random(n) < 1 / 120)
    stress = np.where(rng.random(int(regime[-1]) + 1) < 0.15, 2.2, 1.0)[regime]
    result: F64 = 0.008 * stress * rng.standard_normal(n)
    return result


@dataclass(frozen=True, eq=False)
class DailyPath:
    """One symbol's daily OHLCV over every calendar session (index = session position)."""

    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    volatility: F64  # the day's regime volatility (daily log-return sd)


def daily_path(seed: int, symbol: str, market: F64) -> DailyPath:
    """The symbol's whole daily history; cost ~1 ms per 10,000 sessions."""
    n = len(market)
    rng = np.random.Generator(np.random.Philox(key=key(seed, symbol, "daily")))
    ref_price = float(np.exp(rng.uniform(np.log(10.0), np.log(400.0))))
    beta = rng.uniform(0.5, 1.5)
    base_vol = rng.uniform(0.008, 0.02)
    base_volume = float(np.exp(rng.normal(13.8, 1.0)))
    z = rng.standard_normal((5, n))
    regime = np.cumsum(rng.random(n) < 1 / 60)
    regimes = int(regime[-1]) + 1
    drift = rng.normal(0.0, 0.0012, regimes)[regime]
    vol = base_vol * np.exp(rng.normal(0.0, 0.35, regimes))[regime]
    gaps = np.where(rng.random(n) < 0.03, z[1] * 3.0 * vol, 0.0)
    spikes = np.where(rng.random(n) < 0.015, rng.uniform(2.0, 6.0, n), 1.0)

    overnight = gaps + 0.25 * vol * z[2]
    intraday = drift + beta * market + vol * z[0]
    # A random walk over 45 years wanders to absurd prices; pull the walk back towards a slow
    # trend (growth ~7%/year) anchored at a reference session (~2020), where prices are
    # 10..400 like typical US stocks.
    walk = np.cumsum(overnight + intraday)
    walk -= 0.85 * _slow_mean(walk, 500)
    t = np.arange(n, dtype=np.float64) - min(_REFERENCE_SESSION, n - 1)
    log_close = np.log(ref_price) + 0.00027 * t + walk - walk[min(_REFERENCE_SESSION, n - 1)]
    log_open = np.concatenate([[log_close[0] - intraday[0]], log_close[:-1]]) + overnight
    o = np.round(np.exp(log_open), 2).clip(0.01)
    c = np.round(np.exp(log_close), 2).clip(0.01)
    h = np.maximum(np.round(np.maximum(o, c) * np.exp(np.abs(z[3]) * vol * 0.6), 2), np.maximum(o, c))
    lo = np.minimum(np.round(np.minimum(o, c) * np.exp(-np.abs(z[4]) * vol * 0.6), 2), np.minimum(o, c))
    lo = lo.clip(0.01)
    move = np.abs(np.log(c / o)) / vol
    volume = np.round(base_volume * np.exp(0.35 * z[4] + 0.25 * move) * spikes / 100.0) * 100.0
    return DailyPath(o, h, lo, c, np.maximum(volume, 100.0), vol)


def _slow_mean(x: F64, window: int) -> F64:
    """Trailing mean over ``window`` values (a slow anchor for mean reversion)."""
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    result: F64 = (csum[idx] - csum[lo]) / (idx - lo)
    return result


@dataclass(frozen=True, eq=False)
class MinuteBlock:
    """Minute OHLCV for consecutive sessions, shape (sessions, MINUTES); unused slots are NaN."""

    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


def minute_block(
    seed: int, symbol: str, first_session: int, day: DailyPath, minutes: I64
) -> MinuteBlock:
    """Minutes of sessions ``first_session ..`` (their counts in ``minutes``) of one symbol."""
    days = len(minutes)
    sl = slice(first_session, first_session + days)
    bitgen = np.random.Philox(
        key=key(seed, symbol, "minute"), counter=[first_session * _BLOCKS_PER_SESSION, 0, 0, 0]
    )
    raw = bitgen.random_raw(days * _DRAWS_PER_SESSION)
    u = _uniforms(np.asarray(raw, dtype=np.uint64)).reshape(days, _DRAWS_PER_SESSION)
    steps, wick = _normal_pair(u[:, :MINUTES], u[:, MINUTES : 2 * MINUTES])
    noise = u[:, 2 * MINUTES : 3 * MINUTES]

    slot = np.arange(1, MINUTES + 1)
    active = slot[None, :] <= minutes[:, None]
    steps = np.where(active, steps, 0.0)
    walk = np.cumsum(steps, axis=1)
    n = minutes.astype(np.float64)[:, None]
    frac = np.minimum(slot[None, :] / n, 1.0)
    bridge = walk - frac * walk[np.arange(days), minutes - 1][:, None]
    sigma = (day.volatility[sl] / np.sqrt(MINUTES))[:, None]
    lo_d, hi_d = day.low[sl][:, None], day.high[sl][:, None]
    o_d, c_d = day.open[sl][:, None], day.close[sl][:, None]
    log_path = np.log(o_d) + frac * (np.log(c_d) - np.log(o_d)) + sigma * bridge
    close = np.round(np.exp(log_path), 2).clip(lo_d, hi_d)
    close[np.arange(days), minutes - 1] = c_d[:, 0]
    opens = np.concatenate([o_d, close[:, :-1]], axis=1)
    top = np.maximum(opens, close)
    bottom = np.minimum(opens, close)
    high = np.maximum(np.round(top * np.exp(np.abs(wick) * sigma * 0.5), 2), top).clip(None, hi_d)
    low = np.minimum(np.round(bottom * np.exp(-np.abs(wick) * sigma * 0.5), 2), bottom)
    low = low.clip(lo_d, None)
    # the day's extremes are reached by some minute
    masked_high = np.where(active, high, -np.inf)
    masked_low = np.where(active, low, np.inf)
    high[np.arange(days), np.argmax(masked_high, axis=1)] = hi_d[:, 0]
    low[np.arange(days), np.argmin(masked_low, axis=1)] = lo_d[:, 0]

    volume = _minute_volumes(day.volume[sl], minutes, noise, active)
    nan = np.nan
    return MinuteBlock(
        np.where(active, opens, nan), np.where(active, high, nan), np.where(active, low, nan),
        np.where(active, close, nan), np.where(active, volume, nan),
    )


def _minute_volumes(total: F64, minutes: I64, noise: F64, active: npt.NDArray[np.bool_]) -> F64:
    """Split each day's volume over its minutes: U-shape x noise x rare spikes, exact sum."""
    days = len(minutes)
    slot = np.arange(MINUTES)[None, :]
    half = (minutes[:, None] - 1) / 2.0
    shape = 1.0 + 2.5 * ((slot - half) / np.maximum(half, 1.0)) ** 2
    spikes = np.where(noise > 0.995, 4.0, 1.0)
    weight = np.where(active, shape * (0.5 + noise) * spikes, 0.0)
    weight /= weight.sum(axis=1, keepdims=True)
    volume = np.floor(weight * total[:, None])
    remainder = total - volume.sum(axis=1)
    volume[np.arange(days), minutes - 1] += remainder
    return volume
