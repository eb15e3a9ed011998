"""The live analysis spread over processes answers exactly as the in-process engine does."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
from datetime import date

import numpy as np
import pytest

from tickstock.analysis.patterns.found import Found
from tickstock.analysis.patterns.scoring import Scores
from tickstock.analysis.results import FoundRows
from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import Direction
from tickstock.market.calendar import nyse
from tickstock.market.replay import ReplayServer, SyntheticMinutes, synthetic_symbols
from tickstock.ops.roles.stream import analysis_processes
from tickstock.pipeline.stream.analysis_engine import AnalysisLiveEngine
from tickstock.pipeline.stream.bars import LiveBar, minute_bar
from tickstock.pipeline.stream.engine import BarAnalysis, ChunkAnalysis, Detection, EngineLost
from tickstock.pipeline.stream.parallel_engine import ParallelLiveEngine
from tickstock.pipeline.stream.rollup import Rollup
from tickstock.pipeline.stream.sessions import SessionLookup

from .harness import Running, Subscriber, build_service, infrastructure, until

SYMBOLS = synthetic_symbols(24)


def _bursts(minutes: int) -> list[list[LiveBar]]:
    """Each minute's bars of ``SYMBOLS`` followed by the derived bars they close."""
    session = nyse().session(date(2024, 3, 5))
    market = SyntheticMinutes(SYMBOLS, seed=5).session(session.open, session.close)
    rollup = Rollup(SessionLookup(nyse()))
    bursts = []
    for _ in range(minutes):
        burst: list[LiveBar] = []
        for b in next(market).bars():
            minute = minute_bar(b.symbol, int(b.start.timestamp() * 1000), open_=b.open,
                                high=b.high, low=b.low, close=b.close, volume=b.volume,
                                vwap=b.vwap, trades=b.trades)
            burst.append(minute)
            burst.extend(rollup.add(minute))
        bursts.append(burst)
    return bursts


def _histories(bursts: list[list[LiveBar]]) -> list[list[LiveBar]]:
    by_key: dict[tuple[str, Timeframe], list[LiveBar]] = {}
    for burst in bursts:
        for bar in burst:
            by_key.setdefault((bar.symbol, bar.timeframe), []).append(bar)
    return list(by_key.values())


def test_two_processes_answer_as_one_for_warm_up_bursts_and_peeks() -> None:
    bursts = _bursts(76)  # 60 to warm up on, 16 live (three 5-minute closes among them)
    local = AnalysisLiveEngine(SessionLookup(nyse()))
    spread = ParallelLiveEngine(2)
    try:
        assert {spread.shard(s) for s in SYMBOLS} == {0, 1}  # both children own symbols
        histories = _histories(bursts[:60])
        assert spread.warm_many(histories) == local.warm_many(histories)
        assert spread.warmup_bars(Timeframe.MIN1) == local.warmup_bars(Timeframe.MIN1)
        detections = 0
        for burst in bursts[60:75]:
            got, want = spread.update_many(burst), local.update_many(burst)
            assert got == want
            detections += sum(len(a.detections) for a in want)
        assert detections  # the comparison covered patterns, not only values
        for bar in bursts[75]:  # one at a time, each peeked before it is committed
            assert spread.peek(bar) == local.peek(bar)
            assert spread.update(bar) == local.update(bar)
    finally:
        spread.close()
    assert spread.processes == 0


def test_a_killed_analysis_process_is_reported_not_ignored() -> None:
    bursts = _bursts(62)
    spread = ParallelLiveEngine(2)
    try:
        spread.warm_many(_histories(bursts[:60]))
        os.kill(spread._procs[1].pid, signal.SIGKILL)
        spread._procs[1].join(10)
        with pytest.raises(EngineLost, match=r"process 1 is gone .*restart the role"):
            spread.update_many(bursts[60])
    finally:
        spread.close()


def test_the_number_of_processes_follows_the_setting_and_the_universe() -> None:
    assert analysis_processes(3, 10) == 3
    assert analysis_processes(0, 500) == 1
    assert analysis_processes(0, 5000) == min(os.cpu_count() or 1, 4)


@pytest.mark.integration
def test_the_stream_role_stops_when_an_analysis_process_dies(db_dsn: str, redis_url: str) -> None:
    session = nyse().session(date(2024, 3, 5))
    market = SyntheticMinutes(SYMBOLS, seed=5).session(session.open, session.close)
    frames = [next(market) for _ in range(4)]
    engine = ParallelLiveEngine(2)

    with infrastructure(db_dsn, redis_url) as (pool, client):
        subscriber = Subscriber(client).start()

        async def main() -> BaseException | None:
            async with ReplayServer("kp2") as server:
                service = build_service(pool, client, server, SYMBOLS, engine=engine)
                running = Running(service)
                await server.wait_subscribed()
                for frame in frames[:3]:
                    await server.publish(frame)
                await until(lambda: service.stats.processed == 3 * len(SYMBOLS), what="live")
                os.kill(engine._procs[0].pid, signal.SIGKILL)
                await server.publish(frames[3])
                await asyncio.wait_for(asyncio.wait([running.task]), 30)
                return running.task.exception()

        try:
            failure = asyncio.run(main())
            asyncio.run(until(lambda: bool(subscriber.of("service.error")), what="error event"))
        finally:
            subscriber.close()
            engine.close()

    assert isinstance(failure, EngineLost)
    [error] = subscriber.of("service.error")
    assert error.severity == "critical" and "analysis process 0 is gone" in error.error


