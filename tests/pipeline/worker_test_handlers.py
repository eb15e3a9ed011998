"""Handler module for ``tickstock worker`` subprocesses of the tests
(``TICKSTOCK_WORKER_HANDLER_MODULES=worker_test_handlers``): registers the test handler of
``test_worker_fixtures`` in place of the real data-load handlers. Not a test module (its name),
so pytest never imports it into its own process."""

from __future__ import annotations

from test_worker_fixtures import HANDLERS

from tickstock.pipeline.jobs import register_job_handler

for _job_type, _handler in HANDLERS.items():
    register_job_handler(_job_type, _handler, replace=True)
