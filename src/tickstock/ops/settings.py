"""Typed, frozen settings read once from the environment and `.env`.

Every setting is ``TICKSTOCK_<NAME>`` except the provider key, which keeps the provider's own
name ``MASSIVE_API_KEY``. An unknown ``TICKSTOCK_`` variable or an invalid value is a
ConfigurationError naming the variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tickstock.core.errors import ConfigurationError

ENV_PREFIX = "TICKSTOCK_"
ProviderName = Literal["auto", "massive", "files", "synthetic"]


class Settings(BaseModel):
    """All configuration of every role. Built once per process by ``load_settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Infrastructure: unset means "start the embedded server under data_dir".
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    data_dir: Path = Path(".tickstock")

    # Market data
    provider: ProviderName = "auto"
    massive_api_key: SecretStr | None = None
    massive_base_url: str = "https://api.massive.com"
    massive_ws_url: str = "wss://socket.massive.com"
    files_dir: Path | None = None
    demo_symbols: int = Field(default=100, ge=0, le=20000)
    demo_years: int = Field(default=2, ge=1, le=30)
    synthetic_seed: int = 42

    # Network
    host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    api_port: int = Field(default=8080, ge=1, le=65535)
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    scheduler_metrics_port: int = Field(default=9102, ge=0, le=65535)
    stream_metrics_port: int = Field(default=9103, ge=0, le=65535)

    # Processes
    workers: int = Field(default=1, ge=1, le=64)
    # Stream role: processes analysing the live bars (0: one per core, up to 4, when the
    # universe has more than 1,000 symbols; 1: in the role's own process).
    stream_analysis_processes: int = Field(default=0, ge=0, le=32)
    roles: tuple[str, ...] = ("web", "api", "worker", "scheduler", "stream")
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    heartbeat_ttl_s: float = Field(default=10.0, gt=0)
    # Bus / worker: pending work of a consumer silent this long is claimed by another; a
    # message delivered more often than this is dead-lettered; extra job-handler modules.
    bus_claim_idle_s: float = Field(default=30.0, gt=0)
    bus_max_deliveries: int = Field(default=5, ge=1, le=100)
    worker_handler_modules: tuple[str, ...] = ()

    # Web
    secret_key: SecretStr | None = None
    api_token: SecretStr | None = None

    # Logs
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator(
        "database_url",
        "redis_url",
        "massive_api_key",
        "secret_key",
        "api_token",
        "files_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("roles", "worker_handler_modules", mode="before")
    @classmethod
    def _split_roles(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def effective_provider(self) -> Literal["massive", "files", "synthetic"]:
        """``auto`` means Massive when a key is set, else the synthetic market."""
        if self.provider != "auto":
            return self.provider
        return "massive" if self.massive_api_key is not None else "synthetic"

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets replaced by ``********``."""
        shown: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "********"
            elif isinstance(value, tuple):
                shown[name] = ",".join(value)
            else:
                shown[name] = "" if value is None else str(value)
        return shown


def variable_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return PROVIDER_KEY_VARIABLE if field == "massive_api_key" else ENV_PREFIX + field.upper()


PROVIDER_KEY_VARIABLE = "MASSIVE_API_KEY"
# Variables that configure the test harness, not a running platform.
_TEST_PREFIX = ENV_PREFIX + "TEST_"


def load_settings(environ: dict[str, str] | None = None, env_file: Path | None = None) -> Settings:
    """Read settings from ``.env`` overlaid by ``environ`` (default ``os.environ``).

    Raises ConfigurationError naming the variable when one is unknown or invalid.
    """
    env: dict[str, str] = {}
    dotenv_path = env_file if env_file is not None else (Path(".env") if environ is None else None)
    if dotenv_path is not None and dotenv_path.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)

    by_variable = {variable_name(name): name for name in Settings.model_fields}
    values: dict[str, Any] = {}
    for key, value in env.items():
        if key in by_variable:
            values[by_variable[key]] = value
        elif key.startswith(ENV_PREFIX) and not key.startswith(_TEST_PREFIX):
            raise ConfigurationError(f"unknown setting {key} (see docs/configuration.md)")
    try:
        return Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        shown = "********" if field in _SECRET_FIELDS else repr(err.get("input"))
        raise ConfigurationError(
            f"invalid setting {variable_name(field)}: {err['msg']} (got {shown})"
        ) from None


_SECRET_FIELDS = {"database_url", "redis_url", "massive_api_key", "secret_key", "api_token"}
