"""Gold stage pieces that need no dbt run: vars from config, config checks, profile, messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import load_config
from smarttrader_cli.config.schema import Config
from smarttrader_cli.engines.dbt_runner import _failure_message, make_target, profile_for
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.stages.gold import TIER_METRICS, flows_since, gold_vars

DBT = Path(__file__).resolve().parents[3] / "dbt"


def test_every_var_the_dbt_project_uses_comes_from_the_config() -> None:
    used: set[str] = set()
    for path in [*DBT.rglob("*.sql"), *DBT.rglob("*.yml")]:
        used |= set(re.findall(r"var\(\s*['\"]([a-z_]+)['\"]", path.read_text()))
    assert "tier_" in used  # meets_tier() builds tier_<name>_<metric>: expand it
    used.discard("tier_")
    used |= {f"tier_{t}_{m}" for t in ("elite", "strong") for m in TIER_METRICS}
    variables = gold_vars(Config(), "/lake", datetime(2025, 1, 1, tzinfo=UTC))
    assert used <= set(variables), used - set(variables)


def test_no_threshold_literal_in_the_models() -> None:
    for sql in (DBT / "models").rglob("*.sql"):
        text = re.sub(r"--.*", "", sql.read_text())
        # the only numbers allowed are structural: 0, 0.5 halves, 1, and 60 s per minute
        numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", text))
        assert numbers <= {"0", "0.5", "1", "60"}, (sql.name, numbers)


def test_vars_follow_yaml_and_env(tmp_path: Path) -> None:
    path = tmp_path / "st.yaml"
    path.write_text("gold:\n  min_roi: 0.2\n  tiers:\n    elite:\n      min_trade_count: 50\n")
    loaded = load_config(path, {"ST_GOLD__SCORE__WEIGHT_ACTIVITY": "0.1"})
    variables = gold_vars(loaded.config, "/lake")
    assert variables["min_roi"] == 0.2
    assert variables["tier_elite_min_trade_count"] == 50
    assert variables["weight_activity"] == 0.1
    assert "flows_since" not in variables  # time-free vars keep dbt's partial parse valid


def test_config_tiers_are_the_shipped_tiers() -> None:
    variables = gold_vars(Config(), "/lake")
    assert [variables[f"tier_elite_{m}"] for m in ("min_total_pnl", "min_roi")] == [1000.0, 0.30]
    assert [variables[f"tier_elite_{m}"] for m in ("min_win_rate", "min_trade_count")] == [0.6, 10]
    assert [variables[f"tier_strong_{m}"] for m in ("min_total_pnl", "min_roi")] == [100.0, 0.15]
    assert [variables[f"tier_strong_{m}"] for m in ("min_win_rate", "min_trade_count")] == [0.4, 5]
    window_rules = ("positive_windows", "min_closed_positions", "min_basis_coverage")
    assert [variables[f"tier_elite_{m}"] for m in window_rules] == [["7d", "30d"], 3, 0.8]
    assert [variables[f"tier_strong_{m}"] for m in window_rules] == [["30d"], 2, 0.5]
    assert variables["rank_window"] == "all" and variables["exclude_flagged"] is True
    assert gold_vars(Config(), "/lake", window="7d")["rank_window"] == "7d"


# What `st gold rank` and `st gold flows` refused at run time, the loader refuses at load.
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gold:\n  score:\n    weight_win_rate: -0.1\n",
            ":3: gold.score.weight_win_rate must be >= 0",
        ),
        ("gold:\n  score:\n    pnl_scale_usd: 0\n", ":3: gold.score.pnl_scale_usd must be > 0"),
        ("gold:\n  score:\n    roi_scale: -1\n", ":3: gold.score.roi_scale must be > 0"),
        (
            "gold:\n  score:\n    weight_profitability: 0\n    weight_win_rate: 0\n"
            "    weight_activity: 0\n",
            ":3: gold.score weights must not all be 0",
        ),
        ("gold:\n  min_win_rate: .nan\n", ":2: gold.min_win_rate must be a finite number"),
        (
            "gold:\n  tiers:\n    elite:\n      min_win_rate: 1.5\n",
            ":4: gold.tiers.elite.min_win_rate must be between 0 and 1, got 1.5",
        ),
        ("gold:\n  top_n: 0\n", ":2: gold.top_n must be >= 1, got 0"),
        ("gold:\n  window: 2d\n", ":2: gold.window must be one of pnl.windows, got '2d'"),
        (
            "gold:\n  tiers:\n    strong:\n      positive_windows: [90d]\n",
            ":4: gold.tiers.strong.positive_windows must be windows of pnl.windows",
        ),
        (
            "gold:\n  exclude_flags: [bot, whale]\n",
            ":2: gold.exclude_flags may only name the flags bot, sniper",
        ),
        (
            "gold:\n  classify:\n    sniper_min_share: 0\n",
            ":3: gold.classify.sniper_min_share must be > 0 and <= 1, got 0",
        ),
        (
            "gold:\n  tiers:\n    elite:\n      min_basis_coverage: 1.2\n",
            ":4: gold.tiers.elite.min_basis_coverage must be between 0 and 1, got 1.2",
        ),
        ("flows:\n  top_n: 0\n", ":2: flows.top_n must be >= 1, got 0"),
    ],
)
def test_config_validate_refuses_what_the_gold_stages_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "st.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["--config", str(path), "config", "validate"])
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert f"{path}{message}" in line


def test_flows_since_is_aligned_to_a_window() -> None:
    config = Config()
    config.flows.window_minutes, config.flows.lookback_hours = 15, 2
    since = flows_since(config, datetime(2025, 3, 1, 12, 7, 30, tzinfo=UTC))
    assert since == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    since = flows_since(config, datetime(2025, 3, 1, 12, 22, tzinfo=UTC))
    assert since == datetime(2025, 3, 1, 10, 15, tzinfo=UTC)


def test_profile_is_offline_and_keeps_credentials_out_of_the_file(tmp_path: Path) -> None:
    target = make_target(tmp_path, "t", 512, 2)
    local = profile_for(target, Lake(str(tmp_path / "lake")))["smarttrader"]["outputs"]["st"]
    assert local["config_options"]["autoinstall_known_extensions"] == "false"
    assert local["config_options"]["memory_limit"] == "512MB"
    assert [Path(e).name for e in local["extensions"]] == ["delta.duckdb_extension"]
    remote = Lake(
        "s3://bucket/lake",
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
    )
    output = profile_for(target, remote)["smarttrader"]["outputs"]["st"]
    assert [Path(e).name for e in output["extensions"]] == [
        "httpfs.duckdb_extension",
        "delta.duckdb_extension",
    ]
    (secret,) = output["secrets"]
    assert secret["endpoint"] == "127.0.0.1:9000" and secret["use_ssl"] is False
    assert secret["url_style"] == "path"
    assert "s3cr3t" not in str(output) and "env_var('AWS_SECRET_ACCESS_KEY'" in secret["secret"]


def test_failure_message_names_the_first_failed_node() -> None:
    def node(status: str, name: str, message: str) -> SimpleNamespace:
        return SimpleNamespace(
            status=SimpleNamespace(value=status),
            message=message,
            node=SimpleNamespace(resource_type="test", name=name),
        )

    result = SimpleNamespace(
        exception=None,
        result=SimpleNamespace(
            results=[
                node("pass", "ok_test", ""),
                node(
                    "fail",
                    "unique_smart_wallets_wallet_address",
                    "Got 2 results, configured to fail",
                ),
                node("error", "other", "boom"),
                node("skipped", "later", ""),
            ]
        ),
    )
    assert _failure_message(result) == (
        "dbt test unique_smart_wallets_wallet_address failed: Got 2 results, configured to "
        "fail (+1 more)"
    )
