"""The web role's configuration and the dependencies it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import redis
from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from tickstock.core.clock import Clock

if TYPE_CHECKING:
    from tickstock.market.calendar import MarketCalendar

MIN_SECRET_LENGTH = 32
#: The pool ``tickstock.store.db.create_pool`` builds: connections return rows as dicts.
Pool = ConnectionPool[psycopg.Connection[DictRow]]
VENDOR_DIR = Path(__file__).parent / "vendor"


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Everything the app needs besides its clients. Frozen; built once by the composition root.

    Login limits: ``login_max_failures`` consecutive wrong passwords lock an account for
    ``login_lockout_s``; ``client_max_failures`` failures from one address within
    ``login_window_s`` refuse further attempts from it (429) until the window slides.
    Live push: each browser has a queue of ``ws_queue_size`` messages; ``ws_catchup_limit``
    bounds how many missed events a reconnecting browser is sent before it is told to resync.
    """

    secret_key: str
    version: str = "0"
    instance: str = "web"
    secure_cookies: bool = False
    session_max_age_s: int = 12 * 3600
    login_window_s: int = 900
    login_max_failures: int = 5
    login_lockout_s: int = 900
    client_max_failures: int = 20
    ws_queue_size: int = 256
    ws_catchup_limit: int = 1000
    heartbeat_ttl_s: float = 10.0
    vendor_dir: Path = VENDOR_DIR
    dead_letter_limit: int = 50

    def __post_init__(self) -> None:
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the web secret key must have at least {MIN_SECRET_LENGTH} characters "
                "(set TICKSTOCK_SECRET_KEY or let the web role generate one)"
            )


@dataclass(frozen=True, slots=True)
class WebDeps:
    """The clients the app uses: built and closed by the composition root, not by the app."""

    pool: Pool
    redis: redis.Redis
    clock: Clock
    config: WebConfig
    calendar: MarketCalendar | None = field(default=None)
