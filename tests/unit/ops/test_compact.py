"""`st ops compact`: small files rewritten, offsets kept through checkpoints and log
cleanup, table properties applied once, lost races retried."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import load_config
from smarttrader_cli.lake import CommitMeta, Lake
from smarttrader_cli.lake.maintenance import apply_properties, compact_table
from smarttrader_cli.lake.properties import TableProperties
from smarttrader_cli.lake.tables import (
    FREQUENTLY_WRITTEN,
    RUNS,
    TABLES,
    TOKEN_FLOWS,
    TOKEN_METRICS,
    WEBHOOK_EVENTS,
)
from smarttrader_cli.ops.locks import stage_lock
from tests.harness import write_config

META = CommitMeta("run-1", "test", "cfg")
MB = 2**20
APPS = ("group/topic/id/0", "group/topic/id/1", "group/topic/id/2")


def events(i: int) -> pa.Table:
    return pa.table({"signature": [f"sig-{i}"], "stream_offset": [i]})


def append_with_offsets(lake: Lake, commits: int) -> dict[str, int]:
    """`commits` one-row appends, each carrying one partition's offset (partition 2 only in
    the first commits, as a quiet partition would); returns the last offset per app id."""
    last: dict[str, int] = {}
    for i in range(commits):
        app_id = APPS[2] if i < 3 else APPS[i % 2]
        lake.append(WEBHOOK_EVENTS, events(i), META, [(app_id, i)])
        last[app_id] = i
    return last


def log_dir(lake: Lake) -> Path:
    return Path(lake.uri(WEBHOOK_EVENTS)) / "_delta_log"


def age_log(lake: Lake, hours: float) -> None:
    then = time.time() - hours * 3600
    for entry in log_dir(lake).iterdir():
        os.utime(entry, (then, then))


def test_offsets_survive_compaction_checkpoint_and_log_cleanup(tmp_path: Path) -> None:
    # No checkpoint of its own before compaction: the one it writes must carry the offsets.
    lake = Lake(
        str(tmp_path),
        properties=TableProperties(1000, log_retention_hours=1, frequent_log_retention_hours=1),
    )
    last = append_with_offsets(lake, 30)
    assert [lake.app_transaction_version(WEBHOOK_EVENTS, a) for a in APPS] == [
        last[a] for a in APPS
    ]
    age_log(lake, hours=2)  # every commit so far is past the log retention

    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2)

    assert (done.small_files, done.files_removed, done.files_added) == (30, 30, 1)
    names = sorted(p.name for p in log_dir(lake).iterdir())
    assert f"{done.checkpoint:020d}.checkpoint.parquet" in names
    versions = [int(n.split(".")[0]) for n in names if n.endswith(".json")]
    assert versions == [done.checkpoint], "the expired commits were not removed"
    fresh = Lake(str(tmp_path))
    assert {a: fresh.app_transaction_version(WEBHOOK_EVENTS, a) for a in APPS} == last
    table = fresh.table(WEBHOOK_EVENTS)
    assert len(table.file_uris()) == 1
    assert sorted(fresh.read(WEBHOOK_EVENTS).column("signature").to_pylist()) == sorted(
        f"sig-{i}" for i in range(30)
    )


def test_compaction_commit_changes_no_data(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    append_with_offsets(lake, 10)
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2, meta=META)
    assert done.checkpoint is not None
    commit = log_dir(lake) / f"{done.checkpoint:020d}.json"
    actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
    files = [a.get("add") or a.get("remove") for a in actions if "add" in a or "remove" in a]
    assert len(files) == 11  # 10 removed, 1 added
    assert all(f["dataChange"] is False for f in files)
    info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    assert info["operation"] == "OPTIMIZE" and info["st_operation"] == "optimize"


def test_few_small_files_are_left_alone(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    append_with_offsets(lake, 3)
    before = lake.version(WEBHOOK_EVENTS)
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=4)
    assert (done.small_files, done.checkpoint) == (3, None)
    assert lake.version(WEBHOOK_EVENTS) == before


def test_properties_on_creation_and_applied_once_to_older_tables(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path), properties=TableProperties(15, 48, 72, 6))
    lake.ensure_table(TOKEN_METRICS)
    want = {
        "delta.checkpointInterval": "15",
        "delta.logRetentionDuration": "interval 48 hours",
        "delta.deletedFileRetentionDuration": "interval 72 hours",
        "delta.enableExpiredLogCleanup": "true",
    }
    assert lake.table(TOKEN_METRICS).metadata().configuration == want

    # a table an older st created, with no properties; written every few minutes, it keeps
    # the shorter log, and its removed files' records as long
    frequent = {
        **want,
        "delta.logRetentionDuration": "interval 6 hours",
        "delta.deletedFileRetentionDuration": "interval 6 hours",
    }
    DeltaTable.create(lake.uri(TOKEN_FLOWS), schema=TOKEN_FLOWS.schema, name=TOKEN_FLOWS.name)
    assert apply_properties(lake, TOKEN_FLOWS, META) == frequent
    version = lake.version(TOKEN_FLOWS)
    assert lake.table(TOKEN_FLOWS).metadata().configuration == frequent
    assert apply_properties(lake, TOKEN_FLOWS) == {}
    assert apply_properties(lake, TOKEN_METRICS) == {}
    assert lake.version(TOKEN_FLOWS) == version  # nothing committed the second time
    changed = Lake(str(tmp_path), properties=TableProperties(15, 24, 72, 0.5))
    assert apply_properties(changed, TOKEN_METRICS) == {
        "delta.logRetentionDuration": "interval 24 hours"
    }
    assert apply_properties(changed, TOKEN_FLOWS) == {
        "delta.logRetentionDuration": "interval 1800 seconds",
        "delta.deletedFileRetentionDuration": "interval 1800 seconds",
    }


def test_every_frequently_written_table_is_registered() -> None:
    assert set(TABLES) >= FREQUENTLY_WRITTEN
    assert WEBHOOK_EVENTS.frequent and RUNS.frequent and not TOKEN_METRICS.frequent


def test_a_frequent_tables_log_expires_after_its_own_retention(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path), properties=TableProperties(1000, 1000, 168, 1))
    append_with_offsets(lake, 12)
    age_log(lake, hours=2)  # past the frequent tables' hour, inside the others' 1,000
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2)
    versions = [int(p.name.split(".")[0]) for p in log_dir(lake).glob("*.json")]
    assert versions == [done.checkpoint]


def test_a_compaction_that_loses_the_race_retries_on_fresh_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path))
    last = append_with_offsets(lake, 12)
    rival = Lake(str(tmp_path))
    opened = lake.table
    raced = threading.Event()

    def table_then_lose(spec: Any, version: int | None = None) -> DeltaTable:
        dt = opened(spec, version)
        if not raced.is_set():  # the snapshot the first attempt compacts goes stale at once
            raced.set()
            changed = pa.table({"signature": ["sig-4"], "stream_offset": [400]})
            rival.merge(WEBHOOK_EVENTS, changed, META)  # rewrites a file it would read
        return dt

    lake.table = table_then_lose  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="st.lake"):
        metrics = lake.optimize(WEBHOOK_EVENTS)
    assert "optimize of bronze.webhook_events lost a commit race (attempt 1)" in caplog.text
    assert metrics["numFilesRemoved"] == 12 and metrics["numFilesAdded"] == 1
    check = Lake(str(tmp_path))
    assert len(check.table(WEBHOOK_EVENTS).file_uris()) == 1
    assert {a: check.app_transaction_version(WEBHOOK_EVENTS, a) for a in APPS} == last
    rows = check.read(WEBHOOK_EVENTS, columns=["signature", "stream_offset"]).to_pylist()
    assert len(rows) == 12 and {"signature": "sig-4", "stream_offset": 400} in rows


def invoke(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config), "ops", *args])


def test_cli_compacts_the_configured_tables(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"ops.compact_min_files": 2})
    lake = Lake.from_config(load_config(config))
    append_with_offsets(lake, 5)
    result = invoke(config, "compact", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["table"]: r for r in orjson.loads(result.stdout)}
    assert rows["bronze.webhook_events"]["files_removed"] == 5
    assert rows["bronze.webhook_events"]["files_added"] == 1
    assert rows["bronze.webhook_events"]["properties_set"] == 0  # created with them
    runs = lake.read(RUNS).to_pylist()
    assert [r["status"] for r in runs if r["stage"] == "ops.compact"] == ["succeeded"]

    again = orjson.loads(invoke(config, "compact", "--format", "json").stdout)
    assert next(r for r in again if r["table"] == "bronze.webhook_events")["checkpoint"] is None


def test_an_unknown_table_is_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"ops.compact_tables": ["bronze.nope"]})
    result = invoke(config, "compact")
    assert result.exit_code == 2, result.output
    assert "ops.compact_tables" in result.output


def test_two_compactions_never_run_at_once_on_a_host(tmp_path: Path) -> None:
    # delta-rs 1.6 commits both of two concurrent compactions of the same files (each
    # adds a rewrite of the same rows): `st lake optimize` waits on `st ops compact`'s lock.
    config = write_config(tmp_path)
    state_dir = load_config(config).config.runtime.state_dir
    with stage_lock(state_dir, "ops.compact", "held"):
        result = CliRunner().invoke(app, ["--config", str(config), "lake", "optimize"])
    assert result.exit_code == 75, result.output
    assert "ops.compact is already running" in result.output
