"""`tickstock up`: seconds from launch to "every role healthy", and how fast preflight fails.

Issue targets: healthy within 20 s of `tickstock up` (after the first install), and each preflight
fault reported within 5 s. Both are wall times of real processes on the machine's servers (a
scratch database and Redis db); the baseline printed beside them is the bare interpreter start
plus `import tickstock.cli.main`, the least any `tickstock` command can cost on this machine now.

    .venv/bin/python bench/up.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median, report, scratch_database, scratch_redis
from tickstock.ops.infra import free_port

TARGET_HEALTHY_S = 20.0


def _env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    env.update({
        "TICKSTOCK_DATA_DIR": str(data_dir),
        "TICKSTOCK_WEB_PORT": str(free_port()),
        "TICKSTOCK_API_PORT": str(free_port()),
        "TICKSTOCK_WORKER_METRICS_PORT": str(free_port()),
        "TICKSTOCK_SCHEDULER_METRICS_PORT": str(free_port()),
        "TICKSTOCK_STREAM_METRICS_PORT": str(free_port()),
        "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.5",
        "TICKSTOCK_DEMO_SYMBOLS": "20",
    })
    env.update(overrides)
    return env


def _tickstock(*args: str) -> list[str]:
    return [sys.executable, "-m", "tickstock", *args]


def time_to_healthy(env: dict[str, str]) -> float:
    """Launch `tickstock up`, poll `tickstock status` until it exits 0, then Ctrl-C it."""
    started = time.monotonic()
    up = subprocess.Popen(_tickstock("up"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < 120:
            if up.poll() is not None:
                raise SystemExit(f"tickstock up exited with {up.returncode} before it was healthy")
            status = subprocess.run(_tickstock("status"), env=env, capture_output=True, check=False)
            if status.returncode == 0:
                return time.monotonic() - started
            time.sleep(0.25)
        raise SystemExit("not healthy after 120 s")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)


def time_to_fail(env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(_tickstock("up", "--no-demo"), env=env, capture_output=True, check=False)
    if result.returncode == 0:
        raise SystemExit("preflight passed where it should fail")
    return time.monotonic() - started


def baseline_start() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tickstock.cli.main"], check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with scratch_database() as dsn, scratch_redis() as redis_url, tempfile.TemporaryDirectory() as tmp:
        servers = {"TICKSTOCK_DATABASE_URL": dsn, "TICKSTOCK_REDIS_URL": redis_url}
        healthy = [time_to_healthy(_env(Path(tmp) / f"up{i}", **servers)) for i in range(runs)]
        faults = {
            "redis down": {**servers, "TICKSTOCK_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
            "postgres down": {**servers, "TICKSTOCK_DATABASE_URL":
                              f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
            "bad setting": {**servers, "TICKSTOCK_WEB_PORT": "eighty"},
        }
        fail_times = {name: median([time_to_fail(_env(Path(tmp) / "pf", **env)) for _ in range(runs)])
                      for name, env in faults.items()}
    base = median([baseline_start() for _ in range(runs)])
    print(f"baseline: interpreter + import tickstock.cli.main = {base:.2f} s (median of {runs})")
    for name, seconds in fail_times.items():
        print(f"preflight fails ({name}) in {seconds:.2f} s (median of {runs}; target <= 5)")
    print(f"healthy after {', '.join(f'{s:.1f}' for s in healthy)} s")
    return report("up_healthy_s", median(healthy), "<=", TARGET_HEALTHY_S)


if __name__ == "__main__":
    sys.exit(main())
