"""This machine as a run sees it: which addresses are loopback, which directories it can write.

Shared by the sources (an API key is optional for a loopback simulator), the stream (a local
log's directory) and `st doctor`, so they all answer the same way.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for localhost and every loopback address (127.0.0.0/8, ::1, bracketed or not)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether a base URL points at this machine (a simulator)."""
    return is_loopback(urlparse(url).hostname or "")


def dir_problem(path: Path) -> str | None:
    """None when `path` is writable (or could be created); else why not. Creates nothing."""
    if not path.exists():
        parent = path.resolve().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return f"does not exist and {parent} is not writable"
        return None
    if not path.is_dir():
        return "exists but is not a directory"
    probe = path / f".st-doctor-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    return None


def dir_state(path: Path) -> str:
    """How a directory that passed `dir_problem` stands: writable, or can be created."""
    return "writable" if path.exists() else "can be created"
