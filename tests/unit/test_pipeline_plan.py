"""Pipeline plan (--from/--to, helius only when configured), runner and CLI summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from smarttrader_cli import pipeline
from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import LockHeldError, StageError, UsageError
from smarttrader_cli.lake.tables import RUNS
from smarttrader_cli.ops.runs import stage_run


@pytest.fixture
def config(st_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in [v for v in os.environ if v.startswith("ST_")]:
        monkeypatch.delenv(var)
    return st_config()


def names(stages: list[pipeline.Stage]) -> list[str]:
    return [s.name for s in stages]


def test_plan_order_and_helius_only_when_configured(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = AppContext(config_path=config)
    assert names(pipeline.plan(ctx)) == [
        "bronze.tokens",
        "bronze.whales",
        "bronze.trades",
        "silver.pnl",
        "gold.rank",
    ]
    assert names(pipeline.plan(ctx, "bronze.trades", "silver.pnl")) == [
        "bronze.trades",
        "silver.pnl",
    ]
    with pytest.raises(UsageError, match=r"helius\.webhook_url is empty"):
        pipeline.plan(ctx, end="helius.sync")
    monkeypatch.setenv("ST_HELIUS__WEBHOOK_URL", "https://x/webhooks")
    ctx = AppContext(config_path=config)
    assert names(pipeline.plan(ctx, "gold.rank")) == ["gold.rank", "helius.sync"]


def test_plan_rejects_unknown_and_reversed_stages(config: Path) -> None:
    ctx = AppContext(config_path=config)
    with pytest.raises(UsageError, match=r"--from .silver. is not a stage; stages: bronze\.tokens"):
        pipeline.plan(ctx, start="silver")
    with pytest.raises(UsageError, match="comes after"):
        pipeline.plan(ctx, start="gold.rank", end="bronze.tokens")


def fake_stage(name: str, calls: list[str], fail: Exception | None = None) -> pipeline.Stage:
    """A stage that records a real stage run (lock + ledger) and counts rows."""

    def run(app: AppContext) -> SimpleNamespace:
        calls.append(name)
        with stage_run(app, name) as run:
            run.rows_in, run.rows_out = 10, 7
            if fail:
                raise fail
            return SimpleNamespace(rows_in=run.rows_in, rows_out=run.rows_out, run_id=run.run_id)

    return pipeline.Stage(name, f"st {name}", "somewhere", run)


def test_run_stops_at_the_first_failure_and_names_it(config: Path) -> None:
    ctx = AppContext(config_path=config)
    calls: list[str] = []
    stages = [
        fake_stage("a.one", calls),
        fake_stage("a.two", calls, StageError("boom")),
        fake_stage("a.three", calls),
    ]
    seen: list[tuple[str, str]] = []
    with pytest.raises(pipeline.PipelineFailed) as info:
        pipeline.run(ctx, stages, lambda o: seen.append((o.stage, o.status)))
    assert calls == ["a.one", "a.two"]
    assert str(info.value) == "pipeline stopped: stage a.two failed: boom"
    assert info.value.exit_code == 1
    assert [(o.stage, o.status) for o in info.value.outcomes] == [
        ("a.one", "succeeded"),
        ("a.two", "failed"),
        ("a.three", "not run"),
    ]
    assert info.value.outcomes[0].rows_in == 10 and info.value.outcomes[0].rows_out == 7
    assert ("a.two", "running") in seen and ("a.three", "not run") in seen
    # each stage is its own run in the ledger
    ledger = {(r["stage"], r["status"]) for r in ctx.lake.read(RUNS).to_pylist()}
    assert {("a.one", "succeeded"), ("a.two", "failed")} <= ledger


def test_a_locked_stage_keeps_exit_75(config: Path) -> None:
    ctx = AppContext(config_path=config)
    stages = [fake_stage("a.one", [], LockHeldError("held by run X"))]
    with pytest.raises(pipeline.PipelineFailed) as info:
        pipeline.run(ctx, stages)
    assert info.value.exit_code == 75


def test_cli_dry_run_touches_nothing(config: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(config),
            "pipeline",
            "run",
            "--dry-run",
            "--from",
            "silver.pnl",
            "-f",
            "json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert [r["stage"] for r in json.loads(result.stdout)] == ["silver.pnl", "gold.rank"]
    assert not (tmp_path / "lake").exists() and not (tmp_path / "state").exists()


def test_cli_prints_the_summary_and_exits_1_naming_the_stage(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    stages = (
        fake_stage("bronze.tokens", calls),
        fake_stage("bronze.whales", calls, StageError("BirdEye answered HTTP 401")),
        fake_stage("gold.rank", calls),
    )
    monkeypatch.setattr(pipeline, "STAGES", stages)
    monkeypatch.setattr(pipeline, "STAGE_NAMES", tuple(s.name for s in stages))
    result = CliRunner().invoke(
        app, ["--config", str(config), "pipeline", "run", "-f", "json"], catch_exceptions=False
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [(r["stage"], r["status"]) for r in summary] == [
        ("bronze.tokens", "succeeded"),
        ("bronze.whales", "failed"),
        ("gold.rank", "not run"),
    ]
    assert summary[0]["rows_in"] == 10 and summary[0]["duration_s"] is not None
    assert result.stderr.strip().splitlines()[-1] == (
        "st: error: pipeline stopped: stage bronze.whales failed: BirdEye answered HTTP 401"
    )
