"""Run discipline: stage locks, the ledger, and error-to-exit-code mapping."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import EXIT_LOCKED, LockHeldError, StageError
from smarttrader_cli.ops.ledger import Ledger
from smarttrader_cli.ops.locks import stage_lock
from smarttrader_cli.ops.runs import stage_run as run_stage
from smarttrader_cli.stages.contract import StageContext


def stage_run(app: AppContext, stage: str, args: dict[str, Any] | None = None) -> Any:
    return run_stage(StageContext.of(app.loaded, app.lake), stage, args)


def test_a_held_lock_names_its_holder(tmp_path: Path) -> None:
    with stage_lock(tmp_path, "bronze.tokens", "run-A"), pytest.raises(LockHeldError) as info:
        with stage_lock(tmp_path, "bronze.tokens", "run-B"):
            pass
    assert info.value.exit_code == EXIT_LOCKED == 75
    assert "run run-A pid" in str(info.value)
    with stage_lock(tmp_path, "bronze.tokens", "run-C"):  # released after the block
        pass


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; from smarttrader_cli.ops.locks import stage_lock\n"
            f"with stage_lock({str(tmp_path)!r}, 'silver.pnl', 'other-run'):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match="other-run"):
            with stage_lock(tmp_path, "silver.pnl", "mine"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with stage_lock(tmp_path, "silver.pnl", "mine"):  # a dead holder's lock is free
        pass


def test_ledger_records_success_with_counts(app_ctx: AppContext) -> None:
    with stage_run(app_ctx, "test.stage", {"wallet": ["W"]}) as run:
        run.rows_in, run.rows_out = 10, 7
    rows = Ledger(app_ctx.lake).runs()
    assert len(rows) == 1
    row = rows[0]
    assert row["run_id"] == run.run_id
    assert (row["stage"], row["status"], row["rows_in"], row["rows_out"]) == (
        "test.stage",
        "succeeded",
        10,
        7,
    )
    assert row["ended_at"] >= row["started_at"] and row["duration_seconds"] >= 0
    assert json.loads(row["args"]) == {"wallet": ["W"]}
    assert row["config_hash"] == app_ctx.loaded.hash


def test_ledger_records_failure_and_reraises(app_ctx: AppContext) -> None:
    with pytest.raises(StageError), stage_run(app_ctx, "test.stage") as run:
        raise StageError("upstream said no\nsecond line")
    row = Ledger(app_ctx.lake).get(run.run_id)
    assert row is not None
    assert row["status"] == "failed" and row["error"] == "upstream said no"


def test_a_run_that_cannot_take_the_lock_leaves_no_ledger_row(app_ctx: AppContext) -> None:
    state = app_ctx.config.runtime.state_dir
    with stage_lock(state, "test.stage", "someone-else"), pytest.raises(LockHeldError):
        with stage_run(app_ctx, "test.stage"):
            pass
    assert Ledger(app_ctx.lake).runs() == []


def test_runs_cli_lists_and_shows(app_ctx: AppContext) -> None:
    with stage_run(app_ctx, "test.stage") as run:
        run.rows_out = 3
    args = ["--config", str(app_ctx.config_path)]
    listed = CliRunner().invoke(app, [*args, "runs", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)[0]["run_id"] == run.run_id
    shown = CliRunner().invoke(app, [*args, "runs", "show", run.run_id, "--format", "json"])
    assert json.loads(shown.stdout)[0]["rows_out"] == 3
    missing = CliRunner().invoke(app, [*args, "runs", "show", "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output
