"""The DuckDB engine's incremental run (docs/pnl.md §7): the FIFO only for the wallets whose
trades changed (or crossed a window edge), open positions of the others re-valued when
their token's price moved, without a FIFO.

What changed in bronze.wallet_trades comes from its commit log after the version the last
run read (a cursor, an application transaction committed with silver.wallet_pnl and with
the state, silver.wallet_pnl_prices). The state and silver.wallet_pnl must have been
written by the same run through the same bronze version; anything else (another engine,
a `--wallet` run, a run stopped between its writes, other PnL options, an unreadable log)
makes the run a full refresh, and the log line says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smarttrader_cli.engines.duckdb_pnl import DEDUPE
from smarttrader_cli.engines.pnl_common import WindowState, load_sql, quote_filters, window_sql
from smarttrader_cli.lake.changes import (
    added_since,
    cursor_app_id,
    removed_since,
    table_id,
)
from smarttrader_cli.lake.tables import (
    WALLET_PNL,
    WALLET_PNL_PRICES,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable

    from smarttrader_cli.engines.pnl_common import PnlParams
    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.silver.pnl")

DIALECT = "duckdb"
READER = "silver.pnl"
STATE_KEY = "pnl_state"
RECOMPUTED = "st_recomputed_wallets"
# Commits that change no rows: a table's last commit of data is found behind them.
_MAINTENANCE = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "CHECKPOINT"}


@dataclass(frozen=True)
class Cursor:
    """How far a run reads bronze.wallet_trades: app id and the version read through."""

    app_id: str
    version: int

    def transaction(self) -> list[tuple[str, int]]:
        return [(self.app_id, self.version)]


def cursor_of(bronze: DeltaTable) -> Cursor:
    """The cursor of a run reading this bronze.wallet_trades snapshot."""
    return Cursor(cursor_app_id(READER, WALLET_TRADES, table_id(bronze)), bronze.version())


def state_key(params: PnlParams) -> str:
    """The options the stored rows depend on beyond the trades: a change rebuilds them."""
    return f"quotes={','.join(sorted(params.quote_assets))};min_leg_usd={params.min_leg_usd!r}"


def last_data_commit(lake: Lake, spec: Any) -> dict[str, Any] | None:
    """The newest commit of `spec` that wrote rows (maintenance commits skipped)."""
    for entry in lake.history(spec, 50):
        if str(entry.get("operation", "")).upper() not in _MAINTENANCE:
            return entry
    return None


def state_problem(
    lake: Lake, bronze: DeltaTable, params: PnlParams, windows: WindowState | None
) -> str | None:
    """Why this run cannot be incremental (then it is a full refresh), or None."""
    if windows is None:
        return f"{WALLET_PNL_WINDOWS.name} is not written yet"
    if windows.names != frozenset(params.windows):
        return f"pnl.windows differ from the windows in {WALLET_PNL_WINDOWS.name}"
    if not lake.exists(WALLET_PNL):
        return f"{WALLET_PNL.name} is not written yet"
    if not lake.exists(WALLET_PNL_PRICES):
        return f"no incremental state yet ({WALLET_PNL_PRICES.name})"
    app_id = cursor_of(bronze).app_id
    state_at = lake.app_transaction_version(WALLET_PNL_PRICES, app_id)
    rows_at = lake.app_transaction_version(WALLET_PNL, app_id)
    if state_at is None or rows_at is None:
        return (
            f"no cursor into this {WALLET_TRADES.name} (table id {table_id(bronze)}) in the "
            "state and silver.wallet_pnl: written before it, or bronze was recreated"
        )
    if state_at != rows_at:
        return (
            f"the state was built through {WALLET_TRADES.name} version {state_at}, "
            f"{WALLET_PNL.name} through {rows_at} (a run stopped between its writes)"
        )
    state, rows = last_data_commit(lake, WALLET_PNL_PRICES), last_data_commit(lake, WALLET_PNL)
    if state is None or rows is None or state.get("run_id") != rows.get("run_id"):
        writer = (rows or {}).get("run_id")
        return (
            f"{WALLET_PNL.name} was last written by run {writer} (another engine or a "
            "--wallet run), not by the run that wrote the state"
        )
    if state.get(STATE_KEY) != state_key(params):
        return "pnl.quote_assets or pnl.min_leg_usd changed since the state was written"
    return None


def changed_wallets(lake: Lake, bronze: DeltaTable, after: int) -> set[str]:
    """Wallets with a trade added, changed or removed in bronze after version `after`
    (ChangesUnavailable when the log or a removed file cannot be read)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = pa.schema(bronze.schema().to_arrow())
    wallets: set[str] = set()
    for changes in (
        added_since(lake, WALLET_TRADES, bronze, after),
        removed_since(lake, WALLET_TRADES, bronze, after),
    ):
        if not changes.paths:
            continue
        column = changes.dataset(lake, WALLET_TRADES, schema).to_table(columns=["wallet_address"])
        wallets |= set(pc.unique(column.column(0)).to_pylist())
    return wallets


