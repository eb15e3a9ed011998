"""`tickstock up` end to end with real processes: every role healthy, a killed role comes back,
Ctrl-C leaves nothing behind — on external servers and on embedded ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tickstock.ops.infra import free_port
from tickstock.ops.supervisor import available_roles, read_state

ALL_ROLES = ("web", "api", "worker", "scheduler", "stream")


class Platform:
    """A running `tickstock up` whose output is collected in the background."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.data_dir = Path(env["TICKSTOCK_DATA_DIR"])
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickstock", "up"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.output.append(line.rstrip())

    def status(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tickstock", "status"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def wait_healthy(self, timeout_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise AssertionError("tickstock up exited:\n" + "\n".join(self.output[-40:]))
            if self.status().returncode == 0:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(
            f"not healthy after {timeout_s}s:\n{self.status().stdout}\n" + "\n".join(self.output[-40:])
        )

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env.update(
        {
            "TICKSTOCK_DATA_DIR": str(tmp_path / "data"),
            "TICKSTOCK_WEB_PORT": str(free_port()),
            "TICKSTOCK_API_PORT": str(free_port()),
            "TICKSTOCK_WORKER_METRICS_PORT": str(free_port()),
            "TICKSTOCK_SCHEDULER_METRICS_PORT": str(free_port()),
            "TICKSTOCK_STREAM_METRICS_PORT": str(free_port()),
            "TICKSTOCK_DEMO_SYMBOLS": "5",
            "TICKSTOCK_LOG_FORMAT": "json",
            "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.5",
            "TICKSTOCK_HEARTBEAT_TTL_S": "3",
        }
    )
    env.update(overrides)
    return env


@pytest.fixture
def external_platform(tmp_path: Path, session_db_dsn: str, redis_url: str) -> Iterator[Platform]:
    platform = Platform(
        _env(tmp_path, TICKSTOCK_DATABASE_URL=session_db_dsn, TICKSTOCK_REDIS_URL=redis_url), tmp_path
    )
    yield platform
    if platform.proc.poll() is None:
        platform.proc.kill()
        platform.proc.wait(10)


def test_every_role_is_installed() -> None:
    assert available_roles(ALL_ROLES) == list(ALL_ROLES)


def test_up_on_external_servers_restarts_a_killed_role_and_stops_cleanly(
    external_platform: Platform,
) -> None:
    platform = external_platform
    # functional bound only: the 20 s target is measured by bench/up.py, not by a timed test
    platform.wait_healthy(90)
    state = read_state(platform.data_dir)
    assert state is not None
    roles = {entry["role"] for entry in state["roles"]}  # type: ignore[index, union-attr]
    assert roles == set(ALL_ROLES)

    worker = next(e for e in state["roles"] if e["role"] == "worker")  # type: ignore[index, union-attr]
    psutil.Process(worker["pid"]).kill()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any("restarted worker" in line for line in platform.output):
            break
        time.sleep(0.2)
    assert any("worker exited with code -9; restarting" in line for line in platform.output)
    platform.wait_healthy(90)

    children = platform.descendants()
    assert len(children) >= len(ALL_ROLES)
    assert platform.interrupt() == 0, "\n".join(platform.output[-30:])
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left behind: {alive}"
    # every role's output reached the merged stream with its prefix
    for role in ALL_ROLES:
        assert any(line.startswith(f"{role} ") for line in platform.output), role


def test_up_on_embedded_servers_needs_no_configuration(tmp_path: Path) -> None:
    platform = Platform(_env(tmp_path), tmp_path)
    try:
        platform.wait_healthy(120)  # the first start includes initdb
        infra_status = subprocess.run(
            [sys.executable, "-m", "tickstock", "infra", "status"],
            env=platform.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert "postgres  embedded  OK" in infra_status
        assert "redis     embedded  OK" in infra_status
        children = platform.descendants()
        assert platform.interrupt() == 0, "\n".join(platform.output[-30:])
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive
        left = [
            p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])
        ]
        assert not left, f"left behind: {left}"
    finally:
        if platform.proc.poll() is None:
            platform.proc.kill()
        subprocess.run(
            [sys.executable, "-m", "tickstock", "infra", "stop"],
            env=platform.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
