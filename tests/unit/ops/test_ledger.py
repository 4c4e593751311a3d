"""The run ledger costs one append per run, shows runs in progress, never loses a run that
died without recording itself, keeps one row per run, and is expired and compacted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import LockHeldError, StageError
from smarttrader_cli.lake import CommitMeta, Lake
from smarttrader_cli.lake.tables import RUNS
from smarttrader_cli.ops.cleanup import run_cleanup
from smarttrader_cli.ops.ledger import FAILED, SUCCEEDED, Ledger, RunRecord
from smarttrader_cli.ops.runs import stage_run as run_stage
from smarttrader_cli.stages.contract import StageContext

STAGE = "test.stage"

# A stage run in another process that says so and then waits to be killed.
HANG_IN_A_RUN = """\
import sys, time
from smarttrader_cli.context import AppContext
from smarttrader_cli.ops.runs import stage_run
from smarttrader_cli.stages.contract import StageContext
app = AppContext(config_path=sys.argv[1])
with stage_run(StageContext.of(app.loaded, app.lake), "test.stage", {"n": 1}) as run:
    print(run.run_id, flush=True)
    time.sleep(60)
"""


def stage_run(app: AppContext, stage: str = STAGE) -> Any:
    return run_stage(StageContext.of(app.loaded, app.lake), stage)


def ledger(app: AppContext) -> Ledger:
    return Ledger(app.lake, app.config.runtime.state_dir)


def rows_of(app: AppContext, run_id: str) -> list[dict[str, Any]]:
    return [r for r in app.lake.read(RUNS).to_pylist() if r["run_id"] == run_id]


def runs_json(ctx: AppContext, *args: str) -> list[dict[str, Any]]:
    """`st runs ARGS --format json`, parsed."""
    result = CliRunner().invoke(
        app,
        ["--config", str(ctx.config_path), "runs", *args, "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def end_in(app: AppContext, how: str) -> str:
    """One run of STAGE that succeeds, fails, or is interrupted; returns its run id."""
    if how == "succeeded":
        with stage_run(app) as run:
            run.rows_out = 3
        return run.run_id
    error = StageError("no") if how == "failed" else KeyboardInterrupt()
    with pytest.raises(type(error)), stage_run(app) as run:
        raise error
    return run.run_id


@pytest.mark.parametrize("how", ["succeeded", "failed", "interrupted"])
def test_a_run_is_one_append_and_one_row(app_ctx: AppContext, how: str) -> None:
    end_in(app_ctx, "succeeded")  # the table exists from here on
    before = app_ctx.lake.version(RUNS)
    run_id = end_in(app_ctx, how)
    assert app_ctx.lake.version(RUNS) == before + 1  # one commit for the whole run
    last = app_ctx.lake.history(RUNS, 1)[0]
    assert last["operation"] == "WRITE" and last["st_operation"] == "append"
    rows = rows_of(app_ctx, run_id)
    assert len(rows) == 1
    status = {"succeeded": SUCCEEDED, "failed": FAILED, "interrupted": FAILED}[how]
    assert rows[0]["status"] == status and rows[0]["ended_at"] is not None
    assert (
        rows[0]["error"] == {"succeeded": None, "failed": "no", "interrupted": "interrupted"}[how]
    )
    assert not list(Path(app_ctx.config.runtime.state_dir, "locks").glob("*.run"))


def test_a_run_in_progress_is_listed_from_outside_the_lake(app_ctx: AppContext) -> None:
    end_in(app_ctx, "succeeded")
    with stage_run(app_ctx) as run:
        assert rows_of(app_ctx, run.run_id) == []  # nothing written to the lake yet
        listed = runs_json(app_ctx, "list")
        assert (listed[0]["run_id"], listed[0]["status"]) == (run.run_id, "running")
        shown = runs_json(app_ctx, "show", run.run_id)
        assert shown[0]["status"] == "running" and shown[0]["ended_at"] is None
    listed = runs_json(app_ctx, "list")
    assert [(r["run_id"], r["status"]) for r in listed][:1] == [(run.run_id, "succeeded")]
    assert len(listed) == 2


def test_a_killed_run_is_recorded_failed_once_by_the_next_run(app_ctx: AppContext) -> None:
    hung = subprocess.Popen(
        [sys.executable, "-c", HANG_IN_A_RUN, str(app_ctx.config_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert hung.stdout is not None
    killed = hung.stdout.readline().strip()
    assert killed, "the run never started"
    assert ledger(app_ctx).get(killed)["status"] == "running"  # type: ignore[index]
    hung.send_signal(signal.SIGKILL)
    hung.wait()

    # Readers see it failed at once, and write nothing for it.
    seen = ledger(app_ctx).get(killed)
    assert seen is not None and seen["status"] == FAILED
    assert f"process {hung.pid} on" in seen["error"] and "without recording" in seen["error"]
    assert rows_of(app_ctx, killed) == []

    # The next run of the stage records it; a second one (and readers) do not again.
    state = app_ctx.config.runtime.state_dir
    for _ in range(2):
        with stage_run(app_ctx) as run:
            with pytest.raises(LockHeldError), stage_run(app_ctx):
                pass  # a concurrent start finds the lock held and touches nothing
        assert ledger(app_ctx).runs(limit=10)
    rows = rows_of(app_ctx, killed)
    assert len(rows) == 1, rows
    assert rows[0]["status"] == FAILED and rows[0]["pid"] == hung.pid
    assert rows[0]["args"] == json.dumps({"n": 1}) and rows[0]["ended_at"] is None
    assert "found by run" in rows[0]["error"]
    listed = [r for r in ledger(app_ctx).runs(limit=10) if r["run_id"] == killed]
    assert len(listed) == 1 and listed[0]["status"] == FAILED
    assert run.run_id in {r["run_id"] for r in ledger(app_ctx).runs(limit=10)}
    assert not list(Path(state, "locks").glob("*.run"))


def test_an_outcome_the_lake_refused_is_appended_by_the_next_run(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    end_in(app_ctx, "succeeded")
    original = Ledger.record

    def lake_down(self: Ledger, record: RunRecord) -> None:
        raise OSError("lake unreachable")

    monkeypatch.setattr(Ledger, "record", lake_down)
    with stage_run(app_ctx) as run:
        run.rows_out = 5
    monkeypatch.setattr(Ledger, "record", original)
    assert rows_of(app_ctx, run.run_id) == []
    assert ledger(app_ctx).get(run.run_id)["status"] == SUCCEEDED  # type: ignore[index]
    end_in(app_ctx, "succeeded")
    rows = rows_of(app_ctx, run.run_id)
    assert [(r["status"], r["rows_out"]) for r in rows] == [(SUCCEEDED, 5)]


def test_two_rows_of_one_run_read_as_the_one_it_wrote_itself(app_ctx: AppContext) -> None:
    book = ledger(app_ctx)
    started = datetime(2026, 11, 30, 12, tzinfo=UTC)
    for run_id, own_first in [("run-x", True), ("run-y", False)]:
        crashed = RunRecord(run_id, STAGE, FAILED, started, "h", {}, error="process 1 ended")
        own = RunRecord(run_id, STAGE, SUCCEEDED, started, "h", {}, ended_at=started, rows_out=4)
        for record in (own, crashed) if own_first else (crashed, own):
            book.record(record)
        assert len(rows_of(app_ctx, run_id)) == 2
        shown = book.get(run_id)
        assert shown is not None and (shown["status"], shown["rows_out"]) == (SUCCEEDED, 4)
    listed = [(r["run_id"], r["status"]) for r in book.runs()]
    assert sorted(listed) == [("run-x", SUCCEEDED), ("run-y", SUCCEEDED)]


def test_the_newest_runs_come_from_the_newest_files_compacted_or_not(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stages = ["ops.cleanup", "stream.drain", "stream.drain", "silver.webhooks"]
    every = [
        {
            "run_id": f"r{i:05d}",
            "stage": stages[i % 4],
            "status": SUCCEEDED,
            "started_at": start + timedelta(minutes=5 * i),
        }
        for i in range(3000)
    ]
    book = Ledger(lake)
    for chunk in range(0, 2900, 500):  # a few big files, then one row per commit
        _append(lake, every[chunk : chunk + 500][: 2900 - chunk])
    for row in every[2900:]:
        _append(lake, [row])

    def expected(limit: int, stage: str | None) -> list[str]:
        rows = [r for r in every if stage in (None, r["stage"])]
        return [r["run_id"] for r in reversed(rows)][:limit]

    def listed(limit: int, stage: str | None) -> list[str]:
        return [r["run_id"] for r in book.runs(limit=limit, stage=stage)]

    for compacted in (False, True):
        if compacted:
            assert book.compact(2, dry_run=False) > 100
            assert len(lake.table(RUNS).file_uris()) == 1
        for limit, stage in [(5, None), (50, None), (150, "stream.drain"), (20, "ops.cleanup")]:
            assert listed(limit, stage) == expected(limit, stage), (compacted, limit, stage)
        assert listed(5000, None) == expected(5000, None)


def test_cleanup_expires_old_runs_and_compacts_the_ledger(st_config: Any) -> None:
    from smarttrader_cli.config import load_config

    config = load_config(st_config(**{"ops.runs_retention_days": 30, "ops.runs_compact_files": 3}))
    lake = Lake.from_config(config)
    now = datetime.now(UTC)
    for days in (400, 31, 29, 1, 0):
        _append(lake, [{"run_id": f"d{days}", "stage": STAGE, "status": SUCCEEDED,
                        "started_at": now - timedelta(days=days, minutes=1)}])  # fmt: skip
    dry = run_cleanup(config.config, lake, dry_run=True)
    assert [r["action"] for r in dry.rows() if r["kind"] == "ledger"] == [
        "would remove 2 rows",
        "would compact 5 files",
    ]
    assert lake.read(RUNS).num_rows == 5
    done = run_cleanup(config.config, lake, dry_run=False)
    assert [r["action"] for r in done.rows() if r["kind"] == "ledger"] == [
        "removed 2 rows",
        "compacted 3 files",
    ]
    assert sorted(lake.read(RUNS).column("run_id").to_pylist()) == ["d0", "d1", "d29"]
    assert len(lake.table(RUNS).file_uris()) == 1
    again = run_cleanup(config.config, lake, dry_run=False)
    assert [r for r in again.rows() if r["kind"] == "ledger"] == []


def _append(lake: Lake, rows: list[dict[str, Any]]) -> None:
    lake.append(RUNS, pa.Table.from_pylist(rows, schema=RUNS.schema), _meta())


def _meta() -> CommitMeta:
    return CommitMeta("test", "test", "cfg")
