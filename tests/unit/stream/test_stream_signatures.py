"""The drain's duplicate check against the whole table (stream/signatures.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import StreamMessage
from smarttrader_cli.stream.batch import finish, prepare
from smarttrader_cli.stream.signatures import SignatureIndex, _contains


def events(signatures: list[str], slot: int = 1) -> pa.Table:
    messages = [
        StreamMessage(0, i, s.encode(), orjson.dumps({"signature": s, "slot": slot + i}), 0)
        for i, s in enumerate(signatures)
    ]
    return prepare(messages).events


def write(lake: Lake, signatures: list[str]) -> None:
    rows = finish(events(signatures), datetime.now(UTC), "other")
    lake.append(WEBHOOK_EVENTS, rows, CommitMeta("other", "test", "h"))


@pytest.mark.parametrize("max_rows", [1_000_000, 0], ids=["index", "scan"])
def test_signatures_are_found_in_any_file_whoever_wrote_it(tmp_path: Path, max_rows: int) -> None:
    lake = Lake(str(tmp_path / "lake"))
    write(lake, [f"a{i}" for i in range(100)])
    snapshot = lake.table(WEBHOOK_EVENTS)
    uri, options = lake.uri(WEBHOOK_EVENTS), lake.storage_options
    index = SignatureIndex(uri, options, max_rows=max_rows)
    batch = events(["a5", "new-1", "a99"], slot=10**9)  # another slot than when first stored
    assert index.drop_existing(snapshot, batch).column("signature").to_pylist() == ["new-1"]

    index = SignatureIndex(uri, options, max_rows=max_rows)
    index.drop_existing(snapshot, events(["x"]))  # built at this version
    write(lake, ["b1", "b2"])  # another drain commits meanwhile
    snapshot.update_incremental()
    kept = index.drop_existing(snapshot, events(["b2", "a1", "c"]))
    assert kept.column("signature").to_pylist() == ["c"]


def test_keys_that_share_their_first_64_bits_are_told_apart() -> None:
    index = (np.array([5, 7, 7, 9], np.uint64), np.array([1, 2, 3, 4], np.uint32))
    keys = (np.array([7, 7, 7, 9, 9, 4], np.uint64), np.array([3, 2, 8, 4, 5, 1], np.uint32))
    assert _contains(index, keys).tolist() == [True, True, False, True, False, False]


class _Counting(SignatureIndex):
    """Counts the full scans of the table it makes."""

    scans = 0

    def _scan_keys(self, snapshot):  # type: ignore[no-untyped-def]
        type(self).scans += 1
        return super()._scan_keys(snapshot)


def _drain_once(lake: Lake, store: Path, batch: list[str]) -> list[str]:
    """What one drain run does with its index: check a batch against the table, persist."""
    index = _Counting(lake.uri(WEBHOOK_EVENTS), lake.storage_options, store_dir=store)
    kept = index.drop_existing(lake.table(WEBHOOK_EVENTS), events(batch)).column("signature")
    index.persist()
    return kept.to_pylist()


def test_a_stored_index_spares_the_next_drain_the_scan_and_stays_exact(tmp_path: Path) -> None:
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, [f"a{i}" for i in range(50)])
    _Counting.scans = 0
    assert _drain_once(lake, store, ["a1", "n1"]) == ["n1"]
    write(lake, ["n1", "b1"])  # this drain's commit and another writer's
    lake.optimize(WEBHOOK_EVENTS)  # a compaction rewrites every file: same rows
    write(lake, ["c1"])
    assert _drain_once(lake, store, ["n1", "b1", "c1", "a49", "d1"]) == ["d1"]
    assert _Counting.scans == 1  # only the first drain scanned the table


def test_a_stored_index_is_not_believed_once_rows_were_deleted(tmp_path: Path) -> None:
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, ["a1", "a2", "a3"])
    _drain_once(lake, store, ["x"])
    lake.delete(WEBHOOK_EVENTS, "signature = 'a2'", CommitMeta("op", "test", "h"))
    write(lake, ["b1"])  # the count alone (3 keys + 1, 3 rows) must not be fooled
    _Counting.scans = 0
    assert _drain_once(lake, store, ["a2", "b1"]) == ["a2"]  # re-sent after the delete: kept
    assert _Counting.scans == 1


def test_a_damaged_stored_index_is_rebuilt(tmp_path: Path) -> None:
    from smarttrader_cli.stream.signature_store import index_path

    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, ["a1", "a2"])
    _drain_once(lake, store, ["x"])
    table_id = str(lake.table(WEBHOOK_EVENTS).metadata().id)
    index_path(store, table_id).write_bytes(b"not an index")
    _Counting.scans = 0
    assert _drain_once(lake, store, ["a1", "y"]) == ["y"]
    assert _Counting.scans == 1


def test_a_compaction_during_a_drain_leaves_one_key_per_row(tmp_path: Path) -> None:
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, ["a1", "a2"])
    write(lake, ["a3"])
    index = _Counting(lake.uri(WEBHOOK_EVENTS), lake.storage_options, store_dir=store)
    index.drop_existing(lake.table(WEBHOOK_EVENTS), events(["x"]))
    lake.optimize(WEBHOOK_EVENTS)  # while the drain runs: its next batch sees a new file
    assert index.drop_existing(lake.table(WEBHOOK_EVENTS), events(["a2", "y"])).num_rows == 1
    index.persist()
    _Counting.scans = 0
    assert _drain_once(lake, store, ["a3", "z"]) == ["z"]
    assert _Counting.scans == 0  # the stored index still had one key per row


def _stored(store: Path, lake: Lake) -> tuple[Path, Path]:
    from smarttrader_cli.stream.signature_store import index_path, tail_path

    table_id = str(lake.table(WEBHOOK_EVENTS).metadata().id)
    return index_path(store, table_id), tail_path(store, table_id)


def test_a_drain_saves_what_it_added_beside_the_stored_base(tmp_path: Path) -> None:
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, [f"a{i}" for i in range(200)])
    _drain_once(lake, store, ["x"])
    base, tail = _stored(store, lake)
    written = base.read_bytes()
    assert not tail.exists()
    _Counting.scans = 0
    for n in range(3):  # each drain finds the rows another writer added since
        write(lake, [f"b{n}-{i}" for i in range(5)])
        assert _drain_once(lake, store, [f"b{n}-0", "a7", f"new-{n}"]) == [f"new-{n}"]
    assert base.read_bytes() == written  # the base was not written again
    assert tail.exists()
    write(lake, ["c1"])
    assert _drain_once(lake, store, ["b0-4", "b2-1", "c1", "a199", "d"]) == ["d"]
    assert _Counting.scans == 0


def test_a_big_tail_is_folded_into_a_new_base(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smarttrader_cli.stream import signature_store

    monkeypatch.setattr(signature_store, "FOLD_MIN_KEYS", 4)
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, [f"a{i}" for i in range(16)])
    _drain_once(lake, store, ["x"])
    base, tail = _stored(store, lake)
    first = base.read_bytes()
    write(lake, ["b1", "b2", "b3"])  # 3 keys: below the fold, a tail
    _drain_once(lake, store, ["y"])
    assert tail.exists() and base.read_bytes() == first
    write(lake, ["c1", "c2"])  # the tail would hold 5 > max(4, 16 // 8): a new base
    _drain_once(lake, store, ["z"])
    assert not tail.exists() and base.read_bytes() != first
    _Counting.scans = 0
    assert _drain_once(lake, store, ["b2", "c2", "a15", "w"]) == ["w"]
    assert _Counting.scans == 0


def test_an_old_tail_or_one_of_another_base_still_gives_an_exact_check(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from smarttrader_cli.stream import signature_store

    monkeypatch.setattr(signature_store, "FOLD_MIN_KEYS", 4)
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, [f"a{i}" for i in range(16)])
    _drain_once(lake, store, ["x"])
    _, tail = _stored(store, lake)
    write(lake, ["b1"])
    _drain_once(lake, store, ["y"])
    older_tail = tail.read_bytes()
    write(lake, ["b2"])
    _drain_once(lake, store, ["z"])
    tail.write_bytes(older_tail)  # a tail behind the table (its base is the one on disk)
    _Counting.scans = 0
    assert _drain_once(lake, store, ["b1", "b2", "q"]) == ["q"]
    write(lake, [f"c{i}" for i in range(6)])
    _drain_once(lake, store, ["s"])  # folded: a new base, no tail
    assert not tail.exists()
    tail.write_bytes(older_tail)  # left by a crash before its removal: another base's
    write(lake, ["d1"])
    assert _drain_once(lake, store, ["b1", "c5", "d1", "a3", "r"]) == ["r"]
    assert _Counting.scans == 0  # the base stood for its own version; d1's file hashed


def test_the_stored_base_is_mapped_and_a_tail_folded_at_its_cap(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from smarttrader_cli.stream import signature_store

    monkeypatch.setattr(signature_store, "FOLD_MIN_KEYS", 2)
    monkeypatch.setattr(signature_store, "FOLD_MAX_KEYS", 3)
    lake, store = Lake(str(tmp_path / "lake")), tmp_path / "state"
    write(lake, [f"a{i}" for i in range(400)])
    _drain_once(lake, store, ["x"])
    base, tail = _stored(store, lake)
    legacy = base.with_suffix(".npz")
    legacy.write_bytes(b"an index of an earlier st")
    table_id = str(lake.table(WEBHOOK_EVENTS).metadata().id)
    stored = signature_store.load(store, table_id)
    assert stored is not None and isinstance(stored.keys[0], np.memmap)
    assert stored.size == 400 and stored.tail is None
    write(lake, ["b1", "b2", "b3"])  # 3: not past the cap (400 // 8 would allow 50)
    _drain_once(lake, store, ["y"])
    assert tail.exists() and legacy.exists()
    write(lake, ["c1"])  # 4 > the cap of 3: a new base, the earlier st's file removed
    _drain_once(lake, store, ["z"])
    assert not tail.exists() and not legacy.exists()
    stored = signature_store.load(store, table_id)
    assert stored is not None and stored.size == 404 and stored.base == stored.version
    _Counting.scans = 0
    assert _drain_once(lake, store, ["b3", "c1", "a0", "a399", "w"]) == ["w"]
    assert _Counting.scans == 0
