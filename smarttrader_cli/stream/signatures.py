"""Which of a batch's signatures bronze.webhook_events already holds: the drain's
duplicate check, against the whole table.

A redelivered event can come back long after the receiver's dedupe window, with another
slot or none, so the check cannot prune by slot. It probes an in-memory index of every
signature in the table as a 96-bit key (DuckDB's 64-bit `hash()` of the signature, and 32
bits of the hash of it reversed), sorted. The index is built with one scan of the
`signature` column when the drain checks its first batch, then kept current with the
drain's own commits (their keys are known) and with the data files other writers add
(read when they appear). A probe costs O(batch · log table) and no I/O. Two different
signatures share a key with probability 2^-96 per pair: at 20 million rows and 5,000
signatures a batch, about one batch in 10^16 would drop an event.

With a store directory (the drain's `runtime.state_dir`), the index is saved at the end of
a drain and the next one starts from it, hashing only the files added since
(signature_store.py); the table's own row count decides whether the stored index is used.
The stored keys are a memory-mapped base and the keys added since (the tail, in memory):
a drain's cost follows its batches and the tail, not the table's age.

Building the index from the table takes 12 bytes a row in memory, twice over while it is
sorted (a year at 200 events every 5 minutes: about 21M rows, 500 MB, once). Past
MAX_INDEXED_ROWS no index is built and each batch is checked by scanning the table's
signatures instead: memory stays bounded, the cost grows with the table (O(table) per
batch).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smarttrader_cli.stream import signature_store

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb
    from deltalake import DeltaTable

log = logging.getLogger("st.stream.signatures")

MAX_INDEXED_ROWS = 50_000_000  # 600 MB of keys to build (then mapped from the store)
KEYS_SQL = "SELECT hash({c}) AS k1, (hash(reverse({c})) & 4294967295)::UINTEGER AS k2 FROM {t}"

Keys = tuple[np.ndarray, np.ndarray]  # (uint64, uint32) per signature


def _empty() -> Keys:
    return np.empty(0, np.uint64), np.empty(0, np.uint32)


class SignatureIndex:
    """The table's signatures as sorted keys, current with the snapshot it last saw.

    Used from one thread at a time (the drain's writer thread).
    """

    def __init__(
        self,
        uri: str,
        storage_options: dict[str, str],
        max_rows: int = MAX_INDEXED_ROWS,
        store_dir: Path | None = None,
    ) -> None:
        self._uri = uri
        self._store_dir = store_dir
        self._table_id: str | None = None
        self._storage_options = storage_options
        self._fs: Any = None
        self.max_rows = max_rows
        self._con: duckdb.DuckDBPyConnection | None = None
        # The index: `_keys` (the stored base, mapped, or the keys of a scan) and `_added`,
        # the keys the table gained beyond them (sorted). None: not built (or too big).
        self._keys: Keys | None = None
        self._added = _empty()
        self._too_big = False
        self._paths: set[str] = set()  # the data files the index holds the signatures of
        self._version: int | None = None  # the snapshot version it is current with
        self._fresh = _empty()  # keys of the batch just checked that are new to the table
        self._wrote: tuple[int, int, Keys] | None = None  # our last commit
        # The version of the stored base `_keys` is (None: not from the store), so a save
        # writes `_added` alone beside it (signature_store.py).
        self._base: int | None = None

    def drop_existing(self, snapshot: DeltaTable, events: pa.Table) -> pa.Table:
        """`events` without the rows whose signature the table holds."""
        self._fresh = _empty()
        if not events.num_rows:
            return events
        self._catch_up(snapshot)
        signatures = events.column("signature")
        keys = self._hash(signatures)
        if self._keys is None:
            existing = self._scan_for(snapshot, signatures)
            keep = pc.invert(pc.is_in(signatures, value_set=existing))
            mask = np.asarray(keep.to_numpy(zero_copy_only=False), bool)
        else:
            mask = ~self._holds(keys)
        self._fresh = (keys[0][mask], keys[1][mask])
        return events if mask.all() else events.filter(pa.array(mask))

    def wrote(self, before: int, after: int) -> None:
        """Our commit (of the rows `drop_existing` just kept) took the table from `before` to
        `after`."""
        self._wrote = (before, after, self._fresh)
        self._fresh = _empty()

    # --- keeping the index current -----------------------------------------

    def _catch_up(self, snapshot: DeltaTable) -> None:
        version = snapshot.version()
        if version == self._version:
            return
        actions = pa.table(snapshot.get_add_actions(flatten=True))
        paths = set(actions.column("path").to_pylist()) if actions.num_rows else set()
        wrote, self._wrote = self._wrote, None
        if self._keys is None and not self._too_big:
            rows = int(pc.sum(actions.column("num_records")).as_py() or 0) if paths else 0
            if rows <= self.max_rows:
                self._table_id = str(snapshot.metadata().id)
                if not self._restore(version, paths, rows):
                    self._keys = (
                        signature_store.sorted_keys(self._scan_keys(snapshot))
                        if paths
                        else _empty()
                    )
                self._paths, self._version = paths, version
                return
            self._too_big = True
            log.info(
                "bronze.webhook_events holds %d rows (> %d): each batch's duplicates are "
                "checked by scanning the table's signatures", rows, self.max_rows,
            )  # fmt: skip
        if self._keys is not None:
            added = paths - self._paths
            if (
                wrote is not None
                and wrote[0] == self._version
                and version == wrote[1] == wrote[0] + 1
            ):
                self._insert(wrote[2])  # only our commit in between: its files hold these rows
            elif added:
                self._insert(self._file_keys(sorted(added)))
        self._paths, self._version = paths, version

    def _restore(self, version: int, paths: set[str], rows: int) -> bool:
        """Take the stored index brought up to `version`, if it then has one key per row."""
        if self._store_dir is None or self._table_id is None:
            return False
        stored = signature_store.load(self._store_dir, self._table_id)
        if stored is None or stored.version > version:
            return False
        self._keys, self._base = stored.keys, stored.base
        self._added = _empty() if stored.tail is None else stored.tail
        added = sorted(paths - stored.paths)
        if added:  # new rows, or rows a compaction rewrote (already indexed: skipped)
            self._insert(self._file_keys(added))
        size = len(self._keys[0]) + len(self._added[0])
        if size != rows:
            log.info(
                "the stored signature index has %d keys for %d rows (rows deleted, or "
                "signatures repeated): rebuilt from the table", size, rows,
            )  # fmt: skip
            self._keys, self._added, self._base = None, _empty(), None
            return False
        log.debug("signature index restored: %d keys, %d files hashed", rows, len(added))
        return True

    def persist(self) -> None:
        """Save the index for the next drain (nothing without a store or an index)."""
        if self._store_dir is None or self._keys is None or self._table_id is None:
            return
        assert self._version is not None
        index = signature_store.StoredIndex(
            self._table_id, self._version, self._paths, self._keys, self._base, self._added
        )
        try:
            base, keys = signature_store.save(self._store_dir, index)
        except OSError as exc:  # the next drain rebuilds it: slower, never wrong
            log.warning("could not save the signature index: %s", exc)
            return
        if base != self._base:  # a new base: it holds everything so far
            self._keys, self._added, self._base = keys, _empty(), base

    def _holds(self, keys: Keys) -> np.ndarray:
        """Per key: does the index hold it."""
        assert self._keys is not None
        return _contains(self._keys, keys) | _contains(self._added, keys)

    def _insert(self, new: Keys) -> None:
        """Add keys the index lacks (a compaction's rewritten files hold indexed rows)."""
        unseen = ~self._holds(new)
        keys = signature_store.sorted_keys((new[0][unseen], new[1][unseen]))
        self._added = signature_store.merged(self._added, keys)

    def _filesystem(self) -> Any:
        """The table's storage as a pyarrow filesystem rooted at the table (built once).

        A native one where it can be (lake/scan.py: Python-filesystem buffers freed on
        Arrow's threads can abort the process at exit); deltalake's own otherwise.
        """
        if self._fs is None:
            from smarttrader_cli.lake.scan import table_filesystem

            self._fs = table_filesystem(self._uri, self._storage_options)
        if self._fs is None:
            import pyarrow.fs as pa_fs
            from deltalake.fs import DeltaStorageHandler

            self._fs = pa_fs.PyFileSystem(DeltaStorageHandler(self._uri, self._storage_options))
        return self._fs

    # --- DuckDB -------------------------------------------------------------

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            from smarttrader_cli.lake.query import duckdb_config

            self._con = duckdb.connect(config=duckdb_config(memory_limit_mb=256, threads=2))
        return self._con

    def _query_keys(self, name: str, relation: Any, column: str) -> Keys:
        con = self._duckdb()
        con.register(name, relation)
        try:
            got = con.execute(KEYS_SQL.format(c=column, t=name)).fetchnumpy()
        finally:
            con.unregister(name)
        return np.asarray(got["k1"], np.uint64), np.asarray(got["k2"], np.uint32)

    def _hash(self, signatures: pa.ChunkedArray | pa.Array) -> Keys:
        return self._query_keys("st_batch", pa.table({"s": signatures}), "s")

    def _scan_keys(self, snapshot: DeltaTable) -> Keys:
        """Every signature of the table as keys (one streaming scan of the column)."""
        return self._query_keys("st_table", snapshot.to_pyarrow_dataset(), "signature")

    def _file_keys(self, paths: list[str]) -> Keys:
        """The keys of the signatures in some data files (ones another writer added)."""
        parts = [
            self._hash(
                pq.read_table(
                    unquote(path.lstrip("/")), columns=["signature"], filesystem=self._filesystem()
                ).column("signature")
            )
            for path in paths
        ]
        return signature_store.concatenated(parts)

    def _scan_for(self, snapshot: DeltaTable, signatures: pa.ChunkedArray) -> pa.Array:
        """Which `signatures` the table holds, by scanning its signature column."""
        con = self._duckdb()
        con.register("st_table", snapshot.to_pyarrow_dataset())
        con.register("st_batch", pa.table({"s": signatures}))
        try:
            found = con.execute(
                "SELECT DISTINCT signature FROM st_table WHERE signature IN (SELECT s FROM st_batch)"
            ).to_arrow_table()
        finally:
            con.unregister("st_table")
            con.unregister("st_batch")
        return found.column("signature").combine_chunks()


def _contains(index: Keys, keys: Keys) -> np.ndarray:
    """Per key: is it in the sorted `index`."""
    k1, k2 = keys
    found = np.zeros(len(k1), bool)
    if not len(index[0]):
        return found
    left = np.searchsorted(index[0], k1, "left")
    right = np.searchsorted(index[0], k1, "right")
    single = right - left == 1
    found[single] = index[1][left[single]] == k2[single]
    for i in np.flatnonzero(right - left > 1):  # the first 64 bits collide: rare
        found[i] = bool((index[1][left[i] : right[i]] == k2[i]).any())
    return found
