"""`st silver pnl`: bronze.wallet_trades → silver.wallet_pnl with the configured engine.

Definitions: docs/pnl.md. Incremental by default (only wallets that need it, merged and
replaced exactly); `full_refresh` recomputes everything and overwrites; `wallets` recomputes
just those.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.engines.pnl_common import (
    PnlParams,
    PnlResult,
    RunPlan,
    plan_run,
    resolve_as_of,
)
from smarttrader_cli.errors import UsageError
from smarttrader_cli.lake.changes import ChangesUnavailable
from smarttrader_cli.lake.sql import in_list, quote
from smarttrader_cli.lake.tables import (
    WALLET_PNL,
    WALLET_PNL_LEDGER,
    WALLET_PNL_PRICES,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)
from smarttrader_cli.ops.resources import budget_for
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.silver.pnl")
STAGE = "silver.pnl"


def _args(
    ctx: StageContext,
    *,
    engine: str | None = None,
    full_refresh: bool = False,
    wallets: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    engine = (engine or ctx.config.engine).lower()
    if full_refresh and wallets:
        raise UsageError("--full-refresh and --wallet exclude each other")
    mode = "full" if full_refresh else "wallets" if wallets else "incremental"
    return {"engine": engine, "mode": mode, "wallets": list(wallets)}


@stage(STAGE, writes=WALLET_PNL.name, command="st silver pnl", prepare=_args)
def run(
    ctx: StageContext,
    current: StageRun,
    *,
    engine: str | None = None,
    full_refresh: bool = False,
    wallets: tuple[str, ...] | list[str] = (),
) -> StageResult:
    """Compute silver.wallet_pnl with the engine the run records (default: `engine`)."""
    config = ctx.config
    engine, mode = current.args["engine"], current.args["mode"]
    started = time.perf_counter()
    if ctx.lake.exists(WALLET_TRADES):  # a lake from before fill_id gains it first
        ctx.lake.ensure_table(WALLET_TRADES)
    params = PnlParams(
        quote_assets=tuple(config.pnl.quote_assets),
        min_leg_usd=float(config.pnl.min_leg_usd),
        calculated_at=datetime.now(UTC),  # before bronze is read: later fetches rerun
        run_id=current.run_id,
        wallets=tuple(dict.fromkeys(wallets)) if wallets else None,
        windows=tuple(config.pnl.windows),
    )
    if engine == "spark":
        from smarttrader_cli.engines.spark_pnl import run_spark_pnl

        computed = run_spark_pnl(ctx, params, mode, current.meta)
    else:
        computed = _run_duckdb(ctx, params, mode, current.meta)
    counts: dict[str, Any] = {"wallets": 0, "rows": 0, "legs": 0, "unpriced_legs": 0}
    counts.update(rejected_trades=0, duplicate_trades=0, repriced_wallets=0)
    if computed is not None:
        mode = computed.mode or mode  # an incremental run may have had to be a full one
        counts = {
            "wallets": computed.wallets,
            "rows": computed.token_rows + computed.wallets,
            "legs": computed.legs,
            "unpriced_legs": computed.unpriced_legs,
            "rejected_trades": computed.rejected_trades,
            "duplicate_trades": computed.duplicate_trades,
            "repriced_wallets": computed.repriced_wallets,
        }
    current.rows_in, current.rows_out = counts["legs"], counts["rows"]
    log.info(
        "silver pnl (%s, %s): %d wallets, %d rows, %d legs, %d unpriced legs, "
        "%d rejected trades",
        engine, mode, counts["wallets"], counts["rows"], counts["legs"],
        counts["unpriced_legs"], counts["rejected_trades"],
    )  # fmt: skip
    seconds = round(time.perf_counter() - started, 2)
    return run_result(current, engine=engine, mode=mode, **counts, seconds=seconds)


def open_duckdb(ctx: StageContext) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the lake sized by the memory guard, spilling under state_dir."""
    from smarttrader_cli.lake.query import connect

    budget = budget_for(ctx.config.memory, what="silver pnl")
    con = connect(ctx.lake, memory_limit_mb=budget.memory_limit_mb, threads=budget.threads)
    spill = Path(ctx.config.runtime.state_dir) / "duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {quote(str(spill.resolve()))}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _run_duckdb(
    app: StageContext, params: PnlParams, mode: str, meta: CommitMeta
) -> PnlResult | None:
    from smarttrader_cli.engines import duckdb_incremental as incremental
    from smarttrader_cli.engines import duckdb_pnl as engine

    lake = app.lake
    con = open_duckdb(app)
    shifted = None
    cursor: Sequence[tuple[str, int]] = ()
    try:
        engine.ensure_inputs(con)
        bronze = lake.table(WALLET_TRADES)  # read before the rows: later commits rerun
        params = resolve_as_of(params, engine.latest_trade_time(con))
        windows = engine.window_state(con)
        if mode == "incremental":
            why = incremental.state_problem(lake, bronze, params, windows)
            if why is None and windows is not None:
                from smarttrader_cli.stages.silver_pnl_incremental import run_incremental

                try:
                    return run_incremental(app.lake, con, bronze, params, windows, meta)
                except ChangesUnavailable as exc:
                    why = str(exc)
            log.info("silver pnl: a full refresh: %s", why)
            mode = "full"
        plan = plan_run(
            params, mode, windows, _incremental_only,
            lambda bands: engine.moved_wallets(con, bands),
        )  # fmt: skip
        if plan is None:
            return None
        full = plan.mode == "full"
        state = None
        if full:
            meta.extra[incremental.STATE_KEY] = incremental.state_key(params)
            cursor = incremental.cursor_of(bronze).transaction()
            full_params = plan.params

            def state(c: duckdb.DuckDBPyConnection) -> None:
                write_full_state(lake, c, full_params, meta, cursor)

        result = (
            engine.compute_pnl(con, plan.params, export_windows=not full, after_fifo=state)
            if plan.params.wallets != ()
            else None
        )
        if plan.windows == "shift":
            shifted = engine.shifted_windows(con, plan.params)
        if full and result is not None:
            write_full_windows(lake, con, plan.params, result, meta)
    finally:
        con.close()
    write_rows(lake, result, plan, meta, shifted, cursor)
    if result is not None:
        result.mode = plan.mode
    return result


