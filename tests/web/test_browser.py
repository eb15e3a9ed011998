"""The pages in a real browser: sign in, run and watch a daily run, submit and cancel a load,
read a symbol chart; a screenshot of each page goes to $TICKSTOCK_TEST_ARTIFACTS.

Progress comes from contract events published on the bus (``EventPublisher``) — what the
pipeline's workers publish — so the page is exercised through the real event stream and
WebSocket, with the command/job the page sent read back from the durable streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tickstock.bus.events import EventPublisher
from tickstock.contracts import decode, names
from tickstock.contracts.commands import Cancel, TriggerDailyProcessing
from tickstock.contracts.common import ALL_PHASES
from tickstock.contracts.events import (
    JobCancelled,
    JobProgress,
    JobStarted,
    RunCompleted,
    RunPhaseCompleted,
    RunPhaseProgress,
    RunPhaseStarted,
    RunStarted,
)
from tickstock.contracts.jobs import HistoricalLoad
from tickstock.web.config import WebDeps

from .browser import chromium, screenshot, sign_in
from .conftest import ADMIN, USER, Server
from .seed import SYMBOLS, UNIVERSE, seed

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


def test_daily_run_progress_moves_to_completion_without_reload(
        page: Page, server: Server, web_deps: WebDeps) -> None:
    sign_in(page, server.url, *ADMIN)
    page.goto(f"{server.url}/admin/daily-processing")
    page.wait_for_selector("#market-state")
    page.evaluate("window.__loaded_once = true")
    page.wait_for_function("document.body.dataset.live === 'live'")
    page.click("#btn-full")
    page.wait_for_function("document.body.dataset.runStatus === 'pending'")
    commands = [e for e in _stream(web_deps, names.COMMANDS_STREAM)
                if isinstance(e.data, TriggerDailyProcessing)]
    assert len(commands) == 1 and commands[0].data.requested_by == ADMIN[0]
    run_id = commands[0].data.run_id
    assert run_id == page.evaluate("document.body.dataset.runId")

    bus = EventPublisher(web_deps.redis, source="worker-test")
    bus.publish(RunStarted(run_id=run_id, trigger_type="manual", phases=ALL_PHASES),
                correlation_id=run_id)
    page.wait_for_function("document.body.dataset.runStatus === 'running'")
    seen: dict[str, list[int]] = {}
    for phase in ALL_PHASES:
        bus.publish(RunPhaseStarted(run_id=run_id, phase=phase, total=40), correlation_id=run_id)
        for done in (10, 25, 40):
            bus.publish(RunPhaseProgress(run_id=run_id, phase=phase, total=40, processed=done,
                                         percent=100 * done / 40), correlation_id=run_id)
            page.wait_for_function(
                f"document.querySelector('#bar-{phase.value}').getAttribute('aria-valuenow')"
                f" == '{int(100 * done / 40 + 0.5)}'")  # JS Math.round
            seen.setdefault(phase.value, []).append(_bar(page, phase.value))
        if phase.value == "indicators":
            screenshot(page, "admin-daily-processing-running")
        bus.publish(RunPhaseCompleted(run_id=run_id, phase=phase, processed=40),
                    correlation_id=run_id)
    bus.publish(RunCompleted(run_id=run_id, duration_s=12.5, symbols_processed=40),
                correlation_id=run_id)
    page.wait_for_function("document.body.dataset.runStatus === 'completed'")
    assert all(values == sorted(values) and values[-1] == 100 for values in seen.values())
    assert page.evaluate("window.__loaded_once") is True  # same document: no reload happened
    assert page.get_attribute("#overall-bar", "aria-valuenow") == "100"
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
    page.wait_for_selector("#outcomes td:has-text('cdl_engulfing')")
    page.wait_for_timeout(300)  # let the canvas paint before the screenshot
    screenshot(page, "symbol")


def test_every_page_renders(page: Page, server: Server, web_deps: WebDeps,
                            shared_data: Path) -> None:
    seed(web_deps.pool, shared_data)
    page.goto(f"{server.url}/login")
    screenshot(page, "login")
    sign_in(page, server.url, *ADMIN)
    page.wait_for_function("document.querySelector('#b-adv').textContent !== '—'")
    page.select_option("#universe", UNIVERSE)
    page.wait_for_function("document.querySelector('#b-adv').textContent !== '—' && "
                           "document.querySelectorAll('#gainers tr').length > 0")
    breadth = sum(int(page.inner_text(s)) for s in ("#b-adv", "#b-dec", "#b-unch"))
    assert breadth == len(SYMBOLS)
    screenshot(page, "dashboard")
    page.goto(f"{server.url}/screener")
    page.select_option("#s-universe", UNIVERSE)
    page.fill("#conditions .c-ind", "rsi_14")
    page.fill("#conditions .c-val", "100")
    page.click("#screen-form button[type=submit]")
    page.wait_for_function(f"document.body.dataset.screenRows === '{len(SYMBOLS)}'")
    screenshot(page, "screener")
    for path, name in (("/admin/services", "admin-services"), ("/admin/users", "admin-users")):
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("networkidle")
        screenshot(page, name)
    assert page.locator(f"tr[data-user='{USER[0]}']").count() == 1
