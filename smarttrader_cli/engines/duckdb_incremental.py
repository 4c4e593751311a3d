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
from smarttrader_cli.engines.pnl_common import (
    WindowState,
    finite_windows,
    load_sql,
    quote_filters,
    window_sql,
)
from smarttrader_cli.lake.changes import (
    Changes,
    added_since,
    cursor_app_id,
    removed_since,
    table_id,
)
from smarttrader_cli.lake.tables import (
    WALLET_PNL,
    WALLET_PNL_LEDGER,
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
LEDGER_ROW_GROUP = 100_000  # rows per row group of the ledger's files
# Commits that change no rows: a table's last commit of data is found behind them.
STATE = (WALLET_PNL_PRICES, WALLET_PNL_LEDGER)
# The columns of bronze.wallet_trades the PnL reads: a row changed in these is changed.
_COMPARED = (
    "tx_hash", "ins_index", "inner_ins_index", "fill_id", "wallet_address", "block_unix_time",
    "from_token_address", "from_amount", "from_price_usd", "to_token_address", "to_amount",
    "to_price_usd", "fetched_at",
)  # fmt: skip
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
    if params.as_of is not None and params.as_of < windows.end:
        return "the latest trade is older than the windows' end (trades were removed)"
    for spec in STATE:
        if not lake.exists(spec):
            return f"no incremental state yet ({spec.name})"
        stored = lake.table(spec)
        if stored.schema().to_arrow().names != spec.schema.names:
            return f"{spec.name} has other columns than this version stores"
        if stored.metadata().partition_columns != list(spec.partition_by):
            return f"{spec.name} is partitioned otherwise than this version stores it"
    app_id = cursor_of(bronze).app_id
    rows_at = lake.app_transaction_version(WALLET_PNL, app_id)
    if rows_at is None:
        return (
            f"{WALLET_PNL.name} holds no cursor into this {WALLET_TRADES.name} (table id "
            f"{table_id(bronze)}): written before the state, or bronze was recreated"
        )
    rows = last_data_commit(lake, WALLET_PNL)
    for spec in STATE:
        state_at = lake.app_transaction_version(spec, app_id)
        if state_at != rows_at:
            return (
                f"{spec.name} was built through {WALLET_TRADES.name} version {state_at}, "
                f"{WALLET_PNL.name} through {rows_at} (a run stopped between its writes)"
            )
        state = last_data_commit(lake, spec)
        if state is None or rows is None or state.get("run_id") != rows.get("run_id"):
            writer = (rows or {}).get("run_id")
            return (
                f"{WALLET_PNL.name} was last written by run {writer} (another engine or a "
                f"--wallet run), not by the run that wrote {spec.name}"
            )
        if state.get(STATE_KEY) != state_key(params):
            return "pnl.quote_assets or pnl.min_leg_usd changed since the state was written"
    return None


def register_changes(
    con: duckdb.DuckDBPyConnection, lake: Lake, bronze: DeltaTable, after: int
) -> None:
    """st_changed_wallets (wallet, first_new_t, gone): the wallets with a trade added,
    changed or removed in bronze after version `after`, the earliest block time of their
    new or changed rows and whether rows of theirs are gone. A file a commit rewrote holds
    unchanged rows too: only rows not in the removed files (or, for gone, not in the added
    ones) count. ChangesUnavailable when the log or a removed file cannot be read."""
    import pyarrow as pa

    schema = pa.schema(bronze.schema().to_arrow())
    added = added_since(lake, WALLET_TRADES, bronze, after)
    removed = removed_since(lake, WALLET_TRADES, bronze, after)
    for name, changes in (("st_added_trades", added), ("st_removed_trades", removed)):
        data = (
            changes.dataset(lake, WALLET_TRADES, schema).to_table(columns=list(_COMPARED))
            if changes.paths
            else schema.empty_table().select(list(_COMPARED))
        )
        con.register(name, data)
    columns = ", ".join(_COMPARED)
    if not removed.paths:
        new, gone = "SELECT * FROM st_added_trades", "SELECT * FROM st_removed_trades"
    else:
        new = f"SELECT {columns} FROM st_added_trades EXCEPT ALL SELECT {columns} FROM st_removed_trades"
        gone = f"SELECT {columns} FROM st_removed_trades EXCEPT ALL SELECT {columns} FROM st_added_trades"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_changed_wallets AS "
        "SELECT wallet_address AS wallet, min(block_unix_time) FILTER (WHERE NOT gone) "
        "AS first_new_t, bool_or(gone) AS gone FROM ("
        f"SELECT wallet_address, block_unix_time, FALSE AS gone FROM ({new}) "
        f"UNION ALL SELECT wallet_address, block_unix_time, TRUE FROM ({gone})"
        ") GROUP BY wallet_address"
    )


