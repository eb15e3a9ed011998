"""The pages in a real browser: sign in, run and watch a daily run, submit and cancel a load,
read a symbol chart; a screenshot of each page goes to $TICKSTOCK_TEST_ARTIFACTS.

The daily run is executed by real pipeline workers (``pipeline_worker``) consuming the command
the page sent; its progress reaches the page through the event stream and the WebSocket. The
historical load's progress is published as the contract events a worker publishes
(``EventPublisher``), so the test controls when the job is mid-way and can cancel it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tickstock import __version__ as tickstock_version
from tickstock.bus import deadletter
from tickstock.bus.events import EventPublisher
from tickstock.bus.heartbeat import HeartbeatThread
from tickstock.contracts import decode, names
from tickstock.contracts.commands import Cancel, RetryFailedImports, TriggerDailyProcessing
from tickstock.contracts.common import ALL_PHASES
from tickstock.contracts.events import (
    JobCancelled,
    JobProgress,
    JobStarted,
    PatternDetected,
    ServiceError,
)
from tickstock.contracts.jobs import HistoricalLoad
from tickstock.contracts.state import Heartbeat
from tickstock.core.clock import LiveClock
from tickstock.core.timeutil import NEW_YORK
from tickstock.web.config import WebDeps

from .browser import chromium, screenshot, sign_in
from .conftest import ADMIN, USER, Server
from .pipeline_worker import daily_workers, load_worker
from .seed import SYMBOLS, UNIVERSE, real_symbols, seed, seed_universe

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on("console", lambda m: print("CONSOLE", m.type, m.text))
    pg.on("pageerror", lambda e: print("PAGEERROR", e))
    yield pg
    context.close()


def _stream(deps: WebDeps, stream: str) -> list[Any]:
    entries: Any = deps.redis.xrange(stream)
    return [decode(fields[names.ENVELOPE_FIELD.encode()]) for _, fields in entries]


def _bar(page: Page, phase: str) -> int:
    return int(page.get_attribute(f"#bar-{phase}", "aria-valuenow") or 0)


# Records every value each progress bar takes (attribute mutations keep the old value), so
# the test sees the bars move, not only where they end.
WATCH_BARS = """() => {
  window.__bars = {};
  document.querySelectorAll('[role=progressbar]').forEach((el) => {
    window.__bars[el.id] = [el.getAttribute('aria-valuenow')];
    new MutationObserver((records) => records.forEach((r) => {
      window.__bars[el.id].push(el.getAttribute('aria-valuenow'));
    })).observe(el, {attributes: true, attributeFilter: ['aria-valuenow']});
  });
}"""


def test_daily_run_progress_moves_to_completion_without_reload(
        page: Page, server: Server, web_deps: WebDeps, shared_data: Path) -> None:
    symbols = real_symbols(shared_data, 8)
    seed_universe(web_deps.pool, "daily8", symbols)
    sign_in(page, server.url, *ADMIN)
    page.goto(f"{server.url}/admin/daily-processing")
    page.wait_for_selector("#market-state")
    page.evaluate("window.__loaded_once = true")
    page.evaluate(WATCH_BARS)
    page.wait_for_function("document.body.dataset.live === 'live'")
    page.select_option("#trigger-universes", "daily8")
    with daily_workers(web_deps.pool, web_deps.redis, shared_data, batch_size=2):
        page.click("#btn-full")
        page.wait_for_function("document.body.dataset.runId !== ''")
        run_id = page.evaluate("document.body.dataset.runId")
        page.wait_for_function("document.body.dataset.runStatus === 'running'")
        screenshot(page, "admin-daily-processing-running")
        page.wait_for_function("document.body.dataset.runStatus === 'completed'",
                               timeout=120_000)
        # The schedule panel: a refused change is reported on the page, an accepted one shows
        # its next run (both answered by the workers, pushed back without reload).
        page.check("#sched-enabled")
        page.fill("#sched-time", "09:00")
        page.select_option("#sched-universes", "daily8")
        page.click("#schedule-form button[type=submit]")
        page.wait_for_selector("#alerts .alert:has-text('before the 16:00 close')")
        page.fill("#sched-time", "16:30")
        page.click("#schedule-form button[type=submit]")
        page.wait_for_function("document.querySelector('#sched-next').textContent"
                               ".includes('updated by alice_admin')")
        next_run = page.inner_text("#sched-next")  # "Next run: 2026-12-01 21:30:00 UTC · ..."
        shown = datetime.fromisoformat(next_run.split("Next run: ")[1][:19] + "+00:00")
        in_new_york = shown.astimezone(NEW_YORK)
        assert (in_new_york.hour, in_new_york.minute) == (16, 30), next_run
        assert in_new_york > datetime.now(UTC)
    commands = [e for e in _stream(web_deps, names.COMMANDS_STREAM)
                if isinstance(e.data, TriggerDailyProcessing)]
    assert len(commands) == 1 and commands[0].data.requested_by == ADMIN[0]
    assert commands[0].data.run_id == run_id and commands[0].data.universes == ("daily8",)
    bars: dict[str, list[str | None]] = page.evaluate("window.__bars")
    for phase in ALL_PHASES:
        values = [int(v or 0) for v in bars[f"bar-{phase.value}"]]
        assert values == sorted(values) and values[-1] == 100, (phase, values)
    # The import phase went 8 symbols in batches of 2: the page showed steps between 0 and 100.
    assert any(0 < int(v or 0) < 100 for v in bars["bar-data_import"]), bars
    assert page.evaluate("window.__loaded_once") is True  # same document: no reload happened
    assert page.get_attribute("#overall-bar", "aria-valuenow") == "100"
    page.wait_for_selector(f"#history tr[data-run='{run_id}'] .pill.completed")
    with web_deps.pool.connection() as db:
        row = db.execute("SELECT status, symbols_processed FROM processing_runs "
                         "WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None and (row["status"], row["symbols_processed"]) == ("completed", 8)
    page.wait_for_timeout(400)  # the bars' width transition, for the screenshot
    screenshot(page, "admin-daily-processing")


def test_historical_load_submit_progress_and_cancel(
        page: Page, server: Server, web_deps: WebDeps) -> None:
    sign_in(page, server.url, *ADMIN)
    page.goto(f"{server.url}/admin/historical-data")
    page.wait_for_function("document.body.dataset.live === 'live'")
    page.fill("#load-symbols", "aapl, MSFT")
    page.fill("#load-years", "2")
    page.click("#btn-submit-load")
    page.wait_for_selector("#active-jobs [data-job]")
    jobs = [e for e in _stream(web_deps, names.JOBS_STREAM) if isinstance(e.data, HistoricalLoad)]
    assert len(jobs) == 1 and jobs[0].data.symbols == ("AAPL", "MSFT")
    job_id = jobs[0].id

    bus = EventPublisher(web_deps.redis, source="worker-test")
    bus.publish(JobStarted(job_id=job_id, job_type="job.historical_load", worker="w1"),
                correlation_id=job_id)
    bus.publish(JobProgress(job_id=job_id, total=2, processed=1, percent=50.0),
                correlation_id=job_id)
    page.wait_for_selector(f"[data-job='{job_id}'] .pill.running")
    page.wait_for_function("document.querySelector('#active-jobs').textContent.includes('50%')")
    screenshot(page, "admin-historical-data")
    page.click(f"[data-cancel='{job_id}']")
    page.wait_for_function(
        "document.querySelector('#toasts').textContent.includes('Cancel requested')")
    cancels = [e for e in _stream(web_deps, names.COMMANDS_STREAM) if isinstance(e.data, Cancel)]
    assert len(cancels) == 1 and cancels[0].data.job_id == job_id
    bus.publish(JobCancelled(job_id=job_id, total=2, processed=1, requested_by=ADMIN[0]),
                correlation_id=job_id)
    page.wait_for_function("document.body.dataset.activeJobs === '0'")


def test_historical_load_runs_on_a_worker_and_its_failures_can_be_retried(
        page: Page, server: Server, web_deps: WebDeps, shared_data: Path) -> None:
    sign_in(page, server.url, *ADMIN)
    page.goto(f"{server.url}/admin/historical-data")
    page.wait_for_function("document.body.dataset.live === 'live'")
    page.fill("#load-symbols", "AAPL ZZZZ")  # ZZZZ has no data file: a per-symbol failure
    page.fill("#load-start", "2017-01-03")
    page.fill("#load-end", "2017-12-01")
    with load_worker(web_deps.pool, web_deps.redis, shared_data):
        page.click("#btn-submit-load")
        page.wait_for_selector("#jobs [data-failures]", timeout=60_000)
    job_id = page.get_attribute("#jobs [data-failures]", "data-failures")
    row = page.inner_text(f"#jobs tr[data-job='{job_id}']")
    assert row.split("\t")[2:6] == ["AAPL, ZZZZ", "completed", "2/2", "1"], row
    assert page.evaluate("document.body.dataset.activeJobs") == "0"
    page.click("#jobs [data-failures]")
    page.wait_for_selector("#failures-card:not([hidden]) #failures td:has-text('ZZZZ')")
    screenshot(page, "admin-historical-data-failures")
    page.click("#btn-retry-job")
    page.wait_for_function(
        "document.querySelector('#toasts').textContent.includes('Retry requested')")
    retries = [e for e in _stream(web_deps, names.COMMANDS_STREAM)
               if isinstance(e.data, RetryFailedImports)]
    assert len(retries) == 1 and retries[0].data.source_id == job_id
    with web_deps.pool.connection() as db:
        stored = db.execute("SELECT count(*) AS n FROM bars WHERE symbol = 'AAPL' AND "
                            "timeframe = 'day'").fetchone()
    assert stored is not None and stored["n"] > 200  # the worker really loaded ~11 months


def test_historical_load_cancelled_on_a_real_worker(
        page: Page, server: Server, web_deps: WebDeps, shared_data: Path) -> None:
    """Every real daily file, cancelled from the page once progress shows: the worker stops at a
    symbol boundary, the job ends cancelled with fewer symbols done, and the page says so."""
    symbols = sorted(p.name.split(".")[0] for p in (shared_data / "daily").glob("*.csv.gz"))
    sign_in(page, server.url, *ADMIN)
    page.goto(f"{server.url}/admin/historical-data")
    page.wait_for_function("document.body.dataset.live === 'live'")
    page.fill("#load-symbols", " ".join(symbols))
    page.fill("#load-start", "2010-01-04")
    page.fill("#load-end", "2018-01-01")
    with load_worker(web_deps.pool, web_deps.redis, shared_data):
        page.click("#btn-submit-load")
        page.wait_for_selector("#active-jobs [data-job] .pill.running", timeout=60_000)
        job_id = page.get_attribute("#active-jobs [data-job]", "data-job")
        page.click(f"[data-cancel='{job_id}']")
        page.wait_for_function("document.body.dataset.activeJobs === '0'", timeout=60_000)
    with web_deps.pool.connection() as db:
        job = db.execute("SELECT status, processed, total FROM jobs WHERE job_id = %s",
                         (job_id,)).fetchone()
    assert job is not None and job["status"] == "cancelled", job
    assert job["processed"] < job["total"] == len(symbols)


def test_symbol_page_shows_candles_overlay_and_markers(
        page: Page, server: Server, web_deps: WebDeps, shared_data: Path) -> None:
    counts = seed(web_deps.pool, shared_data)
    assert counts["patterns"] > 0
    sign_in(page, server.url, *USER)
    page.goto(f"{server.url}/symbols/AAPL")
    page.wait_for_function("Number(document.body.dataset.candles) > 0")
    page.wait_for_function("Number(document.body.dataset.overlays) >= 1")
    page.wait_for_function("Number(document.body.dataset.markers) >= 1")
    assert int(page.evaluate("document.body.dataset.candles")) == 320
    assert page.evaluate("document.body.dataset.panes") == "3"  # price+volume, RSI, MACD
    latest = page.inner_text("#latest")
    assert "rsi_14" in latest and "macd_12_26_9.macd" in latest and "sma_20" in latest
    page.wait_for_selector("#outcomes td:has-text('cdl_engulfing')")
    page.wait_for_timeout(300)  # let the canvas paint before the screenshot
    screenshot(page, "symbol")
    # Another timeframe: this symbol has no weekly bars stored, and the page says so.
    page.click("#timeframes button:has-text('week')")
    page.wait_for_url("**/symbols/AAPL?timeframe=week")
    page.wait_for_function("document.body.dataset.candles === '0'")
    assert "No bars stored" in page.inner_text("#chart-note")


def test_every_page_renders(page: Page, server: Server, web_deps: WebDeps,
                            shared_data: Path) -> None:
    seed(web_deps.pool, shared_data)
    page.goto(f"{server.url}/login")
    screenshot(page, "login")
    sign_in(page, server.url, *ADMIN)
    page.wait_for_function("document.querySelector('#b-adv').textContent !== '—'")
    page.wait_for_function("Number(document.body.dataset.subscribed || 0) >= 1")
    page.select_option("#universe", UNIVERSE)
    page.wait_for_function("document.querySelector('#b-adv').textContent !== '—' && "
                           "document.querySelectorAll('#gainers tr').length > 0")
    breadth = sum(int(page.inner_text(s)) for s in ("#b-adv", "#b-dec", "#b-unch"))
    assert breadth == len(SYMBOLS)
    gainers = page.locator("#gainers td.num.up").all_inner_texts()
    losers = page.locator("#losers td.num.down").all_inner_texts()
    assert len(gainers) == int(page.inner_text("#b-adv")) and all("+" in g for g in gainers)
    assert len(losers) == int(page.inner_text("#b-dec")) and all("-" in x for x in losers)
    # The live feed under filters: only the bearish detection of the chosen universe arrives.
    # Acknowledged subscriptions: the page's first, the universe's, then the direction's.
    page.wait_for_function("Number(document.body.dataset.subscribed || 0) >= 2")
    page.select_option("#f-direction", "bearish")
    page.wait_for_function("Number(document.body.dataset.subscribed) >= 3")
    bus = EventPublisher(web_deps.redis, source="stream-test")
    when = datetime(2017, 12, 6, tzinfo=UTC)
    for symbol, pattern, direction in (("AAPL", "live_bull", "bullish"),
                                       ("AAPL", "live_bear", "bearish"),
                                       ("TSLA", "live_bear_elsewhere", "bearish")):
        bus.publish(PatternDetected(symbol=symbol, timeframe="day", ts=when, pattern=pattern,
                                    direction=direction, confidence=0.9))  # type: ignore[arg-type]
    bus.publish(PatternDetected(symbol="MSFT", timeframe="day", ts=when, pattern="live_last",
                                direction="bearish", confidence=0.9))
    page.wait_for_selector("#feed .feed-item.new:has-text('live_last')")
    fresh = page.locator("#feed .feed-item.new").all_inner_texts()
    assert len(fresh) == 2 and "live_bear" in fresh[1] and "live_last" in fresh[0]
    screenshot(page, "dashboard")
    page.goto(f"{server.url}/screener")
    page.select_option("#s-universe", UNIVERSE)
    page.fill("#conditions .c-ind", "rsi_14")
    page.fill("#conditions .c-val", "100")
    page.click("#screen-form button[type=submit]")
    page.wait_for_function(f"document.body.dataset.screenRows === '{len(SYMBOLS)}'")
    screenshot(page, "screener")
    page.goto(f"{server.url}/admin/users")
    page.wait_for_load_state("networkidle")
    screenshot(page, "admin-users")
    assert page.locator(f"tr[data-user='{USER[0]}']").count() == 1
    page.goto(f"{server.url}/docs")  # Swagger UI from local files: works with no network
    page.wait_for_selector(".swagger-ui .opblock-summary-path:has-text('/api/processing/daily/status')")
    screenshot(page, "api-docs")


def test_services_page_shows_instances_health_errors_and_dead_letters_live(
        page: Page, server: Server, web_deps: WebDeps) -> None:
    r = web_deps.redis
    up = HeartbeatThread(r, role="worker", instance="worker-up", clock=LiveClock(),
                         interval_s=0.5, ttl_s=5).start()
    doomed = HeartbeatThread(r, role="stream", instance="stream-1", clock=LiveClock(),
                             interval_s=0.5, ttl_s=5).start()
    old = datetime.now(UTC) - timedelta(seconds=3 * web_deps.config.heartbeat_ttl_s)
    stale = Heartbeat(role="scheduler", instance="sched-1", host="elsewhere", pid=42,
                      version="0.0.9", started_at=old, state="idle",
                      ts=datetime.now(UTC) - timedelta(seconds=web_deps.config.heartbeat_ttl_s))
    r.set(names.heartbeat_key("scheduler", "sched-1"), stale.model_dump_json(), ex=60)
    EventPublisher(r, source="worker-up").publish(ServiceError(
        role="worker", instance="worker-up", component="import", error="provider said 503"))
    deadletter.add(r, deadletter.make(names.COMMANDS_STREAM, "1-0", {"junk": "x"},
                                      "unknown message type", now=datetime.now(UTC)),
                   cause="test")
    try:
        sign_in(page, server.url, *ADMIN)
        page.goto(f"{server.url}/admin/services")
        row = "#instances tr[data-instance='{}'] td:nth-child(3)"
        assert page.inner_text(row.format("worker-up")) == "up"
        assert page.inner_text(row.format("sched-1")) == "stale"
        assert page.inner_text(row.format("stream-1")) == "up"
        worker_row = page.inner_text("#instances tr[data-instance='worker-up']")
        assert tickstock_version in worker_row and "UTC" in worker_row  # version, since
        assert "provider said 503" in page.inner_text("#errors")
        assert "unknown message type" in page.inner_text("#dead")
        assert page.inner_text("#pg .pill") == "up" and page.inner_text("#redis .pill") == "up"
        page.evaluate("window.__loaded_once = true")
        page.wait_for_function("document.body.dataset.live === 'live'")
        doomed.stop()  # the stream process exits: its heartbeat key is gone
        page.wait_for_function(
            "document.querySelector(\"#instances tr[data-instance='stream-1'] td:nth-child(3)\")"
            ".textContent === 'down'")
        assert page.evaluate("window.__loaded_once") is True
        screenshot(page, "admin-services")
    finally:
        up.stop()
        doomed.stop()