def _incremental_only() -> tuple[str, ...] | None:
    raise AssertionError("DuckDB's incremental runs are planned by duckdb_incremental")


def write_full_state(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    params: PnlParams,
    meta: CommitMeta,
    cursor: Sequence[tuple[str, int]],
) -> None:
    """A full refresh's incremental state, each commit with the cursor: the prices, then the
    ledger (one row per priced leg, the run's largest output) streamed from `con` as DuckDB
    produces it, never whole in memory. Written right after the FIFO, before the rows are
    built: its DuckDB tables are dropped then, so the rows and windows are built in the
    memory they held (at 10M trades the FIFO's tables alone pass DuckDB's limit)."""
    from smarttrader_cli.engines import duckdb_incremental as incremental

    prices = incremental.state_rows(con, params)
    lake.overwrite(WALLET_PNL_PRICES, prices, meta, app_transactions=cursor)
    ledger, legs = incremental.ledger_stream(con, params)
    lake.overwrite(
        WALLET_PNL_LEDGER, ledger, meta, app_transactions=cursor,
        row_group_rows=incremental.LEDGER_ROW_GROUP, rows_count=legs, replace_schema=True,
    )  # fmt: skip
    con.execute("DROP TABLE st_ledger_sells")
    con.execute("DROP TABLE st_ledger_buys")


def write_full_windows(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    params: PnlParams,
    result: PnlResult,
    meta: CommitMeta,
) -> None:
    """A full refresh's windows (windows x rows), streamed from `con` like the ledger: views
    over the FIFO's sums and st_token_rows, computed as they are read, once silver.wallet_pnl's
    rows (exported already) are dropped; silver.wallet_pnl follows after the connection is
    closed (write_rows)."""
    from smarttrader_cli.engines import duckdb_pnl as engine

    con.execute("DROP TABLE IF EXISTS st_pnl_rows")
    meta.extra.update(result.summary())
    windows, rows = engine.window_stream(con, params)
    lake.overwrite(WALLET_PNL_WINDOWS, windows, meta, rows_count=rows)


def write_rows(
    lake: Lake,
    result: PnlResult | None,
    plan: RunPlan,
    meta: CommitMeta,
    shifted: pa.Table | None = None,
    cursor: Sequence[tuple[str, int]] = (),
) -> None:
    """The windows, then silver.wallet_pnl: each one commit, overwritten on a full run, else
    merged replacing the recomputed wallets' rows exactly (windows: see RunPlan). A full run
    has written its state and windows already (write_full_state); its cursor goes with
    silver.wallet_pnl too.

    Windows first: should the second commit fail, the wallets' calculated_at in
    silver.wallet_pnl is still old and the next incremental run recomputes them.
    """
    params = plan.params
    if result is not None:
        meta.extra.update(result.summary())
    windows = result.windows if result is not None else None
    wallet_filter = in_list("t.wallet_address", params.wallets or ())
    if plan.windows == "shift" and shifted is not None:
        import pyarrow as pa

        parts = [shifted] + ([windows.cast(shifted.schema)] if windows is not None else [])
        lake.overwrite(WALLET_PNL_WINDOWS, pa.concat_tables(parts), meta)
    elif windows is not None and plan.windows == "overwrite":
        lake.overwrite(WALLET_PNL_WINDOWS, windows, meta)
    elif windows is not None and plan.windows == "merge":
        lake.merge(WALLET_PNL_WINDOWS, windows, meta, delete_predicate=wallet_filter)
    if result is None or result.rows is None:
        return
    if params.wallets is None or plan.mode == "full":
        lake.overwrite(WALLET_PNL, result.rows, meta, app_transactions=cursor)
        return
    lake.merge(WALLET_PNL, result.rows, meta, delete_predicate=wallet_filter)
