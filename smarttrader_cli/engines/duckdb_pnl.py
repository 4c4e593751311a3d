"""The DuckDB PnL engine: the set-based FIFO of docs/pnl.md as a few SQL statements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smarttrader_cli.engines.pnl_common import (
    SWAP_TX_SQL,
    TRADES_HINT,
    PnlParams,
    PnlResult,
    WindowState,
    finite_windows,
    load_sql,
    quote_filters,
    resolve_as_of,
    window_sql,
)
from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.readers import not_written
from smarttrader_cli.lake.sql import quote
from smarttrader_cli.lake.tables import (
    TOKEN_METRICS,
    WALLET_PNL,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

DIALECT = "duckdb"
_KEY = "tx_hash, ins_index, inner_ins_index, wallet_address"
_USED = (
    "block_unix_time, from_token_address, from_amount, from_price_usd, to_token_address, "
    "to_amount, to_price_usd, fetched_at, run_id"
)
DEDUPE = {
    "duplicates": "count(*) OVER k - 1",
    "dedupe": f"WINDOW k AS (PARTITION BY {_KEY})\n"
    f"QUALIFY row_number() OVER (PARTITION BY {_KEY}\n"
    "    ORDER BY fetched_at DESC NULLS LAST, run_id DESC NULLS LAST) = 1",
}
_NO_DEDUPE = {"duplicates": "0", "dedupe": ""}
_STAMPS = ("calculated_at", "run_id")
_STREAM_BATCH = 100_000  # rows per record batch of a streamed output
OUTPUT = [f.name for f in WALLET_PNL.schema if f.name not in _STAMPS]
# Inside the SQL the window column is window_name: `window` is a keyword.
WINDOW_OUTPUT = [
    'window_name AS "window"' if f.name == "window" else f.name
    for f in WALLET_PNL_WINDOWS.schema
    if f.name not in _STAMPS
]


def ensure_inputs(con: duckdb.DuckDBPyConnection) -> None:
    """Fail clearly without trades; stand in an empty token_metrics when it was never written."""
    if not _view_exists(con, WALLET_TRADES.name):
        raise StageError(not_written(WALLET_TRADES, TRADES_HINT))
    if not _view_exists(con, TOKEN_METRICS.name):
        con.execute("CREATE SCHEMA IF NOT EXISTS bronze")
        con.register("st_empty_token_metrics", TOKEN_METRICS.schema.empty_table())
        con.execute(
            f"CREATE OR REPLACE VIEW {TOKEN_METRICS.name} AS SELECT * FROM st_empty_token_metrics"
        )


def _view_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table = name.split(".", 1)
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


@dataclass(frozen=True)
class InputCounts:
    """What preparing the legs counted: trades read, rejected and duplicate, legs, wallets."""

    trades: int
    rejected: int
    duplicates: int
    legs: int
    unpriced: int
    wallets: int


def prepare_legs(
    con: duckdb.DuckDBPyConnection,
    params: PnlParams,
    prices: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> InputCounts:
    """Materialize the selected wallets' legs, latest prices and wallet list (st_wallets).

    `prices` builds st_prices instead (an incremental run prices from its stored state).
    The trades themselves are dropped once their legs exist: only their counts are kept.
    """
    ensure_inputs(con)
    legs_subs = quote_filters(params)
    if params.wallets is None:
        wallet_filter = "TRUE"
    elif not params.wallets:
        wallet_filter = "FALSE"
    else:
        import pyarrow as pa

        con.register("st_wallet_list", pa.table({"wallet": list(params.wallets)}))
        wallet_filter = "wallet_address IN (SELECT wallet FROM st_wallet_list)"
    # The dedupe window (a sort of every trade on the natural key) only runs when that key
    # is not already unique (bronze is merged on it), which a hash check settles cheaply.
    # Unique trades stay a view: bronze is then read once for the counts, once for the legs.
    con.execute(
        "CREATE OR REPLACE TEMP VIEW st_bronze_swaps AS "
        f"SELECT {SWAP_TX_SQL} AS tx_hash, ins_index, inner_ins_index, wallet_address, {_USED} "
        f"FROM {WALLET_TRADES.name}"
    )
    # A run for chosen wallets reads their trades from bronze once (a small table); a run
    # over everything keeps them a view (one copy of bronze in memory would not fit).
    selected_kind = "VIEW" if params.wallets is None else "TABLE"
    con.execute(
        f"CREATE OR REPLACE TEMP {selected_kind} st_bronze_trades AS "
        f"SELECT * FROM st_bronze_swaps WHERE {wallet_filter}"
    )
    unique = natural_key_unique(con, "st_bronze_trades")
    trades_kind = "VIEW" if unique else "TABLE"
    con.execute(
        load_sql(
            DIALECT, "01_trades.sql", kind=trades_kind, trades="st_trades",
            source="st_bronze_trades", **(_NO_DEDUPE if unique else DEDUPE),
        )
    )  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE st_wallets AS SELECT wallet, count(*) AS trades, "
        "count(*) FILTER (WHERE NOT is_valid) AS rejected, sum(duplicates) AS duplicates "
        "FROM st_trades GROUP BY wallet"
    )
    con.execute(
        load_sql(
            DIALECT, "02_legs.sql", kind="TABLE", trades="st_trades", legs="st_legs", **legs_subs
        )
    )
    price_legs = "st_legs"
    if prices is not None:
        prices(con)
    elif params.wallets is not None:
        # The fallback price of a token comes from every wallet's trades, not just these.
        con.execute(
            load_sql(
                DIALECT, "01_trades.sql", kind="VIEW", trades="st_all_trades",
                source="st_bronze_swaps", **DEDUPE,
            )
        )  # fmt: skip
        con.execute(
            load_sql(
                DIALECT, "02_legs.sql", kind="VIEW", trades="st_all_trades", legs="st_all_legs",
                **legs_subs,
            )
        )  # fmt: skip
        price_legs = "st_all_legs"
    if prices is None:
        traded = load_sql(DIALECT, "09_traded_prices.sql", legs=price_legs)
        con.execute(load_sql(DIALECT, "03_prices.sql", traded=traded))
    counts = con.execute(
        "SELECT (SELECT coalesce(sum(trades), 0) FROM st_wallets), "
        "(SELECT coalesce(sum(rejected), 0) FROM st_wallets), "
        "(SELECT coalesce(sum(duplicates), 0) FROM st_wallets), "
        "(SELECT count(*) FROM st_legs), "
        "(SELECT count(*) FILTER (WHERE value IS NULL) FROM st_legs), "
        "(SELECT count(*) FROM st_wallets)"
    ).fetchone()
    assert counts is not None
    con.execute(f"DROP {trades_kind} st_trades")
    con.execute(f"DROP {selected_kind} st_bronze_trades")
    return InputCounts(*(int(c) for c in counts))


def natural_key_unique(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether no two rows of `table` share a natural key (distinct key hashes prove it)."""
    found = con.execute(f"SELECT count(*) = count(DISTINCT hash({_KEY})) FROM {table}").fetchone()
    return bool(found and found[0])


