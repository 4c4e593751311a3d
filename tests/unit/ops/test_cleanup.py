"""`st ops cleanup`: old logs removed, Delta files vacuumed, disk thresholds, dry run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import load_config
from smarttrader_cli.lake import CommitMeta, Lake, table_spec
from smarttrader_cli.lake.properties import TableProperties
from smarttrader_cli.ops.cleanup import disk_levels, old_logs, run_cleanup
from smarttrader_cli.ops.ledger import Ledger
from tests.harness import write_config

DAY = 86400
TOKENS = table_spec("bronze.token_metrics")


def aged(path: Path, days: float, content: str = "log line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def invoke(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["--config", str(config), "ops", "cleanup", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout


def rewrite_table(lake: Lake, times: int) -> None:
    """Overwrite a table several times so earlier data files are no longer referenced."""
    for i in range(times):
        rows = pa.table({"token_address": [f"T{i}"], "snapshot_at": [1_700_000_000 + i]})
        lake.overwrite(TOKENS, rows, CommitMeta(f"run-{i}", "test", "cfg"))


def test_old_logs_only_past_retention(tmp_path: Path) -> None:
    old = aged(tmp_path / "logs" / "a" / "old.log", 31)
    fresh = aged(tmp_path / "logs" / "fresh.log", 2)
    found = [Path(e["path"]) for e in old_logs(tmp_path / "logs", 30)]
    assert found == [old]
    assert fresh.exists()
    assert old_logs(tmp_path / "missing", 30) == []


def test_dry_run_lists_and_keeps_everything(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"lake.vacuum_retention_hours": 0})
    old = aged(tmp_path / "logs" / "st-2020.log", 90)
    lake = Lake(str(tmp_path / "lake"))
    rewrite_table(lake, 3)
    files_before = sorted(p.name for p in (tmp_path / "lake").rglob("*.parquet"))

    code, out = invoke(config, "--dry-run", "--format", "json")
    assert code == 0, out
    rows = json.loads(out)
    assert {"kind": "log", "target": str(old)} in [
        {"kind": r["kind"], "target": r["target"]} for r in rows
    ]
    vacuum = next(r for r in rows if r["kind"] == "vacuum")
    assert vacuum["target"] == "bronze.token_metrics"
    assert vacuum["action"] == "would remove 2 files"
    assert old.exists()
    assert sorted(p.name for p in (tmp_path / "lake").rglob("*.parquet")) == files_before
    assert not lake.exists(table_spec("ops.runs"))  # a dry run records nothing


def test_cleanup_removes_and_records_a_run(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"lake.vacuum_retention_hours": 0})
    old = aged(tmp_path / "logs" / "st-2020.log", 90)
    fresh = aged(tmp_path / "logs" / "st-today.log", 0)
    lake = Lake(str(tmp_path / "lake"))
    rewrite_table(lake, 3)

    code, out = invoke(config, "--format", "json")
    assert code == 0, out
    assert not old.exists() and fresh.exists()
    assert len(list((tmp_path / "lake" / "bronze").rglob("*.parquet"))) == 1
    assert lake.read(TOKENS).column("token_address").to_pylist() == ["T2"]
    runs = Ledger(lake).runs(stage="ops.cleanup")
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["rows_out"] == 3  # one log file and two data files


def test_retention_keeps_recent_data_files(tmp_path: Path) -> None:
    loaded = load_config(write_config(tmp_path), env={})
    lake = Lake.from_config(loaded)
    rewrite_table(lake, 3)
    report = run_cleanup(loaded.config, lake, dry_run=False)
    assert report.vacuum == [
        {"table": "bronze.token_metrics", "files": 0, "dry_run": False, "retention_hours": 168}
    ]
    assert len(list((tmp_path / "lake").rglob("*.parquet"))) == 3


def test_disk_levels_and_critical_exit(tmp_path: Path) -> None:
    loaded = load_config(
        write_config(
            tmp_path, {"ops.disk_warning_percent": 0.0, "ops.disk_critical_percent": 100.0}
        ),
        env={},
    )
    levels = disk_levels(loaded.config)
    assert levels and all(level.level == "warning" for level in levels)
    assert len({level.mount for level in levels}) == len(levels)  # one row per filesystem

    critical = write_config(
        tmp_path / "c", {"ops.disk_warning_percent": 0.0, "ops.disk_critical_percent": 0.0}
    )
    code, out = invoke(critical, "--dry-run", "--format", "json")
    assert code == 1
    disk = [r for r in json.loads(out) if r["kind"] == "disk"]
    assert disk and disk[0]["action"] == "critical"


def spool_with_segments(spool_dir: Path, events: int = 60) -> list[Path]:
    """A real webhook spool with several segments (4 KiB each); returns them oldest first."""
    from smarttrader_cli.stream.backend import OutboundEvent
    from smarttrader_cli.stream.segments import list_segments, segment_name
    from smarttrader_cli.stream.spool import Spool

    spool = Spool(spool_dir, segment_bytes=4096)
    try:
        for i in range(events):
            spool.append([OutboundEvent(f"sig{i}".encode(), b"x" * 200, i)])
    finally:
        spool.close()
    return [spool_dir / segment_name(b) for b in list_segments(spool_dir)]


def test_spool_segments_removed_only_when_published_and_old(tmp_path: Path) -> None:
    from smarttrader_cli.stream.spool import CURSOR

    spool_dir = tmp_path / "spool"
    segments = spool_with_segments(spool_dir)
    assert len(segments) >= 4
    for path in segments:
        os.utime(path, (time.time() - 30 * DAY,) * 2)
    config = write_config(tmp_path)

    # Nothing re-published yet (no cursor): nothing may go, however old.
    code, out = invoke(config, "--format", "json")
    assert code == 0, out
    assert all(p.exists() for p in segments)

    # The server moved its cursor into the third segment and crashed before deleting.
    third_base = int(segments[2].name.split(".")[0])
    (spool_dir / CURSOR).write_text(str(third_base + 1))
    os.utime(segments[1], None)  # published but young: kept for the retention
    code, out = invoke(config, "--dry-run", "--format", "json")
    listed = [r["target"] for r in json.loads(out) if r["kind"] == "spool"]
    assert listed == [str(segments[0])]
    assert segments[0].exists()

    code, out = invoke(config, "--format", "json")
    assert code == 0, out
    assert not segments[0].exists()
    assert all(p.exists() for p in segments[1:])  # young, holding the cursor, or unpublished


def test_unreadable_cursor_keeps_everything(tmp_path: Path) -> None:
    from smarttrader_cli.ops.cleanup import published_spool_segments
    from smarttrader_cli.stream.spool import CURSOR

    spool_dir = tmp_path / "spool"
    segments = spool_with_segments(spool_dir)
    (spool_dir / CURSOR).write_text("garbage")
    assert published_spool_segments(spool_dir) == []
    (spool_dir / CURSOR).write_text(str(10**9))
    assert published_spool_segments(spool_dir) == segments[:-1]  # never the active segment


def test_stream_segments_removed_only_when_drained_and_old(tmp_path: Path) -> None:
    from tests.stream_support import event_signatures, helius_events, outbound, produce

    config = write_config(
        tmp_path,
        {"stream.segment_bytes": 20_000, "stream.partitions": 1, "stream.batch_size": 100},
    )
    produce(config, outbound(helius_events(400)))
    loaded = load_config(config).config
    partition = Path(loaded.stream.local_dir) / loaded.stream.topic / "p0"
    segments = sorted(partition.glob("*.seg"))
    assert len(segments) >= 6
    for path in segments:
        os.utime(path, (time.time() - 30 * DAY,) * 2)

    def drain(*args: str) -> None:
        result = CliRunner().invoke(app, ["--config", str(config), "stream", "drain", *args])
        assert result.exit_code == 0, result.output

    # Nothing drained yet: nothing may go, however old.
    code, out = invoke(config, "--format", "json")
    assert code == 0, out
    assert all(p.exists() for p in segments)

    drain("--max-messages", "200")
    code, out = invoke(config, "--format", "json")
    assert code == 0, out
    removed = {Path(r["target"]) for r in json.loads(out) if r["kind"] == "stream"}
    kept = [p for p in segments if p.exists()]
    assert removed and removed == set(segments) - set(kept)
    # every removed segment lies wholly below the 200 committed offsets, the rest is kept
    bases = [int(p.name.split(".")[0]) for p in segments]
    for path, next_base in zip(segments, [*bases[1:], None], strict=True):
        assert (path in removed) == (next_base is not None and next_base <= 200)

    drain()  # the rest is still there to drain: nothing lost, nothing twice
    signatures = event_signatures(config)
    assert len(signatures) == len(set(signatures)) == 400


def test_vacuum_removes_files_whose_removal_record_a_checkpoint_dropped(tmp_path: Path) -> None:
    # Removal records kept one second: the checkpoint after the rewrites drops them, as a
    # deployment's checkpoints drop those older than delta.deletedFileRetentionDuration.
    lake = Lake(str(tmp_path), properties=TableProperties(deleted_file_retention_hours=1 / 3600))
    rewrite_table(lake, 3)
    time.sleep(1.5)
    lake.table(TOKENS).create_checkpoint()
    assert len(list(tmp_path.rglob("*.parquet"))) == 3 + 1  # the data files and the checkpoint

    stray = Path(lake.uri(TOKENS)) / "part-written-not-committed.parquet"
    stray.write_bytes(b"a write in progress")
    assert lake.vacuum(TOKENS, retention_hours=0, dry_run=True) == []  # by the records alone
    written = time.time() - 2 * 3600  # the data files are two hours old
    for path in Path(lake.uri(TOKENS)).rglob("*.parquet"):
        if "_delta_log" not in path.parts:
            os.utime(path, (written, written))
    stray.touch()  # still being written

    removed = lake.vacuum(TOKENS, retention_hours=1, dry_run=False)

    assert len(removed) == 2 and stray.exists()
    left = {p.name for p in tmp_path.rglob("*.parquet") if "_delta_log" not in p.parts}
    assert left == {Path(lake.table(TOKENS).file_uris()[0]).name, stray.name}
    assert lake.read(TOKENS).column("token_address").to_pylist() == ["T2"]
