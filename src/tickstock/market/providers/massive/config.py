"""Settings of the Massive (formerly Polygon.io) REST provider."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MassiveConfig:
    """``retries`` is the official client's own retry count for 429/5xx (urllib3 back-off,
    honouring Retry-After); ``page_limit`` is bars per page (the API's maximum is 50,000)."""

    api_key: str
    base_url: str = "https://api.massive.com"
    retries: int = 3
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    page_limit: int = 50_000
    adjusted: bool = True