def changed_wallets(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The wallets of st_changed_wallets."""
    return {r[0] for r in con.execute("SELECT wallet FROM st_changed_wallets").fetchall()}


def ledger_band(
    con: duckdb.DuckDBPyConnection, lake: Lake, params: PnlParams, old_end: int
) -> set[str]:
    """st_band_sums: what left each window since its end was old_end (12_band_sums.sql),
    read from the ledger files whose time range meets an edge's span; returns the wallets
    outside the recomputed ones with a ledger leg after old_end (which no subtraction
    covers: they are recomputed)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    assert params.as_of is not None
    end = int(params.as_of)
    spans = [(old_end - (w.seconds or 0), end - (w.seconds or 0)) for w in finite_windows(params)]
    spans.append((old_end, end))
    table = lake.table(WALLET_PNL_LEDGER)
    files = pa.table(table.get_add_actions(flatten=True))
    low, high = files.column("min.block_unix_time"), files.column("max.block_unix_time")
    days = files.column("partition.leg_date").to_pylist()
    partitions: dict[str, dict[str, str | None]] = {}
    for path, lo, hi, day in zip(
        files.column("path").to_pylist(), low.to_pylist(), high.to_pylist(), days, strict=True
    ):
        if lo is None or hi is None or any(hi > a and lo <= b for a, b in spans):
            partitions[path] = {"leg_date": None if day is None else str(day)}
    paths = list(partitions)
    schema = WALLET_PNL_LEDGER.schema
    if paths:
        t = ds.field("block_unix_time")
        band = None
        for a, b in spans:
            term = (t > a) & (t <= b)
            band = term if band is None else band | term
        changes = Changes(0, 0, tuple(paths), 0, partitions)
        dataset = changes.dataset(lake, WALLET_PNL_LEDGER, schema)
        legs = dataset.to_table(filter=band)
    else:
        legs = schema.empty_table()
    con.register("st_band_legs", legs)
    con.execute(
        load_sql(
            DIALECT, "12_band_sums.sql", ledger="st_band_legs", old_end=str(int(old_end)),
            recomputed=RECOMPUTED, **window_sql(params),
        )
    )  # fmt: skip
    later = con.execute(
        f"SELECT DISTINCT wallet_address FROM st_band_legs WHERE block_unix_time > {int(old_end)}"
    ).fetchall()
    return {r[0] for r in later}


def no_band(con: duckdb.DuckDBPyConnection, params: PnlParams) -> None:
    """An empty st_band_sums: the windows' end did not move."""
    con.register("st_band_legs", WALLET_PNL_LEDGER.schema.empty_table())
    con.execute(
        load_sql(
            DIALECT, "12_band_sums.sql", ledger="st_band_legs", old_end=str(int(params.as_of or 0)),
            recomputed=RECOMPUTED, **window_sql(params),
        )
    )  # fmt: skip


def store_rows(con: duckdb.DuckDBPyConnection) -> None:
    """st_stored_pnl: silver.wallet_pnl as this run found it, read once."""
    con.execute("CREATE OR REPLACE TEMP TABLE st_stored_pnl AS SELECT * FROM silver.wallet_pnl")


def moved_windows(con: duckdb.DuckDBPyConnection, params: PnlParams) -> tuple[str, ...]:
    """st_moved_token_windows and st_moved_portfolio: the window rows of the wallets outside
    the recomputed ones whose windows changed (13_moved_windows.sql); returns the wallets."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_affected AS "
        "SELECT wallet_address FROM st_band_sums UNION SELECT wallet_address FROM st_repriced"
    )
    con.execute(
        load_sql(
            DIALECT, "13_moved_windows.sql", window_token_rows="st_moved_token_windows",
            **window_sql(params),
        )
    )  # fmt: skip
    rows = con.execute("SELECT wallet_address FROM st_affected").fetchall()
    return tuple(sorted(r[0] for r in rows))


def ledger_sql(params: PnlParams, after: str | None = None, select: str = "") -> str:
    """The query of silver.wallet_pnl_ledger rows of the FIFO's legs (unsorted: the day
    partitions bound a window edge's read, no sort of every leg is needed) that a
    window edge can still pass over (after as_of minus the longest window), and with `after`
    (a table of (wallet, after_t)) only the legs of its wallets later than their after_t.
    With `select`, that select list over the same legs instead."""
    assert params.as_of is not None
    finite = finite_windows(params)
    oldest = int(params.as_of) - max((w.seconds or 0) for w in finite) if finite else None
    keep = [f"l.t > {oldest}"] if oldest is not None else ["FALSE"]
    join = ""
    if after is not None:
        join = f"JOIN {after} a ON a.wallet = gr.wallet"
        keep.append("(a.after_t IS NULL OR l.t > a.after_t)")
    columns = select or (
        "gr.wallet AS wallet_address, gr.token AS token_address, l.rn AS leg, "
        "l.t AS block_unix_time, l.is_buy, l.value AS value_usd, l.qty AS sold_qty, "
        "l.matched AS matched_qty, l.cost AS matched_cost, l.pnl AS realized_pnl, "
        "l.counts, l.wins, DATE '1970-01-01' + CAST(l.t // 86400 AS INTEGER) AS leg_date"
    )
    # matched proceeds and the run are not stored: value_usd * matched_qty / sold_qty is
    # the FIFO's own expression, and the commit names the run.
    return (
        f"SELECT {columns} FROM ("
        "SELECT g, rn, t, FALSE AS is_buy, value, qty, matched, cost, pnl, counts, wins "
        "FROM st_ledger_sells "
        "UNION ALL SELECT g, rn, t, TRUE, value, NULL, NULL, NULL, NULL, NULL, NULL "
        f"FROM st_ledger_buys) l JOIN st_groups gr ON gr.g = l.g {join} "
        f"WHERE {' AND '.join(keep)}"
    )


def ledger_rows(
    con: duckdb.DuckDBPyConnection, params: PnlParams, after: str | None = None
) -> pa.Table:
    """silver.wallet_pnl_ledger rows (ledger_sql) as one Arrow table (an incremental run's
    few)."""
    out = con.execute(ledger_sql(params, after)).arrow()
    return out.read_all() if not hasattr(out, "num_rows") else out


def ledger_stream(
    con: duckdb.DuckDBPyConnection, params: PnlParams
) -> tuple[pa.RecordBatchReader, int]:
    """Every silver.wallet_pnl_ledger row of a full refresh (ledger_sql) as a stream of
    record batches, and their count: at 10M trades the ledger as one Arrow table would be
    the run's largest allocation. The stream holds `con` until it is read."""
    found = con.execute(ledger_sql(params, select="count(*)")).fetchone()
    count = int(found[0]) if found else 0
    return con.execute(ledger_sql(params)).to_arrow_reader(LEDGER_ROW_GROUP), count


def ledger_plan(con: duckdb.DuckDBPyConnection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The recomputed wallets whose ledger rows are replaced (rows gone or changed, trades
    before their last priced leg, duplicate keys), and the ones that only gain legs; the
    latter's after_t (their last priced leg's time, NULL if none) in st_ledger_after."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_ledger_kind AS "
        "SELECT r.wallet, epoch(p.last_trade_at)::BIGINT AS after_t, "
        "coalesce(c.gone, FALSE) OR coalesce(w.duplicates, 0) > 0 "
        "OR (p.last_trade_at IS NOT NULL AND "
        "    coalesce(c.first_new_t <= epoch(p.last_trade_at), TRUE)) AS replaced "
        f"FROM {RECOMPUTED} r "
        "LEFT JOIN st_changed_wallets c ON c.wallet = r.wallet "
        "LEFT JOIN st_wallets w ON w.wallet = r.wallet "
        "LEFT JOIN st_stored_pnl p ON p.wallet_address = r.wallet "
        "AND p.token_address = 'ALL_TOKENS'"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_ledger_after AS "
        "SELECT wallet, CASE WHEN replaced THEN NULL ELSE after_t END AS after_t, replaced "
        "FROM st_ledger_kind"
    )
    rows = con.execute("SELECT wallet, replaced FROM st_ledger_after").fetchall()
    replaced = tuple(sorted(w for w, r in rows if r))
    grown = tuple(sorted(w for w, r in rows if not r))
    return replaced, grown


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
