"""The synthetic market's generator: deterministic, vectorised, the same bar whatever the range,
and cheap for any range: a bar costs the same whether it is the only one asked for or one of
forty years.

Daily bars: a symbol's sessions are cut into blocks of ``BLOCK`` sessions (the calendar's
session positions 0..63, 64..127, ...). Two counter-based generators keyed by (seed, symbol):

- a *coarse* one draws a few numbers per block for the whole calendar (a few hundred draws):
  the block's regime (drift and volatility: the walk's regime switches every block), and the
  sum of its idiosyncratic moves. Their running sum is the walk at every block boundary;
- a *fine* one, addressed by the block (its counter is the block's position), draws each
  session of the block: its move, overnight gap, wicks and volume. The moves are bridged so
  that they add up to the block's coarse sum, so a block is generated without the blocks
  before it.

Log returns are a regime-switching random walk plus a market factor shared by all symbols (so
they are correlated, as real stocks are), overnight gaps, and volume that grows with the size
of the move and spikes. A walk over 45 years wanders to absurd prices: it is pulled back
towards a slow trend (growth ~7%/year) anchored at a reference session (~2020, where prices
are 10..400 like typical US stocks), by subtracting most of its trailing mean over ~8 blocks
(taken at block boundaries, interpolated inside a block).

Minute bars of a session are drawn from a generator keyed by (seed, symbol) whose counter is
the session's position in the calendar: random access, so any range of days is cheap. The
minute path is a Brownian bridge from the day's open to its close inside its [low, high]; it
touches both; minute volumes follow the intraday U-shape and sum to the day's volume. So bars
derived from the minutes equal the daily bar exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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

BLOCK = 64  # sessions per daily block (and per regime)
_DAILY_DRAWS = 12  # uniforms per session of a daily block: 6 normals, 3 uniforms, 3 spare
_DAILY_COUNTERS_PER_BLOCK = BLOCK * _DAILY_DRAWS // 4
_ANCHOR_BLOCKS = 8  # boundaries in the trailing mean the walk is pulled towards (~500 sessions)
_REVERSION = 0.85
_TREND = 0.00027  # log growth per session (~7%/year)
_GAP_P, _GAP_SIZE, _OVERNIGHT = 0.03, 3.0, 0.25
_SPIKE_P = 0.015
# Variance of one session's idiosyncratic move, in units of the regime's volatility squared:
# the intraday move (1), the overnight noise (0.25^2) and a gap (p x 3^2).
_MOVE_VARIANCE = 1.0 + _OVERNIGHT**2 + _GAP_P * _GAP_SIZE**2
assert (BLOCK * _DAILY_DRAWS) % 4 == 0


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


@dataclass(frozen=True, eq=False)
class Market:
    """The market factor: daily log return shared by every symbol, over whole blocks (zero
    after the calendar's last session), and its running sum (``cum[t]``: sessions before t)."""

    sessions: int
    factor: F64
    cum: F64

    @property
    def blocks(self) -> int:
        return len(self.factor) // BLOCK


def market_factor(seed: int, n: int) -> Market:
    """The market factor of a calendar of ``n`` sessions."""
    rng = np.random.Generator(np.random.Philox(key=key(seed, "", "market")))
    regime = np.cumsum(rng.random(n) < 1 / 120)
    stress = np.where(rng.random(int(regime[-1]) + 1) < 0.15, 2.2, 1.0)[regime]
    factor = np.zeros(-(-n // BLOCK) * BLOCK)
    factor[:n] = 0.008 * stress * rng.standard_normal(n)
    return Market(n, factor, np.concatenate([[0.0], np.cumsum(factor)]))


@dataclass(frozen=True, eq=False)
class Coarse:
    """One symbol's constants and per-block draws over the whole calendar (a few hundred
    numbers): what any block needs from the blocks before it."""

    ref_price: float
    beta: float
    base_volume: float
    drift: F64  # per block: the regime's drift (log return per session)
    vol: F64  # per block: the regime's volatility (sd of the daily log return)
    sums: F64  # per block: the sum of its sessions' idiosyncratic moves
    walk: F64  # per boundary k (before session k * BLOCK): the walk, market included
    anchor: F64  # per boundary: the trailing mean of ``walk`` the walk is pulled towards
    level: float  # the pulled-back walk at the reference boundary


def coarse(seed: int, symbol: str, market: Market) -> Coarse:
    """The coarse draws of ``symbol``; cost ~0.2 ms whatever the calendar's length."""
    return coarses(seed, [symbol], market)[0]


def coarses(seed: int, symbols: Sequence[str], market: Market) -> list[Coarse]:
    """``coarse`` of each symbol, the arithmetic done once for all of them."""
    blocks, ns = market.blocks, len(symbols)
    if not ns:
        return []
    consts = np.empty((ns, 4))
    drift, vol, sums = (np.empty((ns, blocks)) for _ in range(3))
    for i, symbol in enumerate(symbols):
        rng = np.random.Generator(np.random.Philox(key=key(seed, symbol, "daily")))
        consts[i, 0] = rng.uniform(np.log(10.0), np.log(400.0))
        consts[i, 1] = rng.uniform(0.5, 1.5)
        consts[i, 2] = rng.uniform(0.008, 0.02)
        consts[i, 3] = rng.normal(13.8, 1.0)
        drift[i] = rng.normal(0.0, 0.0012, blocks)
        vol[i] = rng.normal(0.0, 0.35, blocks)
        sums[i] = rng.standard_normal(blocks)
    ref_price, beta, base_vol, base_volume = np.exp(consts[:, 0]), consts[:, 1], consts[:, 2], \
        np.exp(consts[:, 3])
    vol = base_vol[:, None] * np.exp(vol)
    sums = sums * vol * np.sqrt(BLOCK * _MOVE_VARIANCE)
    walk = np.concatenate([np.zeros((ns, 1)), np.cumsum(sums + BLOCK * drift, axis=1)], axis=1)
    walk += beta[:, None] * market.cum[::BLOCK]
    csum = np.concatenate([np.zeros((ns, 1)), np.cumsum(walk, axis=1)], axis=1)
    idx = np.arange(1, walk.shape[1] + 1)
    lo = np.maximum(idx - _ANCHOR_BLOCKS, 0)
    anchor = (csum[:, idx] - csum[:, lo]) / (idx - lo)
    ref = min(_REFERENCE_SESSION // BLOCK, blocks)
    level = walk[:, ref] - _REVERSION * anchor[:, ref]
    return [Coarse(float(ref_price[i]), float(beta[i]), float(base_volume[i]), drift[i], vol[i],
                   sums[i], walk[i], anchor[i], float(level[i])) for i in range(ns)]


@dataclass(frozen=True, eq=False)
class DailyPath:
    """One symbol's daily OHLCV over consecutive sessions (index 0 = session ``first``)."""

    first: int
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    volatility: F64  # the day's regime volatility (daily log-return sd)


def daily_path(seed: int, symbol: str, market: Market, first: int, last: int, *,
               c: Coarse | None = None) -> DailyPath:
    """Sessions ``first .. last - 1`` (calendar positions) of ``symbol``'s daily history, from
    the blocks that hold them: ~0.3 ms for one block (a daily top-up), ~8 ms for the whole
    calendar (the former whole-history generator: ~3.5 ms for any range)."""
    return daily_paths(seed, [symbol], market, first, last,
                       drawn=[c or coarse(seed, symbol, market)])[0]


def daily_paths(seed: int, symbols: Sequence[str], market: Market, first: int, last: int, *,
                drawn: Sequence[Coarse]) -> list[DailyPath]:
    """``daily_path`` of each symbol (``drawn``: their coarse draws, in order), the arithmetic done once
    for all of them (each symbol's values equal ``daily_path``'s): a one-session top-up of a
    few hundred symbols costs their draws, not a few dozen array operations each."""
    last = max(min(last, market.sessions), first)
    if first >= last or not symbols:
        empty = np.empty(0)
        return [DailyPath(first, empty, empty, empty, empty, empty, empty) for _ in symbols]
    k0, k1 = first // BLOCK, max(-(-last // BLOCK), first // BLOCK + 1)
    nb, ns = k1 - k0, len(symbols)
    draws = nb * BLOCK * _DAILY_DRAWS
    raw = np.empty((ns, draws), dtype=np.uint64)
    for i, symbol in enumerate(symbols):
        bitgen = np.random.Philox(key=key(seed, symbol, "daily-block"),
                                  counter=[k0 * _DAILY_COUNTERS_PER_BLOCK, 0, 0, 0])
        raw[i] = bitgen.random_raw(draws)
    u = _uniforms(raw).reshape(ns, nb, BLOCK, _DAILY_DRAWS)
    z0, z1 = _normal_pair(u[..., 0], u[..., 1])
    z2, z3 = _normal_pair(u[..., 2], u[..., 3])
    z4, _ = _normal_pair(u[..., 4], u[..., 5])
    vol = np.stack([c.vol[k0:k1] for c in drawn])[:, :, None]
    gaps = np.where(u[..., 6] < _GAP_P, z1 * _GAP_SIZE * vol, 0.0)
    spikes = np.where(u[..., 7] < _SPIKE_P, 2.0 + 4.0 * u[..., 8], 1.0)
    overnight = gaps + _OVERNIGHT * vol * z2
    log_close, prev_close = _log_closes(drawn, market, k0, k1, overnight + vol * z0)
    start = k0 * BLOCK
    log_open = np.concatenate([prev_close[:, None], log_close[:, :-1]], axis=1) \
        + overnight.reshape(ns, -1)
    sl = slice(first - start, last - start)
    vol_s = np.broadcast_to(vol, (ns, nb, BLOCK)).reshape(ns, -1)[:, sl]
    z3, z4 = z3.reshape(ns, -1)[:, sl], z4.reshape(ns, -1)[:, sl]
    spikes = spikes.reshape(ns, -1)[:, sl]
    o = np.round(np.exp(log_open[:, sl]), 2).clip(0.01)
    cl = np.round(np.exp(log_close[:, sl]), 2).clip(0.01)
    top, bottom = np.maximum(o, cl), np.minimum(o, cl)
    h = np.maximum(np.round(top * np.exp(np.abs(z3) * vol_s * 0.6), 2), top)
    lo = np.minimum(np.round(bottom * np.exp(-np.abs(z4) * vol_s * 0.6), 2), bottom).clip(0.01)
    move = np.abs(np.log(cl / o)) / vol_s
    base_volume = np.array([c.base_volume for c in drawn])[:, None]
    volume = np.maximum(
        np.round(base_volume * np.exp(0.35 * z4 + 0.25 * move) * spikes / 100.0) * 100.0, 100.0)
    return [DailyPath(first, o[i], h[i], lo[i], cl[i], volume[i], vol_s[i].copy())
            for i in range(ns)]


def _log_closes(drawn: Sequence[Coarse], market: Market, k0: int, k1: int, moves: F64
                ) -> tuple[F64, F64]:
    """Per symbol (``moves``: their idiosyncratic moves, shape (symbols, blocks, BLOCK)), log
    closes of every session of blocks ``k0 .. k1 - 1`` and the log close before the first."""
    nb = k1 - k0
    sums = np.stack([c.sums[k0:k1] for c in drawn])
    walks = np.stack([c.walk for c in drawn])
    anchors = np.stack([c.anchor for c in drawn])
    drift = np.stack([c.drift[k0:k1] for c in drawn])
    beta = np.array([c.beta for c in drawn])[:, None, None]
    # Bridge: the block's moves shifted evenly so they add up to its coarse sum.
    moves = moves + ((sums - moves.sum(axis=2)) / BLOCK)[:, :, None]
    j = np.arange(1, BLOCK + 1, dtype=np.float64)[None, None, :] / BLOCK
    t = np.arange(k0 * BLOCK, k1 * BLOCK)
    market_part = beta * (market.cum[t + 1] - market.cum[k0 * BLOCK: k1 * BLOCK:BLOCK]
                          .repeat(BLOCK)).reshape(1, nb, BLOCK)
    walk = (walks[:, k0:k1, None] + np.cumsum(moves, axis=2) + drift[:, :, None] * BLOCK * j
            + market_part)
    anchor = anchors[:, k0:k1, None] + j * (anchors[:, k0 + 1:k1 + 1] - anchors[:, k0:k1])[:, :, None]
    pulled = (walk - _REVERSION * anchor).reshape(len(drawn), -1)
    before = walks[:, k0] - _REVERSION * anchors[:, k0]  # the pulled walk before block k0
    ref = min(_REFERENCE_SESSION // BLOCK, market.blocks) * BLOCK - 1
    base = np.log(np.array([c.ref_price for c in drawn])) - np.array([c.level for c in drawn])
    log_close: F64 = base[:, None] + _TREND * (t - ref) + pulled
    return log_close, base + _TREND * (k0 * BLOCK - 1 - ref) + before


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
    """Minutes of sessions ``first_session ..`` (their counts in ``minutes``) of one symbol;
    ``day`` holds (at least) those sessions."""
    days = len(minutes)
    sl = slice(first_session - day.first, first_session - day.first + days)
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
