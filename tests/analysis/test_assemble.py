"""The compiled detection pass equals the numpy recipes it replaced, bit for bit, on real data.

Oracles, written out here in numpy: the candle scan is ``flatnonzero`` over the stacked TA-Lib
outputs sorted by (bar, pattern); a candle's high / low is ``max`` / ``min`` of the bars it
spans (never before its symbol's first bar), its level the high when bullish, the low when
bearish; the scores follow ``scoring``'s formula as vectorised numpy. Recipe: real symbols
stacked in one frame (segment edges between them), every detection compared as bytes.
"""

from __future__ import annotations

import numpy as np

from tickstock.analysis import DEFAULT_SPECS, Bars, batch, plan
from tickstock.analysis.patterns import assemble, signal_detectors
from tickstock.analysis.patterns.detect import Frame, candle_hits, detect_frame, pattern_set
from tickstock.analysis.patterns.found import CandleHits, Found
from tickstock.analysis.patterns.scoring import W_STRENGTH, W_TREND, W_VOLUME
from tickstock.analysis.spec import PatternSpec

SYMBOLS = ("FTV", "AAPL", "KLAC", "BHF")


def _frame(universe: dict[str, Bars]) -> tuple[Frame, CandleHits, list[np.ndarray]]:
    p = plan(DEFAULT_SPECS)
    ps = pattern_set(p.patterns)
    segments, hits, raws = [], [], []
    for symbol in SYMBOLS:
        cols = batch.base_columns(universe[symbol])
        batch.indicator_columns(p, cols)
        segments.append(cols)
        hits.append(candle_hits(ps, [cols]))
        raws.append(np.stack([fn(*(cols[c] for c in ("open", "high", "low", "close")))
                              for fn in ps.candle_functions]))  # fmt: skip
    lengths = [len(universe[s]) for s in SYMBOLS]
    offsets = np.cumsum([0, *lengths])[:-1].tolist()
    together = candle_hits(ps, segments)  # one scan over the frame = the symbols' own, shifted
    for got, want in zip(
        together.__dict__.values(), CandleHits.concat(hits, offsets).__dict__.values(), strict=True
    ):
        assert got.tobytes() == want.tobytes()
    return batch.stack(ps, segments, lengths), together, raws


def test_candle_scan_is_nonzero_by_bar_then_pattern(daily_universe: dict[str, Bars]) -> None:
    _, _, raws = _frame(daily_universe)
    odd = np.zeros((61, 5), np.int32)  # 305 outputs: the last one is tested on its own
    odd[0, 0], odd[7, 2], odd[60, 4] = 100, -80, -200
    for raw in [*raws, np.zeros((61, 0), np.int32), np.zeros((61, 5), np.int32), odd]:
        flat = np.ascontiguousarray(raw, dtype=np.int32).ravel()
        pattern, index, value = assemble.candle_scan(flat, np.array([raw.shape[1]]), raw.shape[0])
        p, i = np.nonzero(raw)
        order = np.lexsort((p, i))
        assert np.array_equal(pattern, p[order]) and np.array_equal(index, i[order])
        assert np.array_equal(value, raw[p[order], i[order]].astype(np.float64))
    assert sum(int(np.count_nonzero(r)) for r in raws) > 1000


def _numpy_scores(f: Found, role_sign: np.ndarray, cols: dict[str, np.ndarray]) -> list[np.ndarray]:
    idx, d = f.index, f.direction.astype(np.int64)
    x = np.full(idx.shape[0], np.nan)
    atr = cols["atr_14"][idx]
    np.divide(cols["close"][idx] - cols["sma_50"][idx], atr, out=x, where=atr > 0)
    a = np.clip(x / 3.0, -1.0, 1.0)
    rd = role_sign[f.pattern] * d
    trend = np.where(rd < 0, (1.0 - a) / 2.0, (1.0 + a) / 2.0)
    trend[(rd == 0) | np.isnan(a)] = 0.5
    rv = cols["rvol_20"][idx]
    volume = np.where(np.isnan(rv), 0.5, np.clip(rv / 2.0, 0.0, 1.0))
    s = np.where(np.isnan(f.strength), 0.5, f.strength)
    confidence = W_STRENGTH * s
    confidence += W_TREND * trend
    confidence += W_VOLUME * volume
    stop = np.where(d > 0, f.low, f.high)
    stop[d == 0] = np.nan
    return [np.clip(confidence, 0.0, 1.0), trend, volume, x, rv, stop]


def test_detections_equal_the_numpy_formulation(daily_universe: dict[str, Bars]) -> None:
    ps = pattern_set(plan(DEFAULT_SPECS).patterns)
    frame, hits, _ = _frame(daily_universe)
    found, scores = detect_frame(ps, frame, hits)
    cols = {k: np.asarray(v) for k, v in frame.cols.items()}
    pos = frame.pos
    candle = found.pattern < len(ps.candles)
    assert candle.sum() == len(hits.index) and (~candle).sum() > 100
    for k in np.flatnonzero(candle)[::7].tolist():  # every 7th candle: its span's extremes
        p, r = int(found.pattern[k]), int(found.index[k])
        back = min(int(ps.spans[p]) - 1, int(pos[r]))
        hi, lo = cols["high"][r - back : r + 1].max(), cols["low"][r - back : r + 1].min()
        assert (found.high[k], found.low[k]) == (hi, lo)
        d = int(found.direction[k])
        assert found.level[k] == (hi if d > 0 else lo) or (d == 0 and np.isnan(found.level[k]))
    assert np.array_equal(found.strength[candle], np.abs(found.metric[candle]) / 200.0)
    for got, want in zip(_numpy_scores(found, ps.role_sign, cols), scores.__dict__.values(), strict=False):
        assert got.tobytes() == np.asarray(want).tobytes()


