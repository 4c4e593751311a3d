"""Which gold.token_flows buckets a batch of silver legs touches (follow/flows.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.config import load_config
from smarttrader_cli.follow.flows import LiveFlows
from smarttrader_cli.lake.store import CommitMeta

SOL = "So11111111111111111111111111111111111111112"


def _legs(*rows: tuple[str, str | None, bool | None, int]) -> pa.Table:
    return pa.table(
        {
            "token_address": pa.array([r[0] for r in rows], pa.string()),
            "direction": pa.array([r[1] for r in rows], pa.string()),
            "is_smart_wallet": pa.array([r[2] for r in rows], pa.bool_()),
            "event_time": pa.array(
                [datetime.fromtimestamp(r[3], UTC) for r in rows], pa.timestamp("us", tz="UTC")
            ),
        }
    )


def test_touched_buckets_are_the_smart_legs_the_model_counts_by_window() -> None:
    config: Any = load_config(search=False, env={}).config
    live = LiveFlows(SimpleNamespace(config=config), CommitMeta("r", "t", "h"))  # type: ignore[arg-type]
    width = config.flows.window_minutes * 60
    base = 1_796_000_000 - 1_796_000_000 % width
    legs = _legs(
        ("TOKA", "buy", True, base + 5),
        ("TOKA", "sell", True, base + width + 1),  # the next window
        ("TOKB", "buy", False, base),  # not a smart wallet
        ("TOKC", "buy", None, base),  # not known to be one
        (SOL, "sell", True, base),  # a quote asset is never a flow
        ("TOKD", "transfer", True, base),  # neither a buy nor a sell
    )
    assert live.touched(legs) == {("TOKA", base), ("TOKA", base + width)}
    assert live.touched(legs.slice(0, 0)) == set()


def test_the_compiled_model_is_kept_until_the_project_or_the_vars_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smarttrader_cli.engines import dbt_runner
    from smarttrader_cli.follow import flows

    project = tmp_path / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: t\n")
    (project / "models" / "token_flows.sql").write_text("select 1")
    monkeypatch.setenv("ST_DBT_PROJECT_DIR", str(project))
    calls: list[dict[str, Any]] = []

    def compile_(target: Any, lake: Any, model: str, variables: dict[str, Any]) -> str:
        calls.append(variables)
        return f"select {len(calls)}"

    monkeypatch.setattr(dbt_runner, "dbt_compile", compile_)
    target = dbt_runner.make_target(tmp_path / "state", "gold_flows_live", None, None)
    first = flows._compiled(target, None, {"a": 1})  # type: ignore[arg-type]
    assert flows._compiled(target, None, {"a": 1}) == first == "select 1"  # type: ignore[arg-type]
    assert len(calls) == 1  # a restart reads it back
    (project / "target").mkdir()  # dbt's own output is not the project
    (project / "target" / "x.sql").write_text("anything")
    assert flows._compiled(target, None, {"a": 1}) == first  # type: ignore[arg-type]
    assert flows._compiled(target, None, {"a": 2}) == "select 2"  # type: ignore[arg-type]
    (project / "models" / "token_flows.sql").write_text("select 2")
    assert flows._compiled(target, None, {"a": 2}) == "select 3"  # type: ignore[arg-type]
    assert len(list(target.work_dir.glob("token_flows-*.sql"))) == 1  # the old one removed
