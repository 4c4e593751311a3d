"""The drain's signature index kept between runs, in `runtime.state_dir`.

Without it every drain starts by hashing the whole `signature` column of
bronze.webhook_events, a cost that grows with the table's age (every 5 minutes, for
months). Kept here, a drain loads the keys (12 bytes a row), hashes only the data files
the table gained since, and uses the index only if it then holds exactly one key per row
of the table. Anything else (another table under that name, a table restored behind the
stored version, rows deleted, a damaged or unreadable file) and the index is built from
the table as before: the store can make a drain faster, never make it drop an event.

The index is kept as a base (every key as of some version) and a tail (the keys added
since). A drain rewrites the tail alone, so its save costs what it added, not what the
table holds (a year of events is tens of millions of keys); the tail is folded into a new
base once it holds an eighth of the base's keys. A tail whose base is not the one on disk
(a crash between a new base and the old tail's removal) is ignored: the base then stands
for its own version and the files added since are hashed again.
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


FOLD_MIN_KEYS = 50_000  # a tail below this is never folded (a young table)
FOLD_SHARE = 8  # a tail past 1/FOLD_SHARE of the base's keys is folded into a new base


@dataclass
class StoredIndex:
    """The keys of every row in the table's data files `paths`, as of `version`.

    `base` names the stored base they came from (its version; None: not from the store)
    and `tail` is what they hold beyond it, so a save can write the tail alone.
    """

    table_id: str
    version: int
    paths: set[str]
    keys: Keys
    base: int | None = None
    base_keys: int = 0
    tail: Keys | None = None


def index_path(directory: Path, table_id: str) -> Path:
    return directory / "signature-index" / f"{table_id}.npz"


def tail_path(directory: Path, table_id: str) -> Path:
    return directory / "signature-index" / f"{table_id}.tail.npz"


def load(directory: Path, table_id: str) -> StoredIndex | None:
    """The stored index of the table `table_id`, or None (none yet, or unreadable)."""
    path = index_path(directory, table_id)
    base = _read(path, table_id)
    if base is None:
        return None
    meta, keys = base
    index = StoredIndex(
        table_id, int(meta["version"]), set(meta["paths"]), keys, int(meta["version"]), len(keys[0])
    )
    tail = _read(tail_path(directory, table_id), table_id, missing_ok=True)
    if tail is None:
        return index
    tail_meta, tail_keys = tail
    if tail_meta.get("base") != index.base or tail_meta.get("base_keys") != index.base_keys:
        return index  # the tail of another base
    index.version, index.paths = int(tail_meta["version"]), set(tail_meta["paths"])
    index.keys, index.tail = merged(keys, tail_keys), tail_keys
    return index


def _read(path: Path, table_id: str, missing_ok: bool = False) -> tuple[dict, Keys] | None:
    """A stored file's meta and keys, or None (missing, damaged, another table's)."""
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
    return meta, (k1, k2)


def merged(index: Keys, new: Keys) -> Keys:
    """The sorted `index` with the sorted keys `new` (none of them in it) inserted."""
    at = np.searchsorted(index[0], new[0])
    return np.insert(index[0], at, new[0]), np.insert(index[1], at, new[1])


def sorted_keys(keys: Keys) -> Keys:
    """`keys` sorted by their first part."""
    order = np.argsort(keys[0], kind="stable")
    return keys[0][order], keys[1][order]


def concatenated(parts: list[Keys]) -> Keys:
    """The keys of `parts`, one after the other."""
    if not parts:
        return np.empty(0, np.uint64), np.empty(0, np.uint32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def save(directory: Path, index: StoredIndex) -> tuple[int, int]:
    """Store the index atomically (a crash leaves the old one or the new one): its tail
    beside the base it grew from, or a new base when there is none or the tail is big.
    Returns the base now stored (its version and key count)."""
    meta = {"table_id": index.table_id, "version": index.version, "paths": sorted(index.paths)}
    tail = index.tail
    if (
        index.base is None
        or tail is None
        or len(tail[0]) > max(FOLD_MIN_KEYS, index.base_keys // FOLD_SHARE)
    ):
        _write(index_path(directory, index.table_id), index.keys, meta)
        tail_path(directory, index.table_id).unlink(missing_ok=True)
        return index.version, len(index.keys[0])
    meta |= {"base": index.base, "base_keys": index.base_keys}
    _write(tail_path(directory, index.table_id), tail, meta)
    return index.base, index.base_keys


def _write(path: Path, keys: Keys, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "keys": len(keys[0])}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        np.savez(f, k1=keys[0], k2=keys[1], meta=np.frombuffer(orjson.dumps(meta), np.uint8))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