def test_chunks_are_analysed_in_turn_and_an_abandoned_run_keeps_the_pipes_in_step() -> None:
    bursts = _bursts(66)
    local = AnalysisLiveEngine(SessionLookup(nyse()))
    per_bar = AnalysisLiveEngine(SessionLookup(nyse()))
    spread = ParallelLiveEngine(2)
    try:
        histories = _histories(bursts[:60])
        for engine in (local, per_bar, spread):
            engine.warm_many(histories)
        chunks = [bursts[60][:7], bursts[60][7:], bursts[61]]
        got = list(spread.update_chunks(chunks))
        assert got == list(local.update_chunks(chunks))
        # the columns hold what the bars' own analyses do, bar by bar
        assert [a for chunk in got for a in chunk.bars()] == per_bar.update_many(
            [bar for chunk in chunks for bar in chunk])
        assert [got[2].bar(i) for i in range(len(got[2]))] == got[2].bars()
        # the caller stops after the first chunk (an error while publishing it): the second,
        # already sent, is analysed and its answers read, so the next call is answered in turn
        run = spread.update_chunks([bursts[62], bursts[63]])
        next(run)
        run.close()
        local.update_many(bursts[62])
        local.update_many(bursts[63])
        assert spread.update_many(bursts[64]) == local.update_many(bursts[64])
    finally:
        spread.close()


def _one_detection(row: int) -> FoundRows:
    """A hammer on bar ``row`` as the engine answers it: columns, its confidence over 1, its
    volume score and daily context unknown."""
    def f(x: float) -> np.ndarray:
        return np.array([x])

    found = Found(np.array([0]), np.array([7]), np.array([1], dtype=np.int8), f(0.8), f(100.0),
                  f(10.5), f(11.0), f(9.5))
    scores = Scores(f(1.2), f(0.5), f(np.nan), f(0.1), f(1.5), f(9.4),
                    np.array([-1], dtype=np.int8))
    return FoundRows(("cdl_hammer",), np.array([row]), found, scores)


def test_a_chunk_analysis_holds_no_value_where_an_engine_answered_a_non_finite_one() -> None:
    found = (Detection("cdl_hammer", Direction.BULLISH, 1.0, 0.8,
                       {"level": 10.5, "stop": 9.4, "high": 11.0, "low": 9.5},
                       {"strength": 0.8, "trend": 0.5, "trend_atr": 0.1, "rvol": 1.5,
                        "metric": 100.0}, None),)
    values = np.array([[1.0, np.inf, np.nan], [2.0, 3.0, -np.inf]])
    chunk = ChunkAnalysis.of(("a", "b", "c"), values, _one_detection(1))
    assert np.isnan(chunk.values[:, 1:]).tolist() == [[True, True], [False, True]]
    assert chunk.detections == [(), found]  # confidence clipped, unknown scores left out
    assert chunk.bars() == [BarAnalysis({"a": 1.0}), BarAnalysis({"a": 2.0, "b": 3.0}, found)]
    assert [chunk.bar(i) for i in range(2)] == chunk.bars()
    assert chunk == ChunkAnalysis.of(("a", "b", "c"), chunk.values.copy(), _one_detection(1))
    assert chunk != ChunkAnalysis.of(("a", "b", "c"), chunk.values + 1, _one_detection(1))
    assert chunk != ChunkAnalysis.of(("a", "b", "c"), chunk.values.copy(), _one_detection(0))
    assert ChunkAnalysis.of(("a",), np.ones((3, 1))).detections == [(), (), ()]


def test_a_symbol_first_seen_in_a_later_chunk_is_named_to_its_process_once() -> None:
    bursts = _bursts(64)
    local = AnalysisLiveEngine(SessionLookup(nyse()))
    spread = ParallelLiveEngine(2)
    try:
        histories = _histories(bursts[:60])
        local.warm_many(histories)
        spread.warm_many(histories)
        early = set(SYMBOLS[:5])  # the other symbols' first live bars come in later chunks
        first = [b for b in bursts[60] if b.symbol in early]
        later = [b for b in bursts[60] if b.symbol not in early]
        chunks = [first, later[:9], later[9:], bursts[61]]
        assert list(spread.update_chunks(chunks)) == list(local.update_chunks(chunks))
        assert sorted(spread._ids) == sorted(SYMBOLS)  # one id a symbol, however often seen
        assert spread._unnamed == [[], []]  # every name reached its process
        assert spread.update_many(bursts[62] + bursts[63]) == local.update_many(
            bursts[62] + bursts[63])
    finally:
        spread.close()


def test_a_detection_crosses_a_pipe_unchanged() -> None:
    found = Detection("cdl_engulfing", Direction.BEARISH, 0.75, 1.5, {"stop": 10.5},
                      {"body": 2.0}, False)
    assert pickle.loads(pickle.dumps(found)) == found
    assert pickle.loads(pickle.dumps(Detection("x", Direction.NEUTRAL, 0.0))) == Detection(
        "x", Direction.NEUTRAL, 0.0)