def test_signals_in_any_order_are_merged_by_row_then_pattern(daily_universe: dict[str, Bars]) -> None:
    ps = pattern_set(plan(DEFAULT_SPECS).patterns)
    frame, hits, _ = _frame(daily_universe)
    cols = frame.cols
    signal = signal_detectors.detect(ps.signals, len(ps.candles), cols, frame.pos)
    shuffled = signal.take(np.random.default_rng(7).permutation(len(signal)))

    def run(s: Found) -> tuple[np.ndarray, ...]:
        return assemble.assemble(
            hits.pattern, hits.index, hits.raw,
            s.pattern, s.index, s.direction, s.strength, s.metric, s.level,
            ps.tables, cols["high"], cols["low"], frame.pos,
            cols["close"], cols["sma_50"], cols["atr_14"], cols["rvol_20"], np.zeros(0),
        )  # fmt: skip

    ordered, mixed = run(signal), run(shuffled)
    keys = ordered[1] * len(ps.names) + ordered[0]
    assert np.all(np.diff(keys) > 0)
    for a, b in zip(ordered, mixed, strict=True):
        assert a.tobytes() == b.tobytes()


def _numpy_signal(  # noqa: PLR0911 -- one recipe per kind
    spec: PatternSpec, c: dict[str, np.ndarray], ok: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(rows, direction, level, metric, strength) of one signal spec, as whole-array numpy."""
    d = 1 if spec.direction == "bullish" else -1
    req, close, atr = spec.requires, c["close"], c["atr_14"]

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.full(num.shape[0], np.nan)
        np.divide(num, den, out=out, where=den > 0)
        return out

    def rows(cond: np.ndarray, shift: int) -> np.ndarray:
        idx = np.flatnonzero(cond) + shift
        return idx[ok[idx]]

    def cross(a: np.ndarray, b: np.ndarray, up: bool) -> np.ndarray:
        return rows((a[1:] > b[1:]) & (a[:-1] <= b[:-1]) if up else (a[1:] < b[1:]) & (a[:-1] >= b[:-1]), 1)

    def beyond(idx: np.ndarray, price: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, ...]:
        metric = ratio(d * (price - level), atr[idx])
        return idx, np.full(idx.shape[0], d), level, metric, np.clip(metric, 0.0, 1.0)

    if spec.kind == "ma_cross":
        fast, slow = c[req[0]], c[req[1]]
        idx = cross(fast, slow, d > 0)
        return beyond(idx, close[idx], slow[idx])
    if spec.kind in ("price_cross", "bb_break"):
        line = c[req[0]]
        idx = cross(close, line, d > 0)
        return beyond(idx, close[idx], line[idx])
    if spec.kind == "breakout":
        ch = c[req[0]]
        a, b = close[2:], ch[1:-1]
        up = (a > b) & (close[1:-1] <= ch[:-2])
        idx = rows(up if d > 0 else (a < b) & (close[1:-1] >= ch[:-2]), 2)
        return beyond(idx, close[idx], ch[idx - 1])
    if spec.kind == "gap":
        edge = c["high" if d > 0 else "low"]
        idx = rows(c["open"][1:] > edge[:-1] if d > 0 else c["open"][1:] < edge[:-1], 1)
        return beyond(idx, c["open"][idx], edge[idx - 1])
    if spec.kind == "volume_surge":
        thr = float(spec.param("threshold"))
        idx = rows(c[req[0]] >= thr, 0)
        rv = c[req[0]][idx]
        way = np.sign(close[idx] - c["open"][idx])
        return idx, way, np.full(idx.shape[0], np.nan), rv, np.clip(rv / (2.0 * thr), 0.0, 1.0)
    if spec.kind == "rsi_zone":
        lv, r = float(spec.param("level")), c[req[0]]
        down = bool(spec.param("down"))
        idx = rows((r[1:] < lv) & (r[:-1] >= lv) if down else (r[1:] > lv) & (r[:-1] <= lv), 1)
        return idx, np.full(idx.shape[0], d), close[idx], r[idx], np.clip(np.abs(r[idx] - lv) / 5.0, 0.0, 1.0)
    width, low, high = (c[name] for name in req[:3])  # bb_squeeze
    idx = rows((width[1:] <= low[1:]) & (width[:-1] > low[:-1]), 1)
    metric = ratio(width[idx], high[idx])
    return idx, np.zeros(idx.shape[0]), np.full(idx.shape[0], np.nan), metric, np.clip(1.0 - metric, 0.0, 1.0)


def test_signal_detectors_equal_the_numpy_formulation(daily_universe: dict[str, Bars]) -> None:
    ps = pattern_set(plan(DEFAULT_SPECS).patterns)
    frame, _, _ = _frame(daily_universe)
    cols = {k: np.asarray(v) for k, v in frame.cols.items()}
    reported = np.random.default_rng(3).random(frame.pos.shape[0]) < 0.7  # the live engine's mask
    for mask in (None, reported):
        found = signal_detectors.detect(ps.signals, len(ps.candles), frame.cols, frame.pos, mask)
        for k, spec in enumerate(ps.signals):
            ok = frame.pos >= spec.lag if mask is None else (frame.pos >= spec.lag) & mask
            want = _numpy_signal(spec, cols, ok)
            mine = found.pattern == len(ps.candles) + k
            assert mine.sum() > 0 and np.array_equal(found.index[mine], want[0]), spec.name
            got = (found.direction[mine], found.level[mine], found.metric[mine], found.strength[mine])
            for g, w in zip(got, want[1:], strict=True):
                assert np.array_equal(g, w.astype(g.dtype), equal_nan=True), spec.name
                assert g.astype(np.float64).tobytes() == w.astype(np.float64).tobytes(), spec.name
