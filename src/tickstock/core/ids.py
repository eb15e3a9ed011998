"""Identifiers: sortable, unique, printable."""

from __future__ import annotations

import os
import socket
import uuid


def new_id() -> str:
    """A new random id (UUID4 hex with dashes), used for messages, jobs and runs."""
    return str(uuid.uuid4())


def instance_name(role: str) -> str:
    """A process instance name: ``<role>-<host>-<pid>``, unique on a machine and readable."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"
