"""A stage's run in progress, kept beside its lock in runtime.state_dir, not in the lake.

`ops.runs` gets one blind append per run, at its end. Until then the run's pending ledger
row lives here, one small JSON file per stage (`locks/<stage>.run`), written only by the
holder of the stage's lock and replaced atomically (write, fsync, rename), so a reader
never sees half of one. `st runs list` shows these as the runs in progress. A journal
still present when the next run of the stage takes the lock belongs to a run that ended
without appending its row (SIGKILL, power loss, the lake unreachable at its end): that
next run appends it, as the failure it was or with the outcome the run had already
written here, and only then replaces the journal with its own.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from smarttrader_cli.ops.locks import lock_path

SUFFIX = ".run"


def journal_path(state_dir: str | Path, stage: str) -> Path:
    """Where the stage's run in progress is journaled: beside its lock file."""
    return lock_path(state_dir, stage).with_suffix(SUFFIX)


def write_journal(path: Path, record: dict[str, Any]) -> None:
    """Replace the journal with `record` in one rename (the caller holds the stage lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(record, default=_iso, sort_keys=True))
        f.flush()
        os.fsync(f.fileno())  # a power loss must not leave a journal naming nothing
    os.replace(tmp, path)


def read_journal(path: Path) -> dict[str, Any] | None:
    """The journaled record, or None when there is none (or it cannot be read)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(raw, dict) or not raw.get("run_id"):
        return None
    for name in ("started_at", "ended_at"):
        if raw.get(name):
            raw[name] = datetime.fromisoformat(raw[name])
    return raw


def clear_journal(path: Path) -> None:
    """Forget the journaled run once its row is in the ledger."""
    path.unlink(missing_ok=True)


def journals(state_dir: str | Path) -> list[dict[str, Any]]:
    """Every journaled run under `state_dir`, in no particular order."""
    found = []
    for path in sorted((Path(state_dir) / "locks").glob(f"*{SUFFIX}")):
        record = read_journal(path)
        if record is not None:
            found.append(record)
    return found


def holder_gone(record: dict[str, Any]) -> bool:
    """Whether the process that journaled `record` has ended (False when it cannot be told).

    Only a process on this host can be checked; a pid reused by a later process is told
    apart by its start time.
    """
    import psutil

    if record.get("host") != socket.gethostname() or not record.get("pid"):
        return False
    try:
        process = psutil.Process(int(record["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        created = process.create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    started = record.get("started_at")
    return isinstance(started, datetime) and created > started.timestamp() + 1.0


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
