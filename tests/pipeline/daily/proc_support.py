"""Real role processes for the daily-run tests: ``python -m tickstock <role>`` with its own
environment and log file, started, waited for, signalled and killed like an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from tickstock.bus.heartbeat import read_heartbeats
from tickstock.contracts.state import Heartbeat


def role_env(db_dsn: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a role process on the test's servers (no other TICKSTOCK_ setting)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKSTOCK_") and k != "MASSIVE_API_KEY"}
    env |= {"TICKSTOCK_DATABASE_URL": db_dsn, "TICKSTOCK_REDIS_URL": redis_url,
            "TICKSTOCK_DATA_DIR": str(data_dir), "TICKSTOCK_LOG_FORMAT": "json",
            "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.5", "TICKSTOCK_HEARTBEAT_TTL_S": "3",
            "TICKSTOCK_WORKER_METRICS_PORT": "0", "TICKSTOCK_SCHEDULER_METRICS_PORT": "0"}
    env |= extra
    return env


@dataclass
class RoleProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM, then the exit code (SIGKILL and a failure if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.output()[-3000:]}") \
                from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def start_role(name: str, *args: str, env: dict[str, str], log_dir: Path) -> RoleProcess:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tickstock", *args], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return RoleProcess(name, proc, log)


def wait_for(check: Callable[[], object], timeout_s: float, what: str,
             *watch: RoleProcess) -> None:
    """Poll ``check`` until it is truthy; fail early (with its log) if a watched process died."""
    deadline = time.monotonic() + timeout_s
    while not check():
        for role in watch:
            if role.proc.poll() is not None:
                raise AssertionError(f"{role.name} exited with {role.proc.returncode} while "
                                     f"waiting for {what}:\n{role.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {r.name}\n{r.output()[-2000:]}" for r in watch)
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}\n{logs}")
        time.sleep(0.1)


def heartbeat_of(client: redis.Redis, role: RoleProcess) -> Heartbeat | None:
    return next((b for b in read_heartbeats(client) if b.pid == role.pid), None)
