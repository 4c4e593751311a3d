"""Pipeline plan (--from/--to, helius only when configured), runner and CLI summary."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli import pipeline
from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import LockHeldError, PipelineFailed, StageError, UsageError
from smarttrader_cli.lake.tables import RUNS
from smarttrader_cli.ops.ledger import Ledger
from smarttrader_cli.ops.runs import StageRun
from smarttrader_cli.stages.contract import Stage, StageContext, StageResult, run_result, stage


@pytest.fixture
def config(st_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in [v for v in os.environ if v.startswith("ST_")]:
        monkeypatch.delenv(var)
    return st_config()


def names(stages: list[Stage]) -> list[str]:
    return [s.name for s in stages]


def test_plan_order_and_helius_only_when_configured(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = AppContext(config_path=config).config
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
    ctx = AppContext(config_path=config).config
    assert names(pipeline.plan(ctx, "gold.rank")) == ["gold.rank", "helius.sync"]


def test_every_listed_stage_loads_under_its_name() -> None:
    for name, target in pipeline.STAGES:
        loaded = pipeline.load(target)
        assert isinstance(loaded, Stage) and loaded.name == name, target


def test_plan_rejects_unknown_and_reversed_stages(config: Path) -> None:
    ctx = AppContext(config_path=config).config
    with pytest.raises(UsageError, match=r"--from .silver. is not a stage; stages: bronze\.tokens"):
        pipeline.plan(ctx, start="silver")
    with pytest.raises(UsageError, match="comes after"):
        pipeline.plan(ctx, start="gold.rank", end="bronze.tokens")


def stage_ctx(config: Path) -> StageContext:
    app = AppContext(config_path=config)
    return StageContext.of(app.loaded, app.lake)


def fake_stage(name: str, calls: list[str], fail: Exception | None = None) -> Stage:
    """A stage that records a real stage run (lock + ledger) and counts rows."""

    @stage(name, writes="somewhere", command=f"st {name}")
    def run(ctx: StageContext, current: StageRun) -> StageResult:
        calls.append(name)
        current.rows_in, current.rows_out = 10, 7
        if fail:
            raise fail
        return run_result(current, note="done")

    return run


def test_a_stage_records_its_prepared_args_and_returns_its_counts(config: Path) -> None:
    def prepare(ctx: StageContext, wallet: str) -> dict[str, object]:
        if not wallet:
            raise UsageError("--wallet must not be empty")
        return {"wallets": [wallet]}

    @stage("a.stage", writes="somewhere", command="st a stage", prepare=prepare)
    def run(ctx: StageContext, current: StageRun, wallet: str) -> StageResult:
        current.rows_in, current.rows_out = 3, 2
        return run_result(current, [{"wallet": wallet}], seen=current.args["wallets"])

    ctx = stage_ctx(config)
    result = run(ctx, wallet="W")
    assert result.as_row() == {
        "stage": "a.stage",
        "run_id": result.run_id,
        "rows_in": 3,
        "rows_out": 2,
        "seen": ["W"],
    }
    assert result.records == [{"wallet": "W"}]
    row = Ledger(ctx.lake).get(result.run_id)
    assert row is not None and json.loads(row["args"]) == {"wallets": ["W"]}
    with pytest.raises(UsageError):  # refused before the lock: no ledger row
        run(ctx, wallet="")
    assert len(Ledger(ctx.lake).runs()) == 1


def test_run_stops_at_the_first_failure_and_names_it(config: Path) -> None:
    ctx = stage_ctx(config)
    calls: list[str] = []
    stages = [
        fake_stage("a.one", calls),
        fake_stage("a.two", calls, StageError("boom")),
        fake_stage("a.three", calls),
    ]
    seen: list[tuple[str, str]] = []
    with pytest.raises(PipelineFailed) as info:
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
    ctx = stage_ctx(config)
    stages = [fake_stage("a.one", [], LockHeldError("held by run X"))]
    with pytest.raises(PipelineFailed) as info:
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
    monkeypatch.setattr(pipeline, "STAGES", tuple((s.name, s.name) for s in stages))
    monkeypatch.setattr(pipeline, "STAGE_NAMES", tuple(s.name for s in stages))
    monkeypatch.setattr(pipeline, "load", {s.name: s for s in stages}.__getitem__)
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