def latest_trade_time(con: duckdb.DuckDBPyConnection) -> int | None:
    """The latest block time in bronze.wallet_trades, every wallet (resolve_as_of's input)."""
    found = con.execute(f"SELECT max(block_unix_time) FROM {WALLET_TRADES.name}").fetchone()
    return None if not found or found[0] is None else int(found[0])


def run_fifo(con: duckdb.DuckDBPyConnection, params: PnlParams) -> None:
    """The FIFO over the prepared legs into st_groups, st_sell_totals (with the windows'
    sums) and st_buy_windows, and the ledger's st_ledger_sells and st_ledger_buys; st_legs
    is dropped."""
    floor = _num(params.min_leg_usd)
    con.execute(
        load_sql(DIALECT, "04_groups.sql", legs="st_legs", min_leg_usd=floor,
                 group_id="hash(wallet, token)")
    )  # fmt: skip
    legs_with_groups = "(SELECT *, hash(wallet, token) AS g FROM st_legs)"
    if not group_ids_unique(con):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE st_groups AS "
            "SELECT * REPLACE (row_number() OVER () AS g) FROM st_groups"
        )
        legs_with_groups = "(SELECT l.*, r.g FROM st_legs l JOIN st_groups r USING (wallet, token))"
    origin = con.execute("SELECT coalesce(min(first_t), 0) FROM st_groups").fetchone()
    assert origin is not None
    con.execute(
        load_sql(
            DIALECT, "05_fifo.sql", legs="st_legs", legs_with_groups=legs_with_groups,
            min_leg_usd=floor, t_origin=str(int(origin[0])), **window_sql(params),
            **window_columns_sql(params),
        )
    )  # fmt: skip


