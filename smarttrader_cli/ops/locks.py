"""Per-stage file locks: a second concurrent run of a stage exits 75."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from smarttrader_cli.errors import LockHeldError


def lock_path(state_dir: str | Path, stage: str) -> Path:
    return Path(state_dir) / "locks" / f"{stage.replace('/', '_')}.lock"


@contextmanager
def stage_lock(state_dir: str | Path, stage: str, run_id: str) -> Iterator[Path]:
    """Hold the stage's lock for the block; LockHeldError names the current holder."""
    path = lock_path(state_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_or_refuse(fd, fcntl.LOCK_EX, stage, path)
        holder = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the flock


def refuse_if_held(state_dir: str | Path, stage: str) -> None:
    """LockHeldError at once if a process holds the stage's lock now.

    A cheap early answer for a command to give before its heavy imports: cron's overlapping
    ticks on a busy host then cost a config load each, not a full start. `stage_lock`
    still decides; a run that passes here may be refused there.
    """
    path = lock_path(state_dir, stage)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        _lock_or_refuse(fd, fcntl.LOCK_SH, stage, path)
    finally:
        os.close(fd)  # closing releases the shared flock


def _lock_or_refuse(fd: int, mode: int, stage: str, path: Path) -> None:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LockHeldError(
            f"stage {stage} is already running ({describe_holder(path)}); lock {path}"
        ) from None


def describe_holder(path: Path) -> str:
    """Who holds a lock, from the JSON its holder wrote."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    if not info:
        return "holder unknown"
    return f"run {info.get('run_id')} pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
