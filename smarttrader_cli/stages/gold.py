"""Gold stages: the smart-wallet ranking and the smart-money token flows, built with dbt."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.readers import require
from smarttrader_cli.lake.sql import between
from smarttrader_cli.lake.tables import (
    SMART_WALLETS,
    TOKEN_FLOWS,
    WALLET_PNL,
    WEBHOOK_SWAPS,
    TableSpec,
)
from smarttrader_cli.ops.runs import stage_run

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.engines.dbt_runner import DbtTarget

log = logging.getLogger("st.gold")

RANK_STAGE = "gold.rank"
FLOWS_STAGE = "gold.flows"
# Columns `st gold rank` prints; the table holds more (lake/tables.py).
RANK_COLUMNS = (
    "rank",
    "wallet_address",
    "tier",
    "score",
    "total_pnl",
    "roi",
    "win_rate",
    "trade_count",
)
FLOWS_COLUMNS = (
    "token_address",
    "net_flow_usd",
    "buy_volume_usd",
    "sell_volume_usd",
    "buy_count",
    "sell_count",
    "smart_buyers",
    "smart_sellers",
    "unpriced_legs",
    "last_trade_at",
)


@dataclass
class RankResult:
    """What `gold.rank` did: the ranking (best first) and how many wallets it considered."""

    run_id: str
    candidates: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    message: str = ""

    @property
    def ranked(self) -> int:
        return len(self.rows)

    @property
    def rows_in(self) -> int:
        return self.candidates

    @property
    def rows_out(self) -> int:
        return self.ranked


@dataclass
class FlowsResult:
    """What `gold.flows` did: windows written and the per-token summary of the range."""

    run_id: str
    since: datetime
    legs: int
    windows: int
    top: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    message: str = ""

    @property
    def rows_in(self) -> int:
        return self.legs

    @property
    def rows_out(self) -> int:
        return self.windows


def gold_vars(config: Config, lake_root: str, now: datetime | None = None) -> dict[str, Any]:
    """Every dbt var, from the config: thresholds, tiers, score weights, flow windows."""
    gold, score, flows = config.gold, config.gold.score, config.flows
    variables: dict[str, Any] = {
        "lake_root": lake_root,
        "min_total_pnl": gold.min_total_pnl,
        "min_roi": gold.min_roi,
        "min_win_rate": gold.min_win_rate,
        "min_trade_count": gold.min_trade_count,
        "weight_profitability": score.weight_profitability,
        "weight_win_rate": score.weight_win_rate,
        "weight_activity": score.weight_activity,
        "pnl_scale_usd": score.pnl_scale_usd,
        "roi_scale": score.roi_scale,
        "activity_scale_trades": score.activity_scale_trades,
    }
    if now is not None:  # time-dependent vars only for flows: stable vars keep partial parsing
        variables.update(
            flows_window_minutes=flows.window_minutes,
            flows_since=flows_since(config, now).isoformat(),
            quote_assets=list(config.pnl.quote_assets),
        )
    for name in ("elite", "strong"):
        tier = getattr(gold.tiers, name)
        for metric in ("min_total_pnl", "min_roi", "min_win_rate", "min_trade_count"):
            variables[f"tier_{name}_{metric}"] = getattr(tier, metric)
    return variables


def flows_since(config: Config, now: datetime | None = None) -> datetime:
    """Start of the recomputed range: now − lookback, floored to a window boundary."""
    now = now or datetime.now(UTC)
    window = config.flows.window_minutes * 60
    start = int((now - timedelta(hours=config.flows.lookback_hours)).timestamp())
    return datetime.fromtimestamp(start - start % window, UTC)


def _target(app: AppContext, name: str, what: str) -> DbtTarget:
    from smarttrader_cli.engines.dbt_runner import make_target
    from smarttrader_cli.ops.resources import budget_for

    budget = budget_for(app.config.memory, what=what)
    return make_target(app.config.runtime.state_dir, name, budget.memory_limit_mb, budget.threads)


def rank(app: AppContext, *, echo_dbt: bool = False) -> RankResult:
    """Build the smart_wallets model and overwrite gold.smart_wallets with it (one commit)."""
    from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var

    config, lake = app.config, app.lake
    with stage_run(app, RANK_STAGE) as run:
        require(lake, WALLET_PNL, "run `st silver pnl` first")
        target = _target(app, "gold_rank", RANK_STAGE)
        dbt_build(
            target,
            lake,
            ["wallet_portfolios", "smart_wallets"],
            gold_vars(config, lake_root_var(lake)),
            echo=echo_dbt,
        )
        candidates = (
            target.read("select count(*) as n from main.wallet_portfolios").column("n")[0].as_py()
        )
        ranked = target.read("select * from main.smart_wallets order by rank")
        table = _with_run_columns(ranked, SMART_WALLETS, "ranked_at", run.run_id)
        # The ranking is a snapshot of silver: an empty ranking replaces the old one too.
        version = lake.overwrite(SMART_WALLETS, table, run.meta)
        run.rows_in, run.rows_out = int(candidates), table.num_rows
        result = RankResult(run.run_id, int(candidates), table.to_pylist(), version)
        if not result.rows:
            result.message = _empty_message(config, int(candidates))
            log.warning("%s", result.message)
        else:
            log.info(
                "ranked %d of %d wallets into gold.smart_wallets (version %d)",
                result.ranked,
                candidates,
                version,
            )
        return result


def _empty_message(config: Config, candidates: int) -> str:
    if candidates == 0:
        return "silver.wallet_pnl has no portfolio (ALL_TOKENS) rows yet: nothing to rank"
    gold = config.gold
    return (
        f"no wallet passes the base filters ({candidates} checked; gold.min_total_pnl="
        f"{gold.min_total_pnl}, min_roi={gold.min_roi}, min_win_rate={gold.min_win_rate}, "
        f"min_trade_count={gold.min_trade_count}); gold.smart_wallets is now empty"
    )


def flows(app: AppContext, *, now: datetime | None = None, echo_dbt: bool = False) -> FlowsResult:
    """Recompute gold.token_flows for the lookback range and merge it (one commit)."""
    from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var

    config, lake = app.config, app.lake
    now = now or datetime.now(UTC)
    since = flows_since(config, now)
    with stage_run(app, FLOWS_STAGE, {"since": since.isoformat()}) as run:
        require(lake, WEBHOOK_SWAPS, "run `st silver webhooks` first")
        target = _target(app, "gold_flows", FLOWS_STAGE)
        dbt_build(
            target,
            lake,
            ["token_flows", "smart_money_now"],
            gold_vars(config, lake_root_var(lake), now),
            echo=echo_dbt,
        )
        windows = target.read("select * from main.token_flows order by window_start, token_address")
        table = _with_run_columns(windows, TOKEN_FLOWS, "computed_at", run.run_id)
        # Windows of the range that no longer have smart activity are deleted in the same commit.
        merged = lake.merge(
            TOKEN_FLOWS,
            table,
            run.meta,
            delete_predicate=between("t.window_start", since, inclusive=True),
        )
        top = target.read(
            "select * from main.smart_money_now "
            "order by net_flow_usd desc nulls last, buy_count desc, token_address"
        )
        legs = sum(r["buy_count"] + r["sell_count"] for r in top.to_pylist())
        run.rows_in, run.rows_out = legs, table.num_rows
        result = FlowsResult(
            run.run_id, since, legs, table.num_rows, top.to_pylist(), merged.version
        )
        if not legs:
            result.message = f"no smart-wallet swaps since {since.isoformat()}: no flows to show"
            log.warning("%s", result.message)
        return result


def _with_run_columns(data: pa.Table, spec: TableSpec, stamp: str, run_id: str) -> pa.Table:
    """The model's rows plus the run's timestamp and id; StageError if its columns drifted."""
    import pyarrow as pa

    expected = set(spec.schema.names) - {stamp, "run_id"}
    if set(data.column_names) != expected:
        missing = sorted(expected - set(data.column_names))
        extra = sorted(set(data.column_names) - expected)
        raise StageError(
            f"the dbt model for {spec.name} does not match lake/tables.py: "
            f"missing columns {missing}, columns not in the table {extra}"
        )
    now = datetime.now(UTC)
    data = data.append_column(stamp, pa.array([now] * data.num_rows, pa.timestamp("us", tz="UTC")))
    return data.append_column("run_id", pa.array([run_id] * data.num_rows, pa.string()))
