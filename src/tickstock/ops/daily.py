"""Composition of the daily run inside a worker: ``install(worker)`` is the worker plugin named
in ``tickstock.pipeline.worker.INSTALLERS``.

It builds what the run's steps need from the settings (calendar, market-data provider) and
registers on the worker: the batch handler (``batch.run_phase``), the command handlers of
``tickstock.pipeline.commands`` (run cancels through the worker's built-in cancel), a
dead-letter hook that answers malformed commands with ``command.rejected``, and a reconciler
thread that resumes a run after a crash (``DailyRun.reconcile``) at start and every 15 s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from tickstock.contracts.events import Event
from tickstock.market.calendar import MarketCalendar, nyse
from tickstock.market.providers import Provider, create_provider
from tickstock.market.universes import UniverseCatalog
from tickstock.ops.settings import Settings, load_settings
from tickstock.pipeline.commands import reject_dead_lettered
from tickstock.pipeline.daily.wiring import analysis_names, build_executor, default_steps
from tickstock.pipeline.jobs import data_load
from tickstock.pipeline.jobs.data_load import DataLoadJobs
from tickstock.pipeline.worker import Worker

log = logging.getLogger(__name__)

RECONCILE_EVERY_S = 15.0


def install(worker: Worker, settings: Settings | None = None) -> None:
    """Make ``worker`` execute daily runs and the pipeline's commands."""
    settings = settings or load_settings()
    calendar = nyse()
    provider = provider_from_settings(settings, calendar)
    # the data-load jobs use the same provider (or the one a job names)
    data_load.configure(DataLoadJobs(
        providers=lambda name: provider_from_settings(settings, calendar, name, reuse=provider),
        calendar=calendar, catalog=UniverseCatalog([settings.data_dir / "universes"])))
    steps, setups = default_steps(pool=worker.pool, provider=provider, calendar=calendar,
                                  clock=worker.clock)
    indicators, patterns = analysis_names()
    executor = build_executor(
        pool=worker.pool, client=worker.client, calendar=calendar, clock=worker.clock,
        instance=worker.name, steps=steps, setups=setups,
        takeover_after=timedelta(seconds=settings.bus_claim_idle_s),
        indicator_names=indicators, pattern_names=patterns)
    executor.register(worker)

    def emit(event: Event, correlation_id: str | None) -> None:
        worker.events.publish(event, correlation_id=correlation_id)

    worker.add_dead_letter_hook(reject_dead_lettered(emit))
    threading.Thread(target=_reconcile_loop, args=(worker, executor.daily.reconcile),
                     name=f"reconcile-{worker.name}", daemon=True).start()


def provider_from_settings(settings: Settings, calendar: MarketCalendar,
                           name: str | None = None, reuse: Provider | None = None) -> Provider:
    """The provider ``name`` (default: the configured one) built from ``settings``; ``reuse``
    when it already is that provider."""
    name = name or settings.effective_provider
    if reuse is not None and reuse.capabilities.name == name:
        return reuse
    return create_provider(
        name, calendar,
        massive_api_key=settings.massive_api_key.get_secret_value()
        if settings.massive_api_key else None,
        massive_base_url=settings.massive_base_url, files_dir=settings.files_dir,
        synthetic_seed=settings.synthetic_seed)


def _reconcile_loop(worker: Worker, reconcile: Callable[[], str | None]) -> None:
    wake = threading.Event()  # never set: a sleep that a stopping worker cuts short below
    while not worker.stopping:
        try:
            done = reconcile()
            if done:
                log.info("daily run resumed: %s", done)
        except Exception:
            log.exception("reconciling the daily run failed; retrying")
        for _ in range(int(RECONCILE_EVERY_S / 0.5)):
            if worker.stopping:
                return
            wake.wait(0.5)