# What st_sell_totals sums per finite window over the sells of st_ledger_sells, and
# st_buy_windows over the buys (05_fifo.sql): sell_totals.sql's sums, filtered.
_SELL_WINDOW_SUMS = {
    "sell_count": "count(*) FILTER (WHERE bucket <= {i})",
    "total_sold": "sum(value) FILTER (WHERE bucket <= {i})",
    "realized_pnl": "sum(pnl) FILTER (WHERE bucket <= {i})",
    "matched_cost": "sum(cost) FILTER (WHERE bucket <= {i})",
    "matched_proceeds": "sum(value * matched / qty) FILTER (WHERE bucket <= {i})",
    "sold_qty": "sum(qty) FILTER (WHERE bucket <= {i})",
    "matched_qty": "sum(matched) FILTER (WHERE bucket <= {i})",
    "counted_sells": "count(*) FILTER (WHERE bucket <= {i} AND counts)",
    "winning_sells": "count(*) FILTER (WHERE bucket <= {i} AND wins)",
}
_BUY_WINDOW_SUMS = {
    "buy_count": "count(*) FILTER (WHERE bucket <= {i})",
    "total_bought": "sum(value) FILTER (WHERE bucket <= {i})",
}


def window_columns_sql(params: PnlParams) -> dict[str, str]:
    """05_fifo.sql's window sums (column <name>_w<i> for finite window i, shortest first) and
    07_windows.sql's pick of a window row's value: `{{window_pick:<name>}}` is the column of
    its window, the group's total for 'all' (bucket NULL)."""
    k = len(finite_windows(params))

    def sums(spec: dict[str, str]) -> str:
        return "".join(
            f",\n    {expr.format(i=i)} AS {name}_w{i}"
            for i in range(k)
            for name, expr in spec.items()
        )

    out = {"window_sell_sums": sums(_SELL_WINDOW_SUMS), "window_buy_sums": sums(_BUY_WINDOW_SUMS)}
    for name in (*_SELL_WINDOW_SUMS, *_BUY_WINDOW_SUMS):
        cases = "".join(f" WHEN {i} THEN o.{name}_w{i}" for i in range(k))
        out[f"window_pick:{name}"] = f"CASE w.bucket{cases} ELSE o.{name} END" if k else f"o.{name}"
    return out


