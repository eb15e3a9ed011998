"""Fuzz every operation of the OpenAPI schema (schemathesis + hypothesis): no input makes the
API answer 5xx. Authenticated as an admin through an API token, so every operation is reached
(no CSRF involved); valid and invalid inputs both, a modest number of examples each."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tickstock.store import users as user_store
from tickstock.web.config import WebDeps

from .conftest import ADMIN, now

EXAMPLES = 8  # per operation and mode: ~700 requests, well under two minutes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _token(deps: WebDeps) -> str:
    with deps.pool.connection() as db:
        admin = user_store.require_user(db, ADMIN[0])
        _, secret = user_store.create_token(db, admin.user_id, "fuzz", now(), timedelta(hours=1))
    return secret


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str],
          seen: Counter[int], failures: list[str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def exercise(case: Any) -> None:
        res = case.call(headers=headers)
        seen[res.status_code] += 1
        if res.status_code >= 500:
            failures.append(f"{operation.label}: {res.status_code} for {case.as_curl_command()}")

    try:
        exercise()
    except Unsatisfiable:
        # An operation without parameters has no invalid input to make; its valid one ran.
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_no_input_makes_the_api_fail(app: FastAPI, web_deps: WebDeps) -> None:
    headers = {"Authorization": f"Bearer {_token(web_deps)}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    seen: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation: Any = result.ok()
        operations += 1

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, headers, seen, failures)
    assert operations >= 40
    assert failures == []
    # Both kinds of input arrived: accepted ones and ones validation refused with 422.
    assert seen[200] > 0 and seen[422] > 0, seen
