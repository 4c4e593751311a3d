"""The drain's signature index kept between runs, in `runtime.state_dir`.

Without it every drain starts by hashing the whole `signature` column of
bronze.webhook_events, a cost that grows with the table's age (every 5 minutes, for
months). Kept here, a drain loads the keys (12 bytes a row), hashes only the data files
the table gained since, and uses the index only if it then holds exactly one key per row
of the table. Anything else (another table under that name, a table restored behind the
stored version, rows deleted, a damaged or unreadable file) and the index is built from
the table as before: the store can make a drain faster, never make it drop an event.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

log = logging.getLogger("st.stream.signatures")

Keys = tuple[np.ndarray, np.ndarray]  # (uint64, uint32) per signature, sorted by the first


@dataclass
class StoredIndex:
    """The keys of every row in the table's data files `paths`, as of `version`."""

    table_id: str
    version: int
    paths: set[str]
    keys: Keys


def index_path(directory: Path, table_id: str) -> Path:
    return directory / "signature-index" / f"{table_id}.npz"


def load(directory: Path, table_id: str) -> StoredIndex | None:
    """The stored index of the table `table_id`, or None (none yet, or unreadable)."""
    path = index_path(directory, table_id)
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = orjson.loads(stored["meta"].tobytes())
            k1 = np.asarray(stored["k1"], np.uint64)
            k2 = np.asarray(stored["k2"], np.uint32)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign file is only a slower start
        log.warning("stored signature index %s is unreadable (%s): rebuilding it", path, exc)
        return None
    if meta.get("table_id") != table_id or len(k1) != len(k2) or len(k1) != meta.get("keys"):
        log.warning("stored signature index %s does not describe its table: rebuilding it", path)
        return None
    return StoredIndex(table_id, int(meta["version"]), set(meta["paths"]), (k1, k2))


def save(directory: Path, index: StoredIndex) -> None:
    """Replace the stored index atomically (a crash leaves the old one or the new one)."""
    path = index_path(directory, index.table_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "table_id": index.table_id,
        "version": index.version,
        "keys": len(index.keys[0]),
        "paths": sorted(index.paths),
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        np.savez(
            f, k1=index.keys[0], k2=index.keys[1], meta=np.frombuffer(orjson.dumps(meta), np.uint8)
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
