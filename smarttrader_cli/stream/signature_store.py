"""The drain's signature index kept between runs, in `runtime.state_dir`.

Without it every drain starts by hashing the whole `signature` column of
bronze.webhook_events, a cost that grows with the table's age (every 5 minutes, for
months). Kept here, a drain maps the stored keys (12 bytes a row) instead of reading
them, hashes only the data files the table gained since, and uses the index only if it
then holds exactly one key per row of the table. Anything else (another table under that
name, a table restored behind the stored version, rows deleted, a damaged or unreadable
file) and the index is built from the table as before: the store can make a drain faster,
never make it drop an event.

The index is kept as a base (every key as of some version) and a tail (the keys added
since). The base is memory-mapped: a drain's probes read the pages their binary searches
touch, not the year of keys (tens of millions) it holds, and nothing copies it. A drain
rewrites the tail alone, so its save costs what was added since the base, at most
FOLD_MAX_KEYS; past an eighth of the base's keys (or FOLD_MAX_KEYS) the tail is folded into
a new base. A tail whose base is not the one on disk (a crash between a new base and the
old tail's removal) is ignored: the base then stands for its own version and the files
added since are hashed again.

A stored file is a header (magic, meta length), the meta as JSON, padding to 8 bytes, then
the keys' first parts (uint64) and second parts (uint32), so the arrays map in place.
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
FOLD_MAX_KEYS = 1_000_000  # and past this many keys whatever the base (12 MB a save)
MAGIC = b"STSIGKEY"
_HEADER = len(MAGIC) + 8


@dataclass
class StoredIndex:
    """The keys of every row in the table's data files `paths`, as of `version`: those of
    the stored `base` (its version; None: not from the store) in `keys`, those added to it
    since in `tail`."""

    table_id: str
    version: int
    paths: set[str]
    keys: Keys
    base: int | None = None
    tail: Keys | None = None

    @property
    def size(self) -> int:
        return len(self.keys[0]) + (0 if self.tail is None else len(self.tail[0]))


def index_path(directory: Path, table_id: str) -> Path:
    return directory / "signature-index" / f"{table_id}.keys"


def tail_path(directory: Path, table_id: str) -> Path:
    return directory / "signature-index" / f"{table_id}.tail.keys"


def load(directory: Path, table_id: str) -> StoredIndex | None:
    """The stored index of the table `table_id` (its base mapped, not read), or None (none
    yet, or unreadable)."""
    base = _read(index_path(directory, table_id), table_id, mapped=True)
    if base is None:
        return None
    meta, keys = base
    version = int(meta["version"])
    index = StoredIndex(table_id, version, set(meta["paths"]), keys, version)
    tail = _read(tail_path(directory, table_id), table_id, missing_ok=True)
    if tail is None:
        return index
    tail_meta, tail_keys = tail
    if tail_meta.get("base") != index.base or tail_meta.get("base_keys") != len(keys[0]):
        return index  # the tail of another base
    index.version, index.paths = int(tail_meta["version"]), set(tail_meta["paths"])
    index.tail = tail_keys
    return index


def _read(
    path: Path, table_id: str, missing_ok: bool = False, mapped: bool = False
) -> tuple[dict, Keys] | None:
    """A stored file's meta and keys (`mapped`: memory-mapped read-only), or None (missing,
    damaged, another table's)."""
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER)
            if head[: len(MAGIC)] != MAGIC or len(head) != _HEADER:
                raise ValueError("not a signature index file")
            meta_bytes = int.from_bytes(head[len(MAGIC) :], "little")
            meta = orjson.loads(f.read(meta_bytes))
        n = int(meta["keys"])
        offset = _keys_offset(meta_bytes)
        if path.stat().st_size != offset + 12 * n:
            raise ValueError("truncated")
        k1: np.ndarray
        k2: np.ndarray
        if n and mapped:
            k1 = np.memmap(path, np.uint64, "r", offset, (n,))
            k2 = np.memmap(path, np.uint32, "r", offset + 8 * n, (n,))
        else:
            raw = path.read_bytes()
            k1 = np.frombuffer(raw, np.uint64, n, offset).copy()
            k2 = np.frombuffer(raw, np.uint32, n, offset + 8 * n).copy()
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign file is only a slower start
        log.warning("stored signature index %s is unreadable (%s): rebuilding it", path, exc)
        return None
    if meta.get("table_id") != table_id:
        log.warning("stored signature index %s does not describe its table: rebuilding it", path)
        return None
    return meta, (k1, k2)


def _keys_offset(meta_bytes: int) -> int:
    return -(-(_HEADER + meta_bytes) // 8) * 8


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


def save(directory: Path, index: StoredIndex) -> tuple[int, Keys]:
    """Store the index atomically (a crash leaves the old one or the new one): its tail
    beside the base it grew from, or a new base when there is none or the tail is big.
    Returns the base now stored: its version and its keys (mapped from the file)."""
    meta = {"table_id": index.table_id, "version": index.version, "paths": sorted(index.paths)}
    tail = index.tail
    base_keys = len(index.keys[0])
    fold = max(FOLD_MIN_KEYS, min(base_keys // FOLD_SHARE, FOLD_MAX_KEYS))
    if index.base is None or (tail is not None and len(tail[0]) > fold):
        keys = index.keys if tail is None else merged(index.keys, tail)
        path = index_path(directory, index.table_id)
        _write(path, keys, meta)
        tail_path(directory, index.table_id).unlink(missing_ok=True)
        for legacy in (".npz", ".tail.npz"):  # the store's files before it was mapped
            path.with_name(f"{index.table_id}{legacy}").unlink(missing_ok=True)
        stored = _read(path, index.table_id, mapped=True)
        return index.version, stored[1] if stored is not None else keys
    if tail is not None:
        meta |= {"base": index.base, "base_keys": base_keys}
        _write(tail_path(directory, index.table_id), tail, meta)
    return index.base, index.keys


def _write(path: Path, keys: Keys, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = orjson.dumps({**meta, "keys": len(keys[0])})
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC + len(encoded).to_bytes(8, "little") + encoded)
        f.write(b"\0" * (_keys_offset(len(encoded)) - _HEADER - len(encoded)))
        f.write(np.ascontiguousarray(keys[0], np.uint64).tobytes())
        f.write(np.ascontiguousarray(keys[1], np.uint32).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
