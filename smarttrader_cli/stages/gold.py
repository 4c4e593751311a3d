"""Gold stages: the smart-wallet ranking and the smart-money token flows, built with dbt."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StageError, UsageError
from smarttrader_cli.lake.readers import require
from smarttrader_cli.lake.sql import between
from smarttrader_cli.lake.tables import (
    SMART_WALLETS,
    TABLES,
    TOKEN_FLOWS,
    WALLET_FLAGS,
    WALLET_PNL,
    WALLET_PNL_WINDOWS,
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


# The models of `st gold rank`, in build order (dbt orders them anyway); source:stage runs
# the tests of the tables the stage writes into the build database (stage_inputs).
RANK_MODELS = (
    "source:stage",
    "flag_legs",
    "wallet_behaviour",
    "wallet_portfolios",
    "wallet_windows",
    "wallet_flags",
    "smart_wallets",
)


TIER_METRICS = (
    "min_total_pnl",
    "min_roi",
    "min_win_rate",
    "min_trade_count",
    "positive_windows",
    "min_closed_positions",
    "min_basis_coverage",
)


def gold_vars(
    config: Config,
    lake_root: str,
    now: datetime | None = None,
    since: datetime | None = None,
    lake_tables: Sequence[str] = (),
    window: str | None = None,
) -> dict[str, Any]:
    """Every dbt var, from the config: thresholds, tiers, score weights, flags, flow windows.

    The flow vars come with `now` (the range starts at flows_since(now)) or `since`;
    `lake_tables` names the tables the lake holds (a model reads an optional input only
    then); `window` is the ranking window (default gold.window).
    """
    gold, score, flows = config.gold, config.gold.score, config.flows
    variables: dict[str, Any] = {
        "lake_root": lake_root,
        "lake_tables": sorted(lake_tables),
        "quote_assets": list(config.pnl.quote_assets),
        "pnl_windows": list(config.pnl.windows),
        "rank_window": window or gold.window,
        "exclude_flagged": gold.exclude_flagged,
        "exclude_flags": list(gold.exclude_flags),
        **dataclasses.asdict(gold.classify),
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
        )
    for name in ("elite", "strong"):
        tier = getattr(gold.tiers, name)
        for metric in TIER_METRICS:
            variables[f"tier_{name}_{metric}"] = getattr(tier, metric)
    return variables


def flows_since(config: Config, now: datetime | None = None) -> datetime:
    """Start of the recomputed range: now − lookback, floored to a window boundary."""
    now = now or datetime.now(UTC)
    window = config.flows.window_minutes * 60
    start = int((now - timedelta(hours=config.flows.lookback_hours)).timestamp())
    return datetime.fromtimestamp(start - start % window, UTC)


def target_for(ctx: StageContext, name: str, what: str) -> DbtTarget:
    from smarttrader_cli.engines.dbt_runner import make_target
    from smarttrader_cli.ops.resources import budget_for

    budget = budget_for(ctx.config.memory, what=what)
    return make_target(ctx.config.runtime.state_dir, name, budget.memory_limit_mb, budget.threads)


def _rank_args(ctx: StageContext, window: str | None = None) -> dict[str, Any]:
    window = window or ctx.config.gold.window
    if window not in ctx.config.pnl.windows:
        raise UsageError(
            f"window {window!r} is not one of pnl.windows ({', '.join(ctx.config.pnl.windows)})"
        )
    return {"window": window}


@stage(RANK_STAGE, writes=SMART_WALLETS.name, command="st gold rank", prepare=_rank_args)
def rank(ctx: StageContext, current: StageRun, window: str | None = None) -> StageResult:
    """Flag the wallets seen into gold.wallet_flags, then rank the rest into gold.smart_wallets.

    The base filters, tiers and score read the `window` of pnl.windows (default
    gold.window). One dbt build for both tables (models and their tests), then one
    overwrite commit per table. The ranking (best first) is the result's records.
    """
    from smarttrader_cli.engines.dbt_runner import dbt_build, lake_root_var
    from smarttrader_cli.stages.wallet_accounts import stage_inputs

    config, lake = ctx.config, ctx.lake
    window = current.args["window"]
    require(lake, WALLET_PNL, "run `st silver pnl` first")
    if window != "all":
        require(lake, WALLET_PNL_WINDOWS, "run `st silver pnl` first (it writes the windows)")
    target = target_for(ctx, "gold_rank", RANK_STAGE)
    _write_inputs(target, stage_inputs(lake))
    present = [spec.name for spec in TABLES.values() if lake.exists(spec)]
    dbt_build(
        target,
        lake,
        list(RANK_MODELS),
        gold_vars(config, lake_root_var(lake), lake_tables=present, window=window),
        echo=ctx.echo_tools,
    )
    candidates = int(
        target.read("select count(*) as n from main.wallet_portfolios").column("n")[0].as_py()
    )
    flags = target.read("select * from main.wallet_flags order by wallet_address")
    flags = with_run_columns(flags, WALLET_FLAGS, "classified_at", current.run_id)
    ranked = target.read("select * from main.smart_wallets order by rank")
    table = with_run_columns(ranked, SMART_WALLETS, "ranked_at", current.run_id)
    lake.overwrite(WALLET_FLAGS, flags, current.meta)
    # The ranking is a snapshot of silver: an empty ranking replaces the old one too.
    version = lake.overwrite(SMART_WALLETS, table, current.meta)
    current.rows_in, current.rows_out = candidates, table.num_rows
    flag_counts = _flag_counts(flags)
    excluded = sum(1 for e in flags.column("excluded").to_pylist() if e)
    message = ""
    if not table.num_rows:
        message = _empty_message(config, candidates, excluded)
        log.warning("%s", message)
    else:
        log.info(
            "ranked %d of %d wallets into gold.smart_wallets (version %d); "
            "%d of %d wallets seen flagged (%s), %d excluded",
            table.num_rows,
            candidates,
            version,
            sum(1 for f in flags.column("is_flagged").to_pylist() if f),
            flags.num_rows,
            ", ".join(f"{name} {n}" for name, n in flag_counts.items()) or "none",
            excluded,
        )
    return run_result(
        current,
        table.to_pylist(),
        candidates=candidates,
        ranked=table.num_rows,
        version=version,
        message=message,
        window=window,
        windows=lake.exists(WALLET_PNL_WINDOWS),
        wallets_seen=flags.num_rows,
        flagged=flag_counts,
        excluded=excluded,
    )


def _write_inputs(target: DbtTarget, tables: dict[str, pa.Table]) -> None:
    """The stage's Python-computed inputs as tables of the build database (main schema)."""
    con = target.connect()
    try:
        for name, data in tables.items():
            con.register("st_input", data)
            con.execute(f"CREATE OR REPLACE TABLE main.{name} AS SELECT * FROM st_input")
            con.unregister("st_input")
    finally:
        con.close()


