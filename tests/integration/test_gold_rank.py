"""gold.rank over real Delta tables with real dbt-duckdb: filters, tiers, score, rank, errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from solders.keypair import Keypair
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var, make_target
from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import SMART_WALLETS, WALLET_PNL
from smarttrader_cli.stages import gold
from smarttrader_cli.stages.contract import StageContext, StageResult
from smarttrader_cli.stages.gold import gold_vars
from smarttrader_cli.stages.wallet_accounts import stage_inputs

pytestmark = pytest.mark.integration

META = CommitMeta("test-run", "test", "hash")
SMALL = {"memory.min_free_mb": 64}  # a few wallets: the stage may start with little memory free

# wallet: (total_pnl, roi, win_rate, trade_count)
PORTFOLIOS = {
    "ELITE1": (5000.0, 0.8, 0.7, 30),
    "ELITE2": (2500.0, 0.5, 0.65, 12),
    "STRONG": (500.0, 0.2, 0.5, 8),
    "PROMISING": (50.0, 0.05, 0.45, 3),
    "LOSER": (-100.0, -0.1, 0.2, 10),
    "LOWROI": (20.0, 0.005, 0.9, 4),
    "LOWWIN": (800.0, 0.4, 0.1, 20),
}


def wallet(name: str) -> str:
    """A real wallet address (the public key of a keypair seeded by `name`): never flagged."""
    return str(Keypair.from_seed(hashlib.sha256(name.encode()).digest()).pubkey())


NAMES = {wallet(name): name for name in PORTFOLIOS}


def names(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by the test's wallet name."""
    return {NAMES[r["wallet_address"]]: r for r in rows}


def rank(app: AppContext) -> StageResult:
    return gold.rank(StageContext.of(app.loaded, app.lake))