def realized_by_wallet(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Each wallet's realized PnL from what run_fifo left (wallets without sells: absent)."""
    rows = con.execute(
        "SELECT gr.wallet, coalesce(sum(s.realized_pnl), 0) "
        "FROM st_sell_totals s JOIN st_groups gr USING (g) GROUP BY gr.wallet"
    ).fetchall()
    return {wallet: float(pnl) for wallet, pnl in rows}


def group_ids_unique(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the hashed group ids of st_groups are distinct (they almost always are)."""
    found = con.execute("SELECT count(DISTINCT g) = count(*) FROM st_groups").fetchone()
    return bool(found and found[0])


def build_rows(con: duckdb.DuckDBPyConnection, params: PnlParams) -> None:
    """Token and ALL_TOKENS rows into st_pnl_rows, and per window the view st_window_rows
    (its token rows: the view st_window_token_rows)."""
    con.execute(load_sql(DIALECT, "06_rows.sql", token_rows="st_token_rows"))
    con.execute(
        load_sql(
            DIALECT, "07_windows.sql", window_token_rows="st_window_token_rows",
            **window_sql(params), **window_columns_sql(params),
        )
    )  # fmt: skip


def compute_pnl(
    con: duckdb.DuckDBPyConnection,
    params: PnlParams,
    prices: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    export_windows: bool = True,
    after_fifo: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> PnlResult:
    """silver.wallet_pnl and silver.wallet_pnl_windows rows for the selected wallets
    (`prices`: see prepare_legs). Without `export_windows` the window rows stay in
    st_window_rows (window_stream) and the result's windows are None; `after_fifo` runs
    once the FIFO's tables exist, before the rows are built (a full refresh writes and
    drops the ledger's tables there)."""
    ensure_inputs(con)
    params = resolve_as_of(params, latest_trade_time(con))
    counts = prepare_legs(con, params, prices)
    run_fifo(con, params)
    if after_fifo is not None:
        after_fifo(con)
    build_rows(con, params)
    rows = stamped(con, params, OUTPUT, "st_pnl_rows", "ORDER BY wallet_address, token_address")
    # Unordered: a sort of (windows x rows) on three strings costs more than the rest of the
    # windows, and no reader depends on the files' order.
    windows = stamped(con, params, WINDOW_OUTPUT, "st_window_rows") if export_windows else None
    return PnlResult(
        rows=rows,
        wallets=counts.wallets,
        token_rows=rows.num_rows - counts.wallets,
        legs=counts.legs,
        unpriced_legs=counts.unpriced,
        rejected_trades=counts.rejected,
        duplicate_trades=counts.duplicates,
        windows=windows,
    )


def window_state(con: duckdb.DuckDBPyConnection) -> WindowState | None:
    """Where silver.wallet_pnl_windows' windows end and which they are; None if never written."""
    if not _view_exists(con, WALLET_PNL_WINDOWS.name):
        return None
    end, names = con.execute(
        f'SELECT epoch(max(window_end))::BIGINT, list(DISTINCT "window") '
        f"FROM {WALLET_PNL_WINDOWS.name}"
    ).fetchone() or (None, None)
    return None if end is None else WindowState(int(end), frozenset(names))


def moved_wallets(con: duckdb.DuckDBPyConnection, bands: str) -> tuple[str, ...]:
    """Wallets with a trade in `bands` (pnl_common.window_bands)."""
    rows = con.execute(load_sql(DIALECT, "00_window_moved_wallets.sql", bands=bands)).fetchall()
    return tuple(sorted(r[0] for r in rows))


def shifted_windows(con: duckdb.DuckDBPyConnection, params: PnlParams) -> pa.Table:
    """The stored windows rows of every wallet not in params.wallets, bounds moved to as_of."""
    import pyarrow as pa

    con.register("st_recomputed", pa.table({"wallet": pa.array(params.wallets or (), pa.string())}))
    bounds = {"window_start": "to_timestamp(w.start_t)", "window_end": "to_timestamp(w.end_t)"}
    columns = ", ".join(
        f"{bounds[f.name]} AS {f.name}" if f.name in bounds else f'p."{f.name}"'
        for f in WALLET_PNL_WINDOWS.schema
    )
    sql = load_sql(
        DIALECT, "08_shifted_windows.sql", columns=columns, recomputed="st_recomputed",
        **window_sql(params),
    )  # fmt: skip
    out = con.execute(sql).arrow()
    return out.read_all() if not hasattr(out, "num_rows") else out


def window_stream(
    con: duckdb.DuckDBPyConnection, params: PnlParams
) -> tuple[pa.RecordBatchReader, int]:
    """st_window_rows stamped (see stamped) as a stream of record batches, and their count:
    the token rows' and one ALL_TOKENS row per wallet and window (not a count of the whole
    view, which would run its ALL_TOKENS sums once more)."""
    found = con.execute(
        "SELECT (SELECT count(*) FROM st_window_token_rows) "
        "+ (SELECT count(*) FROM st_wallets) * ?",
        [len(params.windows)],
    ).fetchone()
    count = int(found[0]) if found else 0
    reader = con.execute(
        f"SELECT {', '.join(WINDOW_OUTPUT)}, ?::TIMESTAMPTZ AS calculated_at, "
        f"{quote(params.run_id)} AS run_id FROM st_window_rows",
        [params.calculated_at],
    ).to_arrow_reader(_STREAM_BATCH)
    return reader, count


def stamped(
    con: duckdb.DuckDBPyConnection,
    params: PnlParams,
    columns: list[str],
    table: str,
    order: str = "",
) -> pa.Table:
    """`table`'s output columns with the run's stamp, as Arrow."""
    out = con.execute(
        f"SELECT {', '.join(columns)}, ?::TIMESTAMPTZ AS calculated_at, "
        f"{quote(params.run_id)} AS run_id FROM {table} {order}",
        [params.calculated_at],
    ).arrow()
    if not hasattr(out, "num_rows"):  # duckdb may hand back a record batch reader
        out = out.read_all()
    return out


def _num(value: float) -> str:
    return repr(float(value))