def _flag_counts(flags: pa.Table) -> dict[str, int]:
    """Wallets per flag, in the flags' fixed order, flags nobody has left out."""
    from smarttrader_cli.config.schema import WALLET_FLAGS as NAMES

    counts = dict.fromkeys(NAMES, 0)
    for value in flags.column("flags").to_pylist():
        for name in filter(None, (value or "").split(",")):
            counts[name] = counts.get(name, 0) + 1
    return {name: n for name, n in counts.items() if n}


def _empty_message(config: Config, candidates: int, excluded: int) -> str:
    if candidates == 0:
        return "silver.wallet_pnl has no portfolio (ALL_TOKENS) rows yet: nothing to rank"
    gold = config.gold
    flagged = (
        f"; {excluded} wallets seen are excluded by their flags (gold.exclude_flags, "
        "see st gold explain WALLET)"
        if excluded
        else ""
    )
    return (
        f"no wallet passes the base filters ({candidates} checked; gold.min_total_pnl="
        f"{gold.min_total_pnl}, min_roi={gold.min_roi}, min_win_rate={gold.min_win_rate}, "
        f"min_trade_count={gold.min_trade_count}){flagged}; gold.smart_wallets is now empty"
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
    target = target_for(ctx, "gold_flows", FLOWS_STAGE)
    dbt_build(
        target,
        lake,
        ["token_flows", "smart_money_now"],
        gold_vars(config, lake_root_var(lake), since=since),
        echo=ctx.echo_tools,
    )
    windows = target.read("select * from main.token_flows order by window_start, token_address")
    table = with_run_columns(windows, TOKEN_FLOWS, "computed_at", current.run_id)
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


def with_run_columns(data: pa.Table, spec: TableSpec, stamp: str, run_id: str) -> pa.Table:
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
