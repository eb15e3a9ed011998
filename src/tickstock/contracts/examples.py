"""An example payload of every message type: shown in ``docs/contract.md`` and used by tests
(round trips, fuzzing) and by anyone who needs a valid message of a given type."""

from __future__ import annotations

from datetime import UTC, datetime

from tickstock.contracts import commands as c
from tickstock.contracts import events as e
from tickstock.contracts import jobs as j
from tickstock.contracts.common import Payload, Phase, Timeframe

T0 = datetime(2025, 1, 2, tzinfo=UTC)
T1 = datetime(2025, 2, 3, tzinfo=UTC)

EXAMPLES: dict[str, Payload] = {
    p.message_type: p
    for p in (
        c.TriggerDailyProcessing(universes=("sp500",), skip_market_check=True, requested_by="ann"),
        c.TriggerDataImport(symbols=("AAPL",), timeframes=(Timeframe.DAY, Timeframe.HOUR)),
        c.TriggerIndicatorProcessing(universes=("dow30",), indicators=("rsi_14",)),
        c.TriggerPatternDetection(symbols=("MSFT",), patterns=("cdl_engulfing",)),
        c.Cancel(job_id="job-1"),
        c.RetryFailedImports(source_id="run-1"),
        c.UpdateSchedule(enabled=True, run_at="16:30", phases=(Phase.DATA_IMPORT,)),
        j.HistoricalLoad(symbols=("AAPL", "BRK.B"), start=T0, end=T1),
        j.UniverseSeed(universe="sp500", start=T0, end=T1, provider="synthetic"),
        j.MultiTimeframeLoad(universe="dow30", timeframes=(Timeframe.DAY, Timeframe.MIN5),
                             start=T0, end=T1),
        j.RunPhaseBatch(run_id="run-1", phase=Phase.INDICATORS, batch_no=3, symbols=("AAPL",)),
        j.FileImport(path="/data/aapl.csv.gz", symbol="AAPL", timeframe=Timeframe.DAY),
        e.JobSubmitted(job_id="job-1", job_type="job.historical_load", params={"a": 1}),
        e.JobStarted(job_id="job-1", job_type="job.historical_load", worker="w1"),
        e.JobProgress(job_id="job-1", total=10, processed=3, failed=1, percent=30.0),
        e.JobSymbolDone(job_id="job-1", symbol="AAPL", timeframe=Timeframe.DAY, bars=250),
        e.JobCompleted(job_id="job-1", total=10, processed=10, duration_s=1.5),
        e.JobFailed(job_id="job-1", error="boom"),
        e.JobCancelled(job_id="job-1", total=10, processed=4),
        e.RunStarted(run_id="run-1", trigger_type="scheduled", phases=(Phase.DATA_IMPORT,),
                     session_date="2025-01-02"),
        e.RunProgress(run_id="run-1", phase=Phase.INDICATORS, total=5, processed=2),
        e.RunCompleted(run_id="run-1", duration_s=12.0, symbols_processed=500),
        e.RunFailed(run_id="run-1", phase=Phase.PATTERNS, error="db down"),
        e.RunCancelled(run_id="run-1"),
        e.RunPhaseStarted(run_id="run-1", phase=Phase.DATA_IMPORT, total=500),
        e.RunPhaseProgress(run_id="run-1", phase=Phase.DATA_IMPORT, total=500, processed=10),
        e.RunPhaseCompleted(run_id="run-1", phase=Phase.DATA_IMPORT, processed=500),
        e.RunPhaseFailed(run_id="run-1", phase=Phase.OUTCOMES, error="x"),
        e.ScheduleChanged(enabled=True, run_at="16:10", next_run_at=T1),
        e.PatternDetected(symbol="AAPL", timeframe=Timeframe.DAY, ts=T0, pattern="cdl_hammer",
                          direction=e.Direction.BULLISH, confidence=0.7, levels={"stop": 1.5}),
        e.PatternDetectedBatch(timeframe=Timeframe.MIN5, ts=T0, source="live",
                               symbols=("AAPL", "MSFT"), pattern=("cdl_hammer", "cdl_engulfing"),
                               direction=(e.Direction.BULLISH, e.Direction.BEARISH),
                               confidence=(0.7, 0.55), strength=(1.0, None),
                               price=(181.25, 402.5), levels=({"stop": 180.5}, {}),
                               daily_agrees=(True, None)),
        e.IndicatorAlert(symbol="AAPL", timeframe=Timeframe.MIN1, ts=T0, indicator="rsi_14",
                         value=71.2, condition="rsi_14 > 70", threshold=70.0),
        e.IndicatorAlertBatch(timeframe=Timeframe.MIN1, ts=T0, symbols=("AAPL", "MSFT"),
                              indicator=("rsi_14", "volume"), value=(71.2, 3.0e6),
                              condition=("cross_above", "surge"), threshold=(70.0, 9.0e5),
                              message=("rsi_14 crossed above 70 (71.2)", None)),
        e.BarLive(symbol="AAPL", timeframe=Timeframe.MIN1, ts=T0, open=1, high=2, low=0.5,
                  close=1.5, volume=100),
        e.BarLiveBatch(timeframe=Timeframe.MIN1, ts=T0, final=True, symbols=("AAPL", "MSFT"),
                       open=(1, 2), high=(2, 3), low=(0.5, 1.5), close=(1.5, 2.5),
                       volume=(100, 50), vwap=(1.25, None), trades=(10, None),
                       indicators={"rsi_14": (55.5, None)}),
        e.ServiceError(role="worker", instance="w1", error="redis down"),
        e.CommandAccepted(command_id="cmd-1", command_type="command.cancel"),
        e.CommandRejected(command_id="cmd-1", command_type="command.cancel", reason="busy"),
    )
}