def silver_rows(portfolios: dict[str, tuple[float, float, float, int]]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for name, (pnl, roi, win_rate, trades) in portfolios.items():
        common = {
            "wallet_address": wallet(name),
            "total_pnl": pnl,
            "realized_pnl": pnl * 0.8,
            "unrealized_pnl": pnl * 0.2,
            "roi": roi,
            "win_rate": win_rate,
            "trade_count": trades,
        }
        rows.append({**common, "token_address": "ALL_TOKENS"})
        # a per-token row that would qualify on its own: must never be ranked as such
        rows.append(
            {**common, "token_address": "TOKEN_A", "total_pnl": 9999.0, "roi": 5.0, "win_rate": 1.0}
        )
    return pa.Table.from_pylist(rows)


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return SMALL


@pytest.fixture
def app_ctx(app_ctx: AppContext) -> AppContext:
    """The shared app_ctx with the portfolios in silver.wallet_pnl."""
    app_ctx.lake.merge(WALLET_PNL, silver_rows(PORTFOLIOS), META)
    return app_ctx


def test_rank_filters_tiers_scores_and_writes_one_commit(app_ctx: AppContext) -> None:
    result = rank(app_ctx)
    ranked = names(result.records)
    assert set(ranked) == {"ELITE1", "ELITE2", "STRONG", "PROMISING"}
    assert result.details["candidates"] == len(PORTFOLIOS)
    assert ranked["ELITE1"]["tier"] == ranked["ELITE2"]["tier"] == "elite"
    assert ranked["STRONG"]["tier"] == "strong"
    assert ranked["PROMISING"]["tier"] == "promising"
    assert [r["rank"] for r in result.records] == [1, 2, 3, 4]
    scores = [r["score"] for r in result.records]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert result.records[0]["wallet_address"] == wallet("ELITE1")
    # the stored table is exactly the ranking, one overwrite commit with the run's metadata
    stored = app_ctx.lake.read(SMART_WALLETS).to_pylist()
    assert set(names(stored)) == set(ranked)
    assert {r["run_id"] for r in stored} == {result.run_id}
    last = app_ctx.lake.history(SMART_WALLETS, 1)[0]
    assert last["run_id"] == result.run_id and last["stage"] == "gold.rank"


def test_score_matches_the_documented_formula(app_ctx: AppContext) -> None:
    score = app_ctx.config.gold.score
    row = names(rank(app_ctx).records)["STRONG"]
    pnl, roi, win_rate, trades = PORTFOLIOS["STRONG"]
    profitability = 0.5 * pnl / (pnl + score.pnl_scale_usd) + 0.5 * roi / (roi + score.roi_scale)
    activity = trades / (trades + score.activity_scale_trades)
    weights = score.weight_profitability + score.weight_win_rate + score.weight_activity
    expected = (
        score.weight_profitability * profitability
        + score.weight_win_rate * win_rate
        + score.weight_activity * activity
    ) / weights
    assert row["score"] == pytest.approx(expected, abs=1e-12)


def test_rerank_replaces_the_snapshot(app_ctx: AppContext) -> None:
    rank(app_ctx)
    # STRONG turns into a loser in silver: the next ranking drops it
    changed = dict(PORTFOLIOS, STRONG=(-50.0, -0.05, 0.3, 8))
    app_ctx.lake.merge(WALLET_PNL, silver_rows(changed), META)
    second = rank(app_ctx)
    stored = set(names(app_ctx.lake.read(SMART_WALLETS).to_pylist()))
    assert stored == {"ELITE1", "ELITE2", "PROMISING"} == set(names(second.records))


def test_yaml_threshold_changes_ranking_without_touching_sql(
    st_config: Callable[..., Path],
) -> None:
    config = st_config(**SMALL, gold__min_win_rate=0.6, gold__tiers__elite__min_total_pnl=3000.0)
    ctx = AppContext(config_path=config)
    ctx.lake.merge(WALLET_PNL, silver_rows(PORTFOLIOS), META)
    ranked = {name: r["tier"] for name, r in names(rank(ctx).records).items()}
    # win rate >= 0.6 keeps only the two elites; ELITE2 has 2500 PnL < 3000 → strong
    assert ranked == {"ELITE1": "elite", "ELITE2": "strong"}


def test_env_threshold_changes_ranking(
    app_ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST_GOLD__MIN_TRADE_COUNT", "10")
    ctx = AppContext(config_path=app_ctx.config_path)
    assert set(names(rank(ctx).records)) == {"ELITE1", "ELITE2"}


def test_thresholds_excluding_everyone_give_an_empty_ranking(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    rank(app_ctx)
    monkeypatch.setenv("ST_GOLD__MIN_TOTAL_PNL", "1000000")
    result = CliRunner().invoke(
        app,
        ["--config", str(app_ctx.config_path), "gold", "rank", "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "no wallet passes the base filters (7 checked" in result.stderr
    assert app_ctx.lake.read(SMART_WALLETS).num_rows == 0  # the snapshot is replaced


def test_empty_silver_table_is_an_empty_ranking(st_config: Callable[..., Path]) -> None:
    ctx = AppContext(config_path=st_config(**SMALL))
    ctx.lake.ensure_table(WALLET_PNL)
    result = rank(ctx)
    assert result.records == [] and result.details["candidates"] == 0
    assert "no portfolio (ALL_TOKENS) rows" in result.details["message"]


def test_missing_silver_table_fails_with_a_hint(st_config: Callable[..., Path]) -> None:
    result = CliRunner().invoke(
        app, ["--config", str(st_config(**SMALL)), "gold", "rank"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "silver.wallet_pnl has not been written yet; run `st silver pnl` first" in result.stderr


def test_failing_dbt_test_fails_with_dbts_message(app_ctx: AppContext) -> None:
    # weights the config check would refuse push every score above 1: the schema test on
    # score must catch it and the stage must fail with dbt's own message
    variables = gold_vars(
        app_ctx.config, lake_root_var(app_ctx.lake), lake_tables=[WALLET_PNL.name]
    )
    variables.update(weight_profitability=1.0, weight_win_rate=1.0, weight_activity=-1.9)
    target = make_target(app_ctx.config.runtime.state_dir, "broken", None, None)
    gold._write_inputs(target, stage_inputs(app_ctx.lake))
    with pytest.raises(StageError) as info:
        dbt_build(target, app_ctx.lake, list(gold.RANK_MODELS), variables)
    message = str(info.value)
    assert message.startswith("dbt test between_smart_wallets_score_")
    assert "Got 4 results, configured to fail if != 0" in message


def test_cli_prints_top_n_in_each_format(app_ctx: AppContext) -> None:
    base = ["--config", str(app_ctx.config_path), "gold", "rank", "--top", "2"]
    as_json = CliRunner().invoke(app, [*base, "--format", "json"], catch_exceptions=False)
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [NAMES[r["wallet_address"]] for r in rows] == ["ELITE1", "ELITE2"]
    assert set(rows[0]) >= {"rank", "tier", "score", "total_pnl", "roi", "win_rate"}
    as_csv = CliRunner().invoke(app, [*base, "--format", "csv"], catch_exceptions=False)
    assert as_csv.stdout.splitlines()[0].startswith("rank,wallet_address,tier,score")
    assert len(as_csv.stdout.splitlines()) == 3
    as_table = CliRunner().invoke(app, base, catch_exceptions=False)
    assert wallet("ELITE1") in as_table.stdout and "top 2 of 4 smart wallets" in as_table.stdout
    # dbt's own output stays off the terminal without -v
    assert "Concurrency" not in as_table.output and "PASS" not in as_table.output
