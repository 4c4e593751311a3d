"""lake/changes.py: the files holding what a table gained after a version, from its log."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from smarttrader_cli.lake.changes import ChangesUnavailable, added_since
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS

META = CommitMeta("r", "stream.drain", "h")


def _append(lake: Lake, *signatures: str) -> int:
    rows = pa.table({"signature": list(signatures), "payload": ["{}"] * len(signatures)})
    return lake.append(WEBHOOK_EVENTS, rows, META)


def _new_signatures(lake: Lake, after: int) -> list[str]:
    snapshot = lake.table(WEBHOOK_EVENTS)
    changes = added_since(lake, WEBHOOK_EVENTS, snapshot, after)
    schema = pa.schema(snapshot.schema().to_arrow())
    read = changes.dataset(lake, WEBHOOK_EVENTS, schema).to_table(columns=["signature"])
    return sorted(read.column(0).to_pylist())


def test_only_files_added_with_a_data_change_after_the_version_are_read(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _append(lake, "a", "b")
    cursor = _append(lake, "c")
    lake.optimize(WEBHOOK_EVENTS)  # rewrites a, b, c: nothing new
    _append(lake, "d")
    assert _new_signatures(lake, cursor) == ["d"]
    assert _new_signatures(lake, lake.version(WEBHOOK_EVENTS) or 0) == []


def test_an_unread_file_folded_by_compaction_is_read_alone_while_on_disk(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a", "b")
    _append(lake, "c")
    lake.optimize(WEBHOOK_EVENTS)  # c now lives in a file with a and b
    assert _new_signatures(lake, cursor) == ["c"]
    lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)  # c's own file is gone
    assert _new_signatures(lake, cursor) == ["a", "b", "c"]  # read again rather than lost


def test_rows_deleted_after_a_compaction_do_not_come_back(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a")
    _append(lake, "b", "c")
    lake.optimize(WEBHOOK_EVENTS)
    lake.delete(WEBHOOK_EVENTS, "signature = 'c'", META)  # rewrites the compacted file
    assert _new_signatures(lake, cursor) == ["a", "b"]  # the rewrite, never c's old file


def test_commits_the_log_no_longer_has_are_unavailable(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a")
    _append(lake, "b")
    snapshot = lake.table(WEBHOOK_EVENTS)  # loaded before log retention takes a commit
    (Path(lake.uri(WEBHOOK_EVENTS)) / "_delta_log" / f"{cursor + 1:020d}.json").unlink()
    with pytest.raises(ChangesUnavailable, match="no longer in its log"):
        added_since(lake, WEBHOOK_EVENTS, snapshot, cursor)
    with pytest.raises(ChangesUnavailable, match="behind the cursor"):
        added_since(lake, WEBHOOK_EVENTS, snapshot, cursor + 5)


def _data_files(lake: Lake) -> set[str]:
    """The table's data files on disk, relative to its root (in their partition folders)."""
    root = Path(lake.uri(WEBHOOK_EVENTS))
    return {
        str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts
    }


def test_a_folded_file_vacuumed_between_planning_and_reading_is_read_from_its_holder(
    tmp_path: Path,
) -> None:
    """The race `st alerts run` lost to `st ops cleanup`: the plan names c's own file, then
    a vacuum at 0 h retention deletes it before the read."""
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a", "b")
    _append(lake, "c")
    lake.optimize(WEBHOOK_EVENTS)
    snapshot = lake.table(WEBHOOK_EVENTS)
    schema = pa.schema(snapshot.schema().to_arrow())
    changes = added_since(lake, WEBHOOK_EVENTS, snapshot, cursor)  # planned: c's own file
    rows = changes.dataset(lake, WEBHOOK_EVENTS, schema)
    assert lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)
    read = rows.to_table(columns=["signature"]).column(0).to_pylist()
    assert sorted(read) == ["a", "b", "c"] and rows.fallbacks == 1


def test_a_vacuum_in_the_middle_of_a_batched_read_loses_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a", "b")
    _append(lake, "c")
    lake.optimize(WEBHOOK_EVENTS)
    _append(lake, "d")  # a file of its own, read first
    snapshot = lake.table(WEBHOOK_EVENTS)
    schema = pa.schema(snapshot.schema().to_arrow())
    batches = (
        added_since(lake, WEBHOOK_EVENTS, snapshot, cursor)
        .dataset(lake, WEBHOOK_EVENTS, schema)
        .to_batches(columns=["signature"])
    )
    read = next(batches).column(0).to_pylist()
    assert read == ["d"]
    lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)
    read += [s for batch in batches for s in batch.column(0).to_pylist()]
    assert sorted(read) == ["a", "b", "c", "d"]


def test_a_fold_is_read_whole_from_its_holder_when_one_original_is_gone(tmp_path: Path) -> None:
    """c and d were folded into one file with a and b; only c's file is gone. Reading d's
    own file as well as the holder would give d twice."""
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a", "b")
    before = _data_files(lake)
    _append(lake, "c")
    c_file = _data_files(lake) - before
    _append(lake, "d")
    lake.optimize(WEBHOOK_EVENTS)
    (Path(lake.uri(WEBHOOK_EVENTS)) / c_file.pop()).unlink()
    assert _new_signatures(lake, cursor) == ["a", "b", "c", "d"]
    lake.delete(WEBHOOK_EVENTS, "signature = 'a'", META)  # the holder is rewritten too
    assert _new_signatures(lake, cursor) == ["b", "c", "d"]


def test_every_original_of_a_fold_on_disk_is_read_without_the_holder(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    cursor = _append(lake, "a", "b")
    _append(lake, "c")
    _append(lake, "d")
    lake.optimize(WEBHOOK_EVENTS)
    _append(lake, "e")
    snapshot = lake.table(WEBHOOK_EVENTS)
    changes = added_since(lake, WEBHOOK_EVENTS, snapshot, cursor)
    assert len(changes.folds) == 1 and len(changes.folds[0].originals) == 2
    assert _new_signatures(lake, cursor) == ["c", "d", "e"]
