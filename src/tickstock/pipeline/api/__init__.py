"""The pipeline HTTP API (``tickstock api``, default port 8080): health, run status and history,
schedule, triggers, cancel and retry — thin FastAPI routers over ``PipelineService``.

Authentication: every endpoint except ``GET /health`` (and the OpenAPI documents ``/docs``,
``/openapi.json``, and the Prometheus ``/metrics`` the role adds) requires the API token, sent
as ``Authorization: Bearer <token>`` or ``X-API-Token: <token>``. Reads need it too: run
history and schedules are operational data of the producer, not public. The token is the
``TICKSTOCK_API_TOKEN`` setting (the role generates one under the data directory when unset).
"""

from tickstock.pipeline.api.app import create_app

__all__ = ["create_app"]
