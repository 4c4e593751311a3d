"""An incremental `st silver pnl` on DuckDB (docs/pnl.md §7): what changed in bronze gets
the FIFO, the windows move by the ledger, the other holders of re-priced tokens are
re-valued, and only those rows are written (engines/duckdb_incremental.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from smarttrader_cli.engines.duckdb_incremental import LEDGER_ROW_GROUP
from smarttrader_cli.lake.sql import in_list
from smarttrader_cli.lake.tables import (
    WALLET_PNL,
    WALLET_PNL_LEDGER,
    WALLET_PNL_PRICES,
    WALLET_PNL_WINDOWS,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable

    from smarttrader_cli.engines.duckdb_incremental import Cursor
    from smarttrader_cli.engines.pnl_common import PnlParams, PnlResult, WindowState
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.silver.pnl")


@dataclass
class IncrementalOutput:
    """What an incremental run writes: the recomputed wallets' rows, the re-valued and
    moved rows, the new state and, when the windows' end moved, every other window row with
    its new bounds."""

    result: PnlResult
    repriced: pa.Table  # silver.wallet_pnl rows re-valued
    moved_windows: list[pa.Table]  # window rows moved by the ledger or re-valued
    prices: pa.Table
    ledger_replaced: pa.Table  # every ledger row of these wallets, replacing theirs
    ledger_added: pa.Table  # new legs of the other recomputed wallets
    replaced: tuple[str, ...]
    shifted: pa.Table | None  # the windows' end moved: every other window row, new bounds
    cursor: Cursor
    wallets: tuple[str, ...]  # recomputed: their rows are replaced exactly


def run_incremental(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    bronze: DeltaTable,
    params: PnlParams,
    windows: WindowState,
    meta: CommitMeta,
) -> PnlResult | None:
    """Compute and write an incremental run; None when nothing changed (ChangesUnavailable
    when bronze's log cannot say what did: the caller runs a full refresh)."""
    from smarttrader_cli.engines import duckdb_incremental as incremental
    from smarttrader_cli.engines import duckdb_pnl as engine

    assert params.as_of is not None
    cursor = incremental.cursor_of(bronze)
    after = lake.app_transaction_version(WALLET_PNL, cursor.app_id)
    assert after is not None
    incremental.register_changes(con, lake, bronze, after)
    incremental.store_rows(con)
    chosen = incremental.changed_wallets(con)
    moved = windows.end != params.as_of
    incremental.register_recomputed(con, tuple(sorted(chosen)))
    if moved:
        # Ledger legs after the old end outside the changed wallets entered the windows
        # (the old end was capped by the clock): no subtraction covers them.
        later = incremental.ledger_band(con, lake, params, windows.end) - chosen
        if later:
            chosen |= later
            incremental.register_recomputed(con, tuple(sorted(chosen)))
            incremental.ledger_band(con, lake, params, windows.end)
    else:
        incremental.no_band(con, params)
    params = replace(params, wallets=tuple(sorted(chosen)))
    result = engine.compute_pnl(
        con, params, prices=lambda c: incremental.incremental_prices(c, params)
    )
    held = incremental.repriced(con, params)
    affected = incremental.moved_windows(con, params)
    log.info(
        "silver pnl: %d wallets with changed trades recomputed, %d holders of re-priced "
        "tokens re-valued, %d wallets' windows moved or re-valued without a FIFO",
        len(chosen), held, len(affected),
    )  # fmt: skip
    if not chosen and not held and not affected and not moved:
        log.info("silver pnl: no wallet has new trades or new prices")
        return None
    replaced, _ = incremental.ledger_plan(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_ledger_replaced AS "
        "SELECT * FROM st_ledger_after WHERE replaced"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_ledger_grown AS "
        "SELECT * FROM st_ledger_after WHERE NOT replaced"
    )
    out = IncrementalOutput(
        result=result,
        repriced=engine.stamped(con, params, engine.OUTPUT, "st_repriced_pnl"),
        moved_windows=[
            engine.stamped(con, params, engine.WINDOW_OUTPUT, table)
            for table in ("st_moved_token_windows", "st_moved_portfolio")
        ],
        prices=incremental.state_rows(con, params),
        ledger_replaced=incremental.ledger_rows(con, params, "st_ledger_replaced"),
        ledger_added=incremental.ledger_rows(con, params, "st_ledger_grown"),
        replaced=replaced,
        # every other wallet's window rows: their numbers stand, their bounds move
        shifted=(
            engine.shifted_windows(con, replace(params, wallets=(*chosen, *affected)))
            if moved
            else None
        ),
        cursor=cursor,
        wallets=params.wallets or (),
    )
    con.close()
    meta.extra[incremental.STATE_KEY] = incremental.state_key(params)
    meta.extra["repriced_wallets"] = held
    write_incremental(lake, out, meta)
    result.mode, result.repriced_wallets = "incremental", held
    return result


def write_incremental(lake: Lake, out: IncrementalOutput, meta: CommitMeta) -> None:
    """The state (prices, ledger), the windows, then silver.wallet_pnl, each commit with the
    cursor: a run stopped in between leaves the state and silver.wallet_pnl at different
    cursors or written by different runs, and the next run is a full refresh
    (duckdb_incremental.state_problem)."""
    import pyarrow as pa

    meta.extra.update(out.result.summary())
    cursor = out.cursor.transaction()
    recomputed = in_list("t.wallet_address", out.wallets) if out.wallets else None
    lake.overwrite(WALLET_PNL_PRICES, out.prices, meta, app_transactions=cursor)
    if out.replaced:
        lake.overwrite(
            WALLET_PNL_LEDGER, out.ledger_replaced, meta,
            predicate=in_list("wallet_address", out.replaced), app_transactions=cursor,
            row_group_rows=LEDGER_ROW_GROUP,
        )  # fmt: skip
    lake.append(
        WALLET_PNL_LEDGER, out.ledger_added, meta, app_transactions=cursor,
        row_group_rows=LEDGER_ROW_GROUP,
    )  # fmt: skip
    assert out.result.windows is not None and out.result.rows is not None
    windows = [
        lake.conform(WALLET_PNL_WINDOWS, t) for t in (out.result.windows, *out.moved_windows)
    ]
    if out.shifted is not None:
        shifted = lake.conform(WALLET_PNL_WINDOWS, out.shifted)
        lake.overwrite(WALLET_PNL_WINDOWS, pa.concat_tables([shifted, *windows]), meta)
    else:
        lake.merge(WALLET_PNL_WINDOWS, pa.concat_tables(windows), meta, delete_predicate=recomputed)
    rows = pa.concat_tables([lake.conform(WALLET_PNL, t) for t in (out.result.rows, out.repriced)])
    if not rows.num_rows and recomputed is None:  # still one commit: the cursor and the run
        lake.append(WALLET_PNL, rows, meta, app_transactions=cursor)
        return
    lake.merge(WALLET_PNL, rows, meta, delete_predicate=recomputed, app_transactions=cursor)
