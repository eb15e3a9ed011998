"""Structured logs: one line per event with role, instance and correlation ids.

JSON when stderr is not a terminal (or ``TICKSTOCK_LOG_FORMAT=json``), a readable line when it
is. Code everywhere logs through ``logging.getLogger(__name__)`` and passes ids as ``extra``
(``job_id``, ``run_id``, ``correlation_id``, ``symbol``), or binds them for a block of work so
every line inside carries them, including asyncio tasks started inside it (a thread started
inside needs ``contextvars.copy_context().run``)::

    with log_context(correlation_id=envelope.correlation_id, job_id=job.job_id):
        handle(job)            # every log line here has correlation_id and job_id

One JSON line looks like::

    {"ts": "2026-11-23T21:10:04.120Z", "level": "info", "role": "worker",
     "instance": "worker-host-812", "logger": "tickstock.pipeline.jobs", "event": "job done",
     "job_id": "…", "correlation_id": "…", "duration_s": 1.2}

so ``jq 'select(.correlation_id == "…")'`` over the merged output of ``tickstock up`` follows
one run or job across processes.

Secrets never reach the output: the values of every secret setting (database and Redis URLs,
the provider key, the secret key, the API token) are replaced by ``***`` wherever they appear,
as are URL passwords, ``token=…``/``api_key=…``/``password=…`` values, ``Bearer …``
credentials, and any ``extra`` whose name says it is a secret.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from tickstock.core.logcontext import current_context, log_context
from tickstock.ops.settings import Settings

__all__ = ["configure_logging", "current_context", "log_context", "mask_secrets"]

# Fields of LogRecord that are not user-supplied ``extra``.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_CONTEXT_FIELDS = ("role", "instance")
# Ids shown first on a console line, in this order, when present.
_ID_FIELDS = ("correlation_id", "run_id", "job_id")
MASK = "***"
_SECRET_WORDS = r"(?:api[_-]?key|apikey|access[_-]?token|token|password|passwd|secret|authorization)"
_SECRET_PATTERNS = (
    # user:password@ in URLs
    re.compile(r"(?P<keep>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?=@)", re.IGNORECASE),
    # key=value, key: value, "key": "value"
    re.compile(
        rf"(?P<keep>\b{_SECRET_WORDS}[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*)[^\s&\"',;]+", re.IGNORECASE
    ),
    # Authorization: Bearer <token>
    re.compile(r"(?P<keep>\bbearer\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
)
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|secret|secret_key|token|api_?key|apikey|authorization)$", re.I
)
# Literal secret values registered by ``configure_logging`` (the settings' secrets).
_known_secrets: tuple[str, ...] = ()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these literal values (and a URL's password inside them) in every log line."""
    global _known_secrets  # noqa: PLW0603 - one process-wide list, set by the composition root
    found = set(_known_secrets)
    for value in values:
        if len(value) >= 4:  # shorter values would mask ordinary words
            found.add(value)
    _known_secrets = tuple(sorted(found, key=len, reverse=True))


def settings_secrets(settings: Settings) -> list[str]:
    """The values of every secret setting; of a URL only its password (host and database
    name are what an operator needs to read in a connection error)."""
    found = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if not isinstance(value, SecretStr):
            continue
        text = value.get_secret_value()
        parts = urlsplit(text)
        if parts.scheme and parts.netloc:
            if parts.password:
                found.append(unquote(parts.password))
                found.append(parts.password)
        else:
            found.append(text)
    return found


def mask_secrets(text: str) -> str:
    """Replace registered secrets, URL passwords and key/token/password values by ``***``."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group("keep") + MASK, text)
    return text


def _masked_value(key: str, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of value
    if (_SECRET_KEY.search(key) and value is not None) or isinstance(value, SecretStr):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _masked_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked_value("", v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return mask_secrets(str(value))


class ContextFilter(logging.Filter):
    """Stamps role, instance and the bound ``log_context`` ids on every record."""

    def __init__(self, role: str, instance: str) -> None:
        super().__init__()
        self.role = role
        self.instance = instance

    def filter(self, record: logging.LogRecord) -> bool:
        record.role = self.role
        record.instance = self.instance
        for key, value in current_context().items():
            if not hasattr(record, key):  # an explicit ``extra`` wins over the bound context
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in vars(record).items() if k not in _RESERVED and k not in _CONTEXT_FIELDS
    }


def _ordered_extras(record: logging.LogRecord) -> list[tuple[str, Any]]:
    extras = _extras(record)
    first = [(k, extras.pop(k)) for k in _ID_FIELDS if k in extras]
    return first + sorted(extras.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, role, instance, logger, event, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "role": getattr(record, "role", None),
            "instance": getattr(record, "instance", None),
            "logger": record.name,
            "event": mask_secrets(record.getMessage()),
        }
        for key, value in _ordered_extras(record):
            entry[key] = _masked_value(key, value)
        if record.exc_info:
            entry["exception"] = mask_secrets(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_secrets(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


_COLORS = {"DEBUG": "\x1b[2m", "INFO": "", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m",
           "CRITICAL": "\x1b[1;31m"}
_RESET = "\x1b[0m"


class ConsoleFormatter(logging.Formatter):
    """A readable line: time, level, logger, message, then ``[key=value …]`` ids first."""

    def __init__(self, color: bool = False) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        extras = " ".join(f"{k}={_masked_value(k, v)}" for k, v in _ordered_extras(record))
        level = f"{record.levelname:<7}"
        if self.color and _COLORS.get(record.levelname):
            level = f"{_COLORS[record.levelname]}{level}{_RESET}"
        line = f"{when} {level} {record.name}: {record.getMessage()}"
        if extras:
            line += f"  [{extras}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return mask_secrets(line)


def use_json(settings: Settings, stream: TextIO) -> bool:
    """JSON unless asked for the console format or writing to a terminal."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    return not stream.isatty()


def configure_logging(
    settings: Settings, *, role: str, instance: str, stream: TextIO | None = None
) -> logging.Handler:
    """Install the process-wide handler; called once by each role's entry point."""
    out = stream if stream is not None else sys.stderr
    register_secrets(settings_secrets(settings))
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        JsonFormatter() if use_json(settings, out) else ConsoleFormatter(color=out.isatty())
    )
    handler.addFilter(ContextFilter(role, instance))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)
    for noisy in ("httpx", "httpcore", "urllib3", "websockets", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
