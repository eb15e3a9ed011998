"""The recorded minute file replayed through the real client into the stream role.

Oracles: the file itself (every in-session minute stored once), ``market.derive`` over the
stored minutes (derived bars), TA-Lib batch functions and the analysis package's batch engine
over the stored bars (live indicator values and pattern detections).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
import talib

from tickstock.analysis import Bars, batch
from tickstock.analysis.context import daily_trend
from tickstock.contracts.common import Timeframe
from tickstock.core.timeutil import session_day_start_utc
from tickstock.market.bars import BarFrame, datetime_to_ns, ns_to_datetime
from tickstock.market.calendar import nyse
from tickstock.market.derive import derive
from tickstock.market.replay import ReplayServer, frames_from_bars, read_minute_csv
from tickstock.pipeline.stream.analysis_engine import live_specs
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.processor import LIVE_TIMEFRAMES
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.pipeline.stream.storage import BarStore

from .harness import Running, Subscriber, build_service, infrastructure, until

SYMBOL = "SP500"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stored(db_dsn: str, timeframe: Timeframe) -> BarFrame:
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute(
            "SELECT ts, open, high, low, close, volume, vwap, source FROM bars "
            "WHERE symbol = %s AND timeframe = %s ORDER BY ts", (SYMBOL, timeframe.value),
        ).fetchall()
    assert all(r[7] == "live" for r in rows)
    return BarFrame(
        SYMBOL, timeframe, np.array([datetime_to_ns(r[0]) for r in rows], dtype=np.int64),
        *(np.array([r[i] for r in rows], dtype=np.float64) for i in range(1, 6)),
        vwap=np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64),
    )


def test_minute_file_replay_is_stored_rolled_up_analysed_and_published(
        shared_data: Path, db_dsn: str, redis_url: str) -> None:
    rows = read_minute_csv(shared_data / "intraday" / "SP500_NOV2019_IDay.csv", SYMBOL)
    frames = frames_from_bars(rows)
    in_session = [r for r in rows if nyse().is_open(r.start)]

    with infrastructure(db_dsn, redis_url) as (pool, client):
        BarStore(pool).upsert(_daily_bars())
        subscriber = Subscriber(client).start()

        async def main() -> dict[str, object]:
            async with ReplayServer("k1") as server:
                service = build_service(pool, client, server, (SYMBOL,))
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames:
                    await server.publish(frame)
                await server.drain()
                await until(lambda: service.stats.received == len(frames), what="all received")
                await service.drain()
                analyses = {(tf, datetime_to_ns(ts)): a
                            for (_, tf, ts), a in service.processor.kept.items()}
                await running.stop()
                return {"stats": service.stats, "analyses": analyses}

        result = asyncio.run(main())
        subscriber_events = subscriber
        published = result["stats"].events  # type: ignore[attr-defined]
        asyncio.run(until(lambda: subscriber.count() == published, 10, "every event"))
        subscriber.close()

    stats = result["stats"]
    minutes = _stored(db_dsn, Timeframe.MIN1)
    # every in-session minute exactly once; the three 16:00 prints counted, not stored
    assert minutes.ts.tolist() == [datetime_to_ns(r.start) for r in in_session]
    assert minutes.close.tolist() == [r.close for r in in_session]
    assert stats.outside_session == 3 and stats.duplicates == 0  # type: ignore[attr-defined]
    # derived bars are the batch derivation of the stored minutes
    derived = {}
    for tf in LIVE_TIMEFRAMES[1:]:
        stored, batch = _stored(db_dsn, tf), derive(minutes, tf, nyse())
        derived[tf] = stored
        assert stored.ts.tolist() == batch.ts.tolist(), tf
        for col in ("open", "high", "low", "close", "volume"):
            assert np.array_equal(getattr(stored, col), getattr(batch, col)), (tf, col)
    assert len(derived[Timeframe.HOUR]) == 28
    # live indicator values equal TA-Lib batch over the same stored bars, bit for bit
    analyses = result["analyses"]
    for tf, frame in [(Timeframe.MIN1, minutes), *derived.items()]:
        oracle = {"rsi_14": talib.RSI(frame.close, 14), "sma_20": talib.SMA(frame.close, 20),
                 "ema_20": talib.EMA(frame.close, 20)}
        for i, ts in enumerate(frame.ts.tolist()):
            live = analyses[(tf, ts)].values  # type: ignore[index]
            for name, values in oracle.items():
                if np.isnan(values[i]):
                    assert name not in live, (tf, i, name)
                else:
                    assert live[name] == values[i], (tf, i, name)
    # ... and every value and detection equals the analysis package's batch run over them
    detected = 0
    for tf, frame in [(Timeframe.MIN1, minutes), *derived.items()]:
        detected += _assert_batch_equal(frame, analyses, tf)  # type: ignore[arg-type]
    assert detected > 0
    # a subscriber of the event stream saw every closed bar once, and the forming ones
    finals = Counter((b.timeframe, b.ts) for b in subscriber_events.of("bar.live") if b.final)
    assert len(finals) == 1560 + sum(len(f) for f in derived.values())
    assert set(finals.values()) == {1}
    # each final bar carries the bar's live indicator values
    for b in subscriber_events.of("bar.live"):
        if b.final:
            assert b.indicators == analyses[(b.timeframe, datetime_to_ns(b.ts))].values  # type: ignore[index]
    forming = [b for b in subscriber_events.of("bar.live") if not b.final]
    assert {b.timeframe for b in forming} == set(LIVE_TIMEFRAMES[1:])
    patterns = subscriber_events.of("pattern.detected")
    assert len(patterns) == detected
    # the daily trend turned during the month: intraday detections both agree and disagree
    assert {p.daily_agrees for p in patterns} >= {True, False}
    with psycopg.connect(db_dsn) as conn:
        stored_patterns = conn.execute("SELECT count(*) FROM pattern_detections "
                                       "WHERE source = 'live' AND symbol = %s", (SYMBOL,)).fetchone()
        # with the inputs of their confidence, as the nightly run stores its own
        explained = conn.execute(
            "SELECT count(*) FROM pattern_detections WHERE source = 'live' AND symbol = %s "
            "AND evidence ? 'strength'", (SYMBOL,)).fetchone()
    assert stored_patterns == (detected,)
    assert explained == (detected,)
    assert all(0 <= p.confidence <= 1 and p.source == "live" for p in patterns)
    alerts = subscriber_events.of("indicator.alert")
    assert {a.condition for a in alerts} >= {"cross_above", "cross_below"}  # RSI 30/70


def _assert_batch_equal(frame: BarFrame, analyses: dict[tuple[Timeframe, int], object],
                        tf: Timeframe) -> int:
    """Live values and detections of every bar of ``frame`` against ``analysis.batch``."""
    sessions = SessionLookup(nyse())
    opens = [sessions.session_of(ns_to_datetime(ts)) for ts in frame.ts.tolist()]
    assert all(opens)
    session = np.array([datetime_to_ns(s.open) for s in opens if s])
    daily = _daily_bars()
    trend = daily_trend(Bars(SYMBOL, "day", np.array([datetime_to_ns(b.start) for b in daily]),
                             *(np.array([getattr(b, c) for b in daily]) for c in PRICES)),
                        session)
    bars = Bars(SYMBOL, tf.value, frame.ts, frame.open, frame.high, frame.low, frame.close,
                frame.volume, session=session, daily_trend=trend)
    result = batch.compute(bars, live_specs())
    found = {(d.ts_ns, d.pattern): d for d in result.detections}
    for i, ts in enumerate(frame.ts.tolist()):
        live = analyses[(tf, ts)]
        expected = {k: float(v[i]) for k, v in result.values.items() if not np.isnan(v[i])}
        assert live.values == expected, (tf, i)  # type: ignore[attr-defined]
        mine = {(ts, d.pattern): d for d in live.detections}  # type: ignore[attr-defined]
        assert mine.keys() == {k for k in found if k[0] == ts}, (tf, i)
        for key, d in mine.items():
            assert (d.direction.value, d.confidence, d.daily_agrees) == (
                found[key].direction, found[key].confidence, found[key].daily_agrees), key
    return len(found)


PRICES = ("open", "high", "low", "close", "volume")


def _daily_bars() -> list[LiveBar]:
    """Daily bars of the symbol up to the replayed month: rising into mid-November, then
    falling, so the daily trend turns from up to down during the replay."""
    days = nyse().session_days(date(2019, 6, 1), date(2019, 11, 29))
    closes = [3000.0 + 5 * i if day < date(2019, 11, 14) else 3000.0 + 5 * i - 80 * (i - 114)
              for i, day in enumerate(days)]
    return [LiveBar(SYMBOL, Timeframe.DAY, session_day_start_utc(day),
                    session_day_start_utc(day) + timedelta(days=1), c, c + 10, c - 10, c, 1e9)
            for day, c in zip(days, closes, strict=True)]
