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
