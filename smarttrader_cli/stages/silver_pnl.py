"""`st silver pnl`: bronze.wallet_trades → silver.wallet_pnl with the configured engine.

Definitions: docs/pnl.md. Incremental by default (only wallets that need it, merged and
replaced exactly); `full_refresh` recomputes everything and overwrites; `wallets` recomputes
just those.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.engines.pnl_common import PnlParams, PnlResult, load_sql
from smarttrader_cli.errors import UsageError
from smarttrader_cli.lake.sql import in_list, quote
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_TRADES
from smarttrader_cli.ops.resources import budget_for

if TYPE_CHECKING:
    import duckdb

    from smarttrader_cli.context import AppContext
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.silver.pnl")
STAGE = "silver.pnl"


@dataclass
class PnlRunSummary:
    """What one `st silver pnl` run did."""

    run_id: str
    engine: str
    mode: str  # full, incremental or wallets
    wallets: int = 0
    rows: int = 0
    legs: int = 0
    unpriced_legs: int = 0
    rejected_trades: int = 0
    duplicate_trades: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return self.legs

    @property
    def rows_out(self) -> int:
        return self.rows

    def as_row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "engine": self.engine,
            "mode": self.mode,
            "wallets": self.wallets,
            "rows": self.rows,
            "legs": self.legs,
            "unpriced_legs": self.unpriced_legs,
            "rejected_trades": self.rejected_trades,
            "duplicate_trades": self.duplicate_trades,
            "seconds": round(self.seconds, 2),
        }


def run_wallet_pnl(
    app: AppContext,
    *,
    engine: str | None = None,
    full_refresh: bool = False,
    wallets: tuple[str, ...] | list[str] = (),
) -> PnlRunSummary:
    """Compute silver.wallet_pnl under the stage lock and ledger; returns what was done."""
    config = app.config
    engine = (engine or config.engine).lower()
    if full_refresh and wallets:
        raise UsageError("--full-refresh and --wallet exclude each other")
    mode = "full" if full_refresh else "wallets" if wallets else "incremental"
    args = {"engine": engine, "mode": mode, "wallets": list(wallets)}
    with stage_run_for(app, args) as run:
        started = time.perf_counter()
        if app.lake.exists(WALLET_TRADES):  # a lake from before fill_id gains it first
            app.lake.ensure_table(WALLET_TRADES)
        params = PnlParams(
            quote_assets=tuple(config.pnl.quote_assets),
            min_leg_usd=float(config.pnl.min_leg_usd),
            calculated_at=datetime.now(UTC),  # before bronze is read: later fetches rerun
            run_id=run.run_id,
            wallets=tuple(dict.fromkeys(wallets)) if wallets else None,
        )
        if engine == "spark":
            from smarttrader_cli.engines.spark_pnl import run_spark_pnl

            result = run_spark_pnl(app, params, mode, run.meta)
        else:
            result = _run_duckdb(app, params, mode, run.meta)
        summary = PnlRunSummary(run.run_id, engine, mode)
        if result is not None:
            summary.wallets = result.wallets
            summary.rows = result.token_rows + result.wallets
            summary.legs = result.legs
            summary.unpriced_legs = result.unpriced_legs
            summary.rejected_trades = result.rejected_trades
            summary.duplicate_trades = result.duplicate_trades
        summary.seconds = time.perf_counter() - started
        run.rows_in, run.rows_out = summary.legs, summary.rows
        log.info(
            "silver pnl (%s, %s): %d wallets, %d rows, %d legs, %d unpriced legs, "
            "%d rejected trades",
            engine, mode, summary.wallets, summary.rows, summary.legs,
            summary.unpriced_legs, summary.rejected_trades,
        )  # fmt: skip
        return summary


def stage_run_for(app: AppContext, args: dict[str, Any]) -> Any:
    """The run context of this stage (lock, ledger row, commit metadata)."""
    from smarttrader_cli.ops.runs import stage_run

    return stage_run(app, STAGE, args)


def open_duckdb(app: AppContext) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the lake sized by the memory guard, spilling under state_dir."""
    from smarttrader_cli.lake.query import connect

    budget = budget_for(app.config.memory, what="silver pnl")
    con = connect(app.lake, memory_limit_mb=budget.memory_limit_mb, threads=budget.threads)
    spill = Path(app.config.runtime.state_dir) / "duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {quote(str(spill.resolve()))}")
    con.execute("SET preserve_insertion_order = false")
    return con


def stale_wallets(con: duckdb.DuckDBPyConnection) -> tuple[str, ...] | None:
    """Wallets an incremental run must recompute; None when silver is empty (all of them)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = 'silver' "
        "AND view_name = 'wallet_pnl'"
    ).fetchone()
    if not found or not found[0]:
        return None
    rows = con.execute(load_sql("duckdb", "00_stale_wallets.sql")).fetchall()
    return tuple(sorted(r[0] for r in rows))


def _run_duckdb(
    app: AppContext, params: PnlParams, mode: str, meta: CommitMeta
) -> PnlResult | None:
    from smarttrader_cli.engines.duckdb_pnl import compute_pnl, ensure_inputs

    con = open_duckdb(app)
    try:
        ensure_inputs(con)
        if mode == "incremental":
            chosen = stale_wallets(con)
            if chosen is not None and not chosen:
                log.info("silver pnl: no wallet has new trades or new prices")
                return None
            if chosen is not None:
                params = _with_wallets(params, chosen)
            else:
                mode = "full"
        result = compute_pnl(con, params)
    finally:
        con.close()
    write_rows(app.lake, result, params, mode, meta)
    return result


def _with_wallets(params: PnlParams, wallets: tuple[str, ...]) -> PnlParams:
    return PnlParams(
        params.quote_assets, params.min_leg_usd, params.calculated_at, params.run_id, wallets
    )


def write_rows(
    lake: Lake, result: PnlResult, params: PnlParams, mode: str, meta: CommitMeta
) -> None:
    """One commit: overwrite on a full run, else merge that replaces the wallets' rows exactly."""
    meta.extra.update(result.summary())
    if params.wallets is None or mode == "full":
        lake.overwrite(WALLET_PNL, result.rows, meta)
        return
    lake.merge(
        WALLET_PNL, result.rows, meta, delete_predicate=in_list("t.wallet_address", params.wallets)
    )
