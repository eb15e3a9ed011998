"""The supervisor behind `tickstock up`: start every role, watch it, restart it, stop it all.

1. Preflight (ops/preflight.py): dependencies, provider key, free ports — one line per fault.
2. Infrastructure (ops/infra.py): embedded servers started or reused, external ones checked.
3. Schema: `alembic upgrade heads` (store/migrate.py), idempotent.
4. Roles: one subprocess per role instance (`python -m tickstock <role>`), its output merged
   into one stream with the instance as prefix.
5. Watch: a role that exits during start-up (``startup_grace_s``) fails the whole start-up;
   afterwards it is restarted with exponential back-off and the restart is announced.
6. Shutdown on SIGINT/SIGTERM: SIGTERM to every role, SIGKILL after ``stop_timeout_s``, then
   the embedded servers are stopped. Children die with the supervisor even on SIGKILL
   (PR_SET_PDEATHSIG on Linux), so nothing is left behind.

State for `tickstock status` is written to ``<data_dir>/supervisor.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tickstock.core.timeutil import iso
from tickstock.ops import infra
from tickstock.ops.roles import ROLES
from tickstock.ops.settings import Settings

STATE_FILE = "supervisor.json"
_BACKOFF_MAX_S = 30.0
_HEALTHY_AFTER_S = 30.0  # a role that ran this long has its back-off reset


def available_roles(requested: tuple[str, ...]) -> list[str]:
    """Requested roles that exist in this install (later roles register by adding a module)."""
    return [
        role
        for role in requested
        if role in ROLES and importlib.util.find_spec(f"tickstock.ops.roles.{role}") is not None
    ]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


@dataclass
class RoleProcess:
    """One supervised role instance."""

    role: str
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    restart_at: float | None = None
    last_exit: int | None = None
    history: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Runs role subprocesses until told to stop. Output lines go to ``emit``."""

    def __init__(
        self,
        settings: Settings,
        endpoints: infra.Infra,
        roles: list[str],
        *,
        emit: Callable[[str], None] = print,
        startup_grace_s: float = 5.0,
        stop_timeout_s: float = 10.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints
        self.emit = emit
        self.startup_grace_s = startup_grace_s
        self.stop_timeout_s = stop_timeout_s
        self.stop_event = threading.Event()
        # Held while the state file is written or removed: once stop() removed it, a watcher
        # finishing its last round (another thread, in tests and embedders) must not rewrite it.
        self._state_lock = threading.Lock()
        self._lines: queue.Queue[str] = queue.Queue()
        self._env = self._child_env(extra_env or {})
        self.members = self._members(roles)
        self.state_path = settings.data_dir / STATE_FILE

    def _members(self, roles: list[str]) -> list[RoleProcess]:
        members: list[RoleProcess] = []
        for role in roles:
            count = self.settings.workers if role == "worker" else 1
            for index in range(count):
                name = role if count == 1 else f"{role}-{index + 1}"
                argv = [sys.executable, "-m", "tickstock", role]
                members.append(RoleProcess(role, name, argv))
        return members

    def _child_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        # Children use exactly the servers the supervisor resolved (embedded or external).
        env["TICKSTOCK_DATABASE_URL"] = self.endpoints.postgres.url
        env["TICKSTOCK_REDIS_URL"] = self.endpoints.redis.url
        env["TICKSTOCK_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env.setdefault("TICKSTOCK_LOG_FORMAT", "console" if sys.stdout.isatty() else "json")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, member: RoleProcess) -> None:
        member.process = subprocess.Popen(
            member.argv,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if os.name == "posix" else None,  # noqa: PLW1509
        )
        member.started_at = time.monotonic()
        member.restart_at = None
        assert member.process.stdout is not None
        threading.Thread(
            target=self._pump,
            args=(member.name, member.process.stdout),
            daemon=True,
            name=f"log-{member.name}",
        ).start()
        self.say(f"started {member.name} (pid {member.pid})")

    @property
    def _width(self) -> int:
        return max([len(m.name) for m in self.members] + [len("up")])

    def _pump(self, name: str, stream: IO[bytes]) -> None:
        width = self._width
        for raw in iter(stream.readline, b""):
            self._lines.put(f"{name:<{width}} | {raw.decode(errors='replace').rstrip()}")
        stream.close()

    def say(self, text: str) -> None:
        self._lines.put(f"{'up':<{self._width}} | {text}")

    def _flush_lines(self, timeout: float) -> None:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return
        self.emit(line)
        while True:
            try:
                self.emit(self._lines.get_nowait())
            except queue.Empty:
                return

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> bool:
        """Start every role; False (everything stopped again) if one dies during start-up."""
        for member in self.members:
            self._spawn(member)
        self._write_state()
        deadline = time.monotonic() + self.startup_grace_s
        while time.monotonic() < deadline and not self.stop_event.is_set():
            self._flush_lines(0.1)
            dead = [m for m in self.members if not m.alive()]
            if dead:
                for member in dead:
                    code = member.process.returncode if member.process else None
                    self.say(f"{member.name} exited with code {code} during start-up")
                self.stop()
                return False
        self.say(f"all roles running: {', '.join(m.name for m in self.members)}")
        self._write_state()
        return True

    def watch(self) -> None:
        """Restart roles that die, with back-off, until ``stop_event`` is set."""
        while not self.stop_event.is_set():
            self._flush_lines(0.2)
            now = time.monotonic()
            changed = False
            for member in self.members:
                changed |= self._tend(member, now)
            if changed:
                self._write_state()

    def _tend(self, member: RoleProcess, now: float) -> bool:
        if self.stop_event.is_set():
            return False  # stopping: a role that exits now is not restarted
        if member.alive():
            if now - member.started_at > _HEALTHY_AFTER_S:
                member.backoff_s = 1.0
            return False
        if member.restart_at is None:
            code = member.process.returncode if member.process else None
            member.last_exit = code
            member.restart_at = now + member.backoff_s
            self.say(f"{member.name} exited with code {code}; restarting in {member.backoff_s:.0f}s")
            member.backoff_s = min(member.backoff_s * 2, _BACKOFF_MAX_S)
            return True
        if now >= member.restart_at:
            member.restarts += 1
            self._spawn(member)
            self.say(f"restarted {member.name} (restart #{member.restarts})")
            return True
        return False

    def stop(self) -> None:
        """SIGTERM every role, SIGKILL what is left after the timeout."""
        self.stop_event.set()
        running = [m for m in self.members if m.alive()]
        for member in running:
            assert member.process is not None
            member.process.terminate()
        deadline = time.monotonic() + self.stop_timeout_s
        for member in running:
            assert member.process is not None
            try:
                member.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{member.name} did not stop in {self.stop_timeout_s:.0f}s; killing it")
                member.process.kill()
                member.process.wait(5)
        self._flush_lines(0.2)
        with self._state_lock:
            self.state_path.unlink(missing_ok=True)

    # -- state for `tickstock status` --------------------------------------------------------
    def _write_state(self) -> None:
        from datetime import UTC, datetime

        state = {
            "pid": os.getpid(),
            "written_at": iso(datetime.now(UTC)),
            "roles": [
                {
                    "name": m.name,
                    "role": m.role,
                    "pid": m.pid,
                    "alive": m.alive(),
                    "restarts": m.restarts,
                    "last_exit": m.last_exit,
                }
                for m in self.members
            ],
        }
        with self._state_lock:
            if self.stop_event.is_set():
                return  # stopping: stop() removes the state file for good
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(self.state_path)


def read_state(data_dir: Path) -> dict[str, object] | None:
    """The running supervisor's state, or None when no supervisor is running."""
    path = data_dir / STATE_FILE
    if not path.is_file():
        return None
    state: dict[str, object] = json.loads(path.read_text())
    pid = state.get("pid")
    if not isinstance(pid, int) or not _pid_alive(pid):
        return None
    return state


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
