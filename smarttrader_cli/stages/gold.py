"""Gold stages: the smart-wallet ranking and the smart-money token flows, built with dbt."""

from __future__ import annotations

import logging
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
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.engines.dbt_runner import DbtTarget
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

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


def gold_vars(
    config: Config, lake_root: str, now: datetime | None = None, since: datetime | None = None
) -> dict[str, Any]:
    """Every dbt var, from the config: thresholds, tiers, score weights, flow windows.

    The flow vars come with `now` (the range starts at flows_since(now)) or `since`.
    """
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
    if now is not None and since is None:
        since = flows_since(config, now)
    if since is not None:  # time-dependent vars only for flows: stable vars keep partial parsing
        variables.update(
            flows_window_minutes=flows.window_minutes,
            flows_since=since.isoformat(),
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


def _target(ctx: StageContext, name: str, what: str) -> DbtTarget:
    from smarttrader_cli.engines.dbt_runner import make_target
    from smarttrader_cli.ops.resources import budget_for

    budget = budget_for(ctx.config.memory, what=what)
    return make_target(ctx.config.runtime.state_dir, name, budget.memory_limit_mb, budget.threads)


@stage(RANK_STAGE, writes=SMART_WALLETS.name, command="st gold rank")
def rank(ctx: StageContext, current: StageRun) -> StageResult:
    """Build the smart_wallets model and overwrite gold.smart_wallets with it (one commit).

    The ranking (best first) is the result's records.
    """
    from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var

    config, lake = ctx.config, ctx.lake
    require(lake, WALLET_PNL, "run `st silver pnl` first")
    target = _target(ctx, "gold_rank", RANK_STAGE)
    dbt_build(
        target,
        lake,
        ["wallet_portfolios", "smart_wallets"],
        gold_vars(config, lake_root_var(lake)),
        echo=ctx.echo_tools,
    )
    candidates = int(
        target.read("select count(*) as n from main.wallet_portfolios").column("n")[0].as_py()
    )
    ranked = target.read("select * from main.smart_wallets order by rank")
    table = _with_run_columns(ranked, SMART_WALLETS, "ranked_at", current.run_id)
    # The ranking is a snapshot of silver: an empty ranking replaces the old one too.
    version = lake.overwrite(SMART_WALLETS, table, current.meta)
    current.rows_in, current.rows_out = candidates, table.num_rows
    message = ""
    if not table.num_rows:
        message = _empty_message(config, candidates)
        log.warning("%s", message)
    else:
        log.info(
            "ranked %d of %d wallets into gold.smart_wallets (version %d)",
            table.num_rows,
            candidates,
            version,
        )
    return run_result(
        current,
        table.to_pylist(),
        candidates=candidates,
        ranked=table.num_rows,
        version=version,
        message=message,
    )


def _empty_message(config: Config, candidates: int) -> str:
    if candidates == 0:
        return "silver.wallet_pnl has no portfolio (ALL_TOKENS) rows yet: nothing to rank"
    gold = config.gold
    return (
        f"no wallet passes the base filters ({candidates} checked; gold.min_total_pnl="
        f"{gold.min_total_pnl}, min_roi={gold.min_roi}, min_win_rate={gold.min_win_rate}, "
        f"min_trade_count={gold.min_trade_count}); gold.smart_wallets is now empty"
    )


def _flows_args(ctx: StageContext, now: datetime | None = None) -> dict[str, Any]:
    return {"since": flows_since(ctx.config, now).isoformat()}


@stage(FLOWS_STAGE, writes=TOKEN_FLOWS.name, command="st gold flows", prepare=_flows_args)
def flows(ctx: StageContext, current: StageRun, now: datetime | None = None) -> StageResult:
    """Recompute gold.token_flows for the lookback range and merge it (one commit).

    The per-token summary of the range (biggest buying first) is the result's records.
    """
    from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var

    config, lake = ctx.config, ctx.lake
    since = datetime.fromisoformat(current.args["since"])
    require(lake, WEBHOOK_SWAPS, "run `st silver webhooks` first")
    target = _target(ctx, "gold_flows", FLOWS_STAGE)
    dbt_build(
        target,
        lake,
        ["token_flows", "smart_money_now"],
        gold_vars(config, lake_root_var(lake), since=since),
        echo=ctx.echo_tools,
    )
    windows = target.read("select * from main.token_flows order by window_start, token_address")
    table = _with_run_columns(windows, TOKEN_FLOWS, "computed_at", current.run_id)
    # Windows of the range that no longer have smart activity are deleted in the same commit.
    merged = lake.merge(
        TOKEN_FLOWS,
        table,
        current.meta,
        delete_predicate=between("t.window_start", since, inclusive=True),
    )
    top = target.read(
        "select * from main.smart_money_now "
        "order by net_flow_usd desc nulls last, buy_count desc, token_address"
    ).to_pylist()
    legs = sum(r["buy_count"] + r["sell_count"] for r in top)
    current.rows_in, current.rows_out = legs, table.num_rows
    message = ""
    if not legs:
        message = f"no smart-wallet swaps since {since.isoformat()}: no flows to show"
        log.warning("%s", message)
    return run_result(
        current,
        top,
        since=since,
        legs=legs,
        windows=table.num_rows,
        version=merged.version,
        message=message,
    )


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