def register_recomputed(con: duckdb.DuckDBPyConnection, wallets: tuple[str, ...]) -> None:
    import pyarrow as pa

    con.register(RECOMPUTED, pa.table({"wallet": pa.array(wallets, pa.string())}))


def traded_prices_sql(legs: str) -> str:
    """09_traded_prices.sql over `legs`: each token's last priced leg."""
    return load_sql(DIALECT, "09_traded_prices.sql", legs=legs)


def incremental_prices(con: duckdb.DuckDBPyConnection, params: PnlParams) -> None:
    """st_prices of an incremental run (st_legs: the recomputed wallets' legs), and
    st_moved_prices: the tokens whose price differs from the stored one."""
    con.execute(
        load_sql(
            DIALECT, "10_incremental_prices.sql", fresh=traded_prices_sql("st_legs"),
            recomputed=RECOMPUTED,
        )
    )  # fmt: skip
    lost = con.execute("SELECT count(*) FROM st_lost_prices").fetchone()
    if lost and lost[0]:
        # Their last priced leg was removed or changed: priced again from every wallet's
        # trades of those tokens (one read of bronze, only when it happens).
        log.info("silver pnl: %d tokens lost their last priced trade; re-reading them", lost[0])
        con.execute(
            load_sql(
                DIALECT, "01_trades.sql", kind="TABLE", trades="st_lost_trades",
                source="(SELECT * FROM st_bronze_swaps WHERE from_token_address IN "
                "(SELECT token FROM st_lost_prices) OR to_token_address IN "
                "(SELECT token FROM st_lost_prices))",
                **DEDUPE,
            )
        )  # fmt: skip
        con.execute(
            load_sql(
                DIALECT, "02_legs.sql", kind="VIEW", trades="st_lost_trades",
                legs="st_lost_legs", **quote_filters(params),
            )
        )  # fmt: skip
        con.execute(
            "INSERT INTO st_traded_prices SELECT * FROM ("
            + traded_prices_sql("st_lost_legs")
            + ") WHERE token IN (SELECT token FROM st_lost_prices)"
        )
    con.execute(load_sql(DIALECT, "03_prices.sql", traded="SELECT * FROM st_traded_prices"))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_moved_prices AS "
        "SELECT n.token, n.price FROM st_prices n "
        "LEFT JOIN silver.wallet_pnl_prices s ON s.token_address = n.token "
        "WHERE n.price IS DISTINCT FROM s.price "
        "UNION ALL SELECT s.token_address, NULL FROM silver.wallet_pnl_prices s "
        "WHERE s.token_address NOT IN (SELECT token FROM st_prices)"
    )


def repriced(con: duckdb.DuckDBPyConnection, params: PnlParams) -> int:
    """Re-value the stored rows of the holders of st_moved_prices' tokens outside the
    recomputed wallets into st_repriced_pnl and st_repriced_windows; returns the wallets."""
    con.execute(
        load_sql(DIALECT, "11_repriced_rows.sql", recomputed=RECOMPUTED, **window_sql(params))
    )
    found = con.execute("SELECT count(DISTINCT wallet_address) FROM st_repriced").fetchone()
    return int(found[0]) if found else 0


def state_rows(con: duckdb.DuckDBPyConnection, params: PnlParams) -> pa.Table:
    """silver.wallet_pnl_prices rows from st_prices, stamped with the run."""
    from smarttrader_cli.lake.sql import quote

    out = con.execute(
        "SELECT token AS token_address, price, snapshot_price, traded_price, "
        "traded_key.t AS traded_at, traded_key.tx AS traded_tx, "
        "traded_key.ins AS traded_ins_index, traded_key.inner AS traded_inner_ins_index, "
        "traded_key.wallet AS traded_wallet, ?::TIMESTAMPTZ AS calculated_at, "
        f"{quote(params.run_id)} AS run_id FROM st_prices",
        [params.calculated_at],
    ).arrow()
    return out.read_all() if not hasattr(out, "num_rows") else out
