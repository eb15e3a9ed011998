"""SIGTERM/SIGINT for the roles that are not HTTP servers (uvicorn handles its own)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


def stop_on_signals(stop: Callable[[], None], *, doing: str = "stopping") -> None:
    """Call ``stop`` on SIGTERM/SIGINT; nothing when not on the main thread (embedded in a test
    or another program, the caller stops it)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: %s", signum, doing)
        stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
