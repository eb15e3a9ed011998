"""What the two HTTP roles (web, pipeline API) share: a uvicorn server that exits cleanly, the
heartbeat that turns ``running`` once the socket listens, and secrets generated once per
installation."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from tickstock.bus.heartbeat import HeartbeatThread

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """uvicorn, minus re-raising the signal after its graceful shutdown: the process then
    finishes its own clean-up (heartbeat, pools) and exits 0 instead of dying by SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(server: uvicorn.Server, heartbeat: HeartbeatThread, role: str) -> None:
    """Run ``server`` until SIGTERM/SIGINT; the heartbeat says ``running`` only once the socket
    accepts requests."""

    def running_once_listening() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            heartbeat.state = "running"

    threading.Thread(target=running_once_listening, name=f"{role}-started", daemon=True).start()
    server.run()  # stops accepting, drains, runs the lifespan's shutdown


def generated_secret(path: Path, *, nbytes: int, what: str) -> str:
    """The secret kept in ``path`` (0600), generated on first use; when two instances race,
    both end up with the one written first."""
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    log.info("generated the %s in %s", what, path)
    return value
