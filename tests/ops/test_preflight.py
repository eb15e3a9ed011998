"""Preflight of `tickstock up`: each fault prints one line naming it and exits non-zero, leaving
nothing running (bench/up.py measures the 5 s target)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tickstock.ops.infra import free_port


def _run_up(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKSTOCK_")}
    full.update({"TICKSTOCK_DATA_DIR": str(tmp_path / "data"), "TICKSTOCK_ROLES": "web,api"})
    full.update(env)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tickstock", "up", "--no-demo"],
        env=full,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    return result, time.monotonic() - started


def _children_of_data_dir(tmp_path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(tmp_path) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def real_servers() -> dict[str, str]:
    return {
        "TICKSTOCK_DATABASE_URL": os.environ.get(
            "TICKSTOCK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        "TICKSTOCK_REDIS_URL": os.environ.get("TICKSTOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }


def _assert_one_line_failure(result: subprocess.CompletedProcess[str], elapsed: float, *words: str) -> None:
    assert result.returncode != 0
    # fails fast rather than hanging; the 5 s target is measured by bench/up.py, not a timed test
    assert elapsed < 30.0, f"preflight took {elapsed:.1f}s"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_redis_down(tmp_path: Path, real_servers: dict[str, str]) -> None:
    env = dict(real_servers, TICKSTOCK_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    result, elapsed = _run_up(tmp_path, env)
    _assert_one_line_failure(result, elapsed, "redis", "TICKSTOCK_REDIS_URL")
    assert not _children_of_data_dir(tmp_path)


def test_postgres_down(tmp_path: Path, real_servers: dict[str, str]) -> None:
    env = dict(real_servers, TICKSTOCK_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    result, elapsed = _run_up(tmp_path, env)
    _assert_one_line_failure(result, elapsed, "postgres", "TICKSTOCK_DATABASE_URL")
    assert not _children_of_data_dir(tmp_path)


def test_port_taken(tmp_path: Path, real_servers: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(real_servers, TICKSTOCK_WEB_PORT=str(port))
        result, elapsed = _run_up(tmp_path, env)
    _assert_one_line_failure(result, elapsed, str(port), "TICKSTOCK_WEB_PORT")
    assert not _children_of_data_dir(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TICKSTOCK_WEB_PORT", "eighty", "TICKSTOCK_WEB_PORT"),
        ("TICKSTOCK_WORKERS", "0", "TICKSTOCK_WORKERS"),
        ("TICKSTOCK_NO_SUCH_SETTING", "1", "TICKSTOCK_NO_SUCH_SETTING"),
        ("TICKSTOCK_PROVIDER", "massive", "MASSIVE_API_KEY"),
    ],
)
def test_bad_setting(
    tmp_path: Path, real_servers: dict[str, str], variable: str, value: str, expected: str
) -> None:
    result, elapsed = _run_up(tmp_path, dict(real_servers, **{variable: value}))
    _assert_one_line_failure(result, elapsed, expected)
    assert not (tmp_path / "data" / "postgres").exists()


def test_secret_is_not_echoed_in_errors(tmp_path: Path, real_servers: dict[str, str]) -> None:
    env = dict(
        real_servers, TICKSTOCK_DATABASE_URL="postgresql://u:hunter2@127.0.0.1:1/x", TICKSTOCK_WEB_PORT="x"
    )
    result, _ = _run_up(tmp_path, env)
    assert "hunter2" not in result.stderr + result.stdout
