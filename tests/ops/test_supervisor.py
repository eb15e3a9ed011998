"""The supervisor with real child processes: fail-fast start-up, restart with back-off,
merged prefixed output, clean shutdown leaving nothing behind."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import psutil

from tickstock.ops.infra import Endpoint, Infra
from tickstock.ops.settings import load_settings
from tickstock.ops.supervisor import RoleProcess, Supervisor, read_state

SLEEPER = "import time, sys; print('ready', flush=True); time.sleep(600)"
CRASHER = "import sys; print('boom', flush=True); sys.exit(3)"


def _supervisor(tmp_path: Path, scripts: dict[str, str], lines: list[str]) -> Supervisor:
    settings = load_settings({"TICKSTOCK_DATA_DIR": str(tmp_path)})
    endpoints = Infra(
        Endpoint("postgres", "external", "postgresql://x@127.0.0.1:1/x", "127.0.0.1:1"),
        Endpoint("redis", "external", "redis://127.0.0.1:1/0", "127.0.0.1:1"),
    )
    sup = Supervisor(settings, endpoints, [], emit=lines.append, startup_grace_s=1.5, stop_timeout_s=3)
    sup.members = [RoleProcess(name, name, [sys.executable, "-c", code]) for name, code in scripts.items()]
    return sup


def test_a_role_dying_during_startup_fails_fast_and_stops_the_rest(tmp_path: Path) -> None:
    lines: list[str] = []
    sup = _supervisor(tmp_path, {"good": SLEEPER, "bad": CRASHER}, lines)
    assert sup.start() is False
    good = sup.members[0]
    assert good.process is not None and good.process.poll() is not None
    assert any("bad" in line and "exited with code 3 during start-up" in line for line in lines)
    assert any(line.startswith("bad ") and "| boom" in line for line in lines)


def test_a_role_that_dies_later_is_restarted_with_backoff(tmp_path: Path) -> None:
    lines: list[str] = []
    sup = _supervisor(tmp_path, {"web": SLEEPER, "worker": SLEEPER}, lines)
    assert sup.start()
    assert read_state(tmp_path) is not None
    watcher = threading.Thread(target=sup.watch, daemon=True)
    watcher.start()
    worker = sup.members[1]
    first_pid = worker.pid
    assert first_pid is not None
    psutil.Process(first_pid).kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (worker.pid == first_pid or not worker.alive()):
        time.sleep(0.1)
    assert worker.alive() and worker.pid != first_pid
    assert worker.restarts == 1
    assert any("worker exited with code -9; restarting in 1s" in line for line in lines)
    assert worker.backoff_s == 2.0  # the next crash waits longer
    pids = [m.pid for m in sup.members]
    sup.stop()
    watcher.join(5)
    for pid in pids:
        assert (pid is not None and not psutil.pid_exists(pid)) or psutil.Process(pid).status() == "zombie"
    assert read_state(tmp_path) is None
