"""The Spark PnL engine: the same set-based FIFO in Spark SQL, reading and writing Delta."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from smarttrader_cli.engines.pnl_common import (
    SWAP_TX_SQL,
    TRADES_HINT,
    PnlParams,
    PnlResult,
    RunPlan,
    WindowState,
    load_sql,
    plan_run,
    quote_filters,
    resolve_as_of,
    window_sql,
)
from smarttrader_cli.engines.spark_session import build_session, spark_uri
from smarttrader_cli.lake.readers import require
from smarttrader_cli.lake.sql import in_list, literal, quote
from smarttrader_cli.lake.tables import (
    TOKEN_METRICS,
    WALLET_PNL,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.lake.tables import TableSpec
    from smarttrader_cli.stages.contract import StageContext

DIALECT = "spark"
_SPARK_TYPES = {"double": "double", "int64": "bigint", "string": "string"}


def register_inputs(spark: SparkSession, lake: Lake) -> None:
    """bronze_wallet_trades, bronze_token_metrics and (if written) silver_wallet_pnl and
    silver_wallet_pnl_windows views."""
    require(lake, WALLET_TRADES, TRADES_HINT)
    from pyspark.sql import functions as F

    reader = spark.read.format("delta")
    trades = reader.load(spark_uri(lake.uri(WALLET_TRADES)))
    trades.withColumn("tx_hash", F.expr(SWAP_TX_SQL)).createOrReplaceTempView(
        "bronze_wallet_trades"
    )
    if lake.exists(TOKEN_METRICS):
        metrics = reader.load(spark_uri(lake.uri(TOKEN_METRICS)))
    else:
        metrics = spark.createDataFrame(
            [], "token_address string, snapshot_at timestamp, price double"
        )
    metrics.createOrReplaceTempView("bronze_token_metrics")
    for table in (WALLET_PNL, WALLET_PNL_WINDOWS):
        if lake.exists(table):
            lake.ensure_table(table)  # columns added since it was written: the shift reads them
            view = table.name.replace(".", "_")
            reader.load(spark_uri(lake.uri(table))).createOrReplaceTempView(view)


def _portable(name: str, **subs: str) -> str:
    """A portable query of sql/duckdb/ on the views register_inputs names."""
    text = load_sql("duckdb", name, **subs)
    for table in ("bronze.wallet_trades", "bronze.token_metrics", "silver.wallet_pnl"):
        text = text.replace(table, table.replace(".", "_"))
    return text


def stale_wallets(spark: SparkSession, lake: Lake) -> tuple[str, ...] | None:
    """Wallets an incremental run must recompute (same query as DuckDB); None if silver is empty."""
    if not lake.exists(WALLET_PNL):
        return None
    return tuple(sorted(r[0] for r in spark.sql(_portable("00_stale_wallets.sql")).collect()))


def moved_wallets(spark: SparkSession, bands: str) -> tuple[str, ...]:
    """Wallets with a trade in `bands` (pnl_common.window_bands; same query as DuckDB)."""
    text = _portable("00_window_moved_wallets.sql", bands=bands)
    return tuple(sorted(r[0] for r in spark.sql(text).collect()))


def window_state(spark: SparkSession, lake: Lake) -> WindowState | None:
    """Where silver.wallet_pnl_windows' windows end and which they are; None if never written."""
    if not lake.exists(WALLET_PNL_WINDOWS):
        return None
    found = spark.sql(
        "SELECT CAST(unix_seconds(max(window_end)) AS BIGINT) AS end_t, "
        "collect_set(`window`) AS names FROM silver_wallet_pnl_windows"
    ).collect()[0]
    if found["end_t"] is None:
        return None
    return WindowState(int(found["end_t"]), frozenset(found["names"]))


def shifted_windows(spark: SparkSession, params: PnlParams) -> DataFrame:
    """The stored windows rows of every wallet not in params.wallets, bounds moved to as_of."""
    spark.createDataFrame(
        [(w,) for w in params.wallets or ()], "wallet string"
    ).createOrReplaceTempView("st_recomputed")
    bounds = {
        "window_start": "timestamp_seconds(w.start_t)",
        "window_end": "timestamp_seconds(w.end_t)",
    }
    columns = ", ".join(
        f"{bounds[f.name]} AS {f.name}" if f.name in bounds else f"p.`{f.name}`"
        for f in WALLET_PNL_WINDOWS.schema
    )
    sql = load_sql(
        DIALECT, "10_shifted_windows.sql", columns=columns, recomputed="st_recomputed",
        **window_sql(params),
    )  # fmt: skip
    return spark.sql(sql)


def latest_trade_time(spark: SparkSession) -> int | None:
    """The latest block time in bronze, every wallet (resolve_as_of's input)."""
    found = spark.sql("SELECT max(block_unix_time) AS t FROM bronze_wallet_trades").collect()
    return None if found[0]["t"] is None else int(found[0]["t"])


def compute_pnl(
    spark: SparkSession, params: PnlParams
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    """silver.wallet_pnl and silver.wallet_pnl_windows rows as persisted DataFrames (inputs
    registered), plus the run's counts; the windows end at params.as_of (resolved here
    from bronze when None)."""
    params = resolve_as_of(params, latest_trade_time(spark))
    floor = repr(float(params.min_leg_usd)) + "D"
    legs_subs = quote_filters(params)
    windows_subs = window_sql(params)
    wallet_filter = "TRUE"
    if params.wallets is not None:
        spark.createDataFrame(
            [(w,) for w in params.wallets], "wallet string"
        ).createOrReplaceTempView("st_wallet_list")
        wallet_filter = "wallet_address IN (SELECT wallet FROM st_wallet_list)"

    materialized: list[str] = []

    def view(name: str, sql_name: str, materialize: bool = False, /, **subs: str) -> None:
        df = spark.sql(load_sql(DIALECT, sql_name, **subs))
        if materialize:
            # A local checkpoint computes the view now and cuts its lineage: with persist()
            # every later statement carried the whole chain of views in its plan, and
            # planning and running 05-07 took 19-44 s each on 200k trades (1-6 s this way).
            df = df.localCheckpoint(eager=True)
            materialized.append(name)
        df.createOrReplaceTempView(name)

    view("st_trades", "01_trades.sql", True, wallet_filter=wallet_filter)
    view("st_legs", "02_legs.sql", True, trades="st_trades", **legs_subs)
    price_legs = "st_legs"
    if params.wallets is not None:
        view("st_all_trades", "01_trades.sql", False, wallet_filter="TRUE")
        view("st_all_legs", "02_legs.sql", False, trades="st_all_trades", **legs_subs)
        price_legs = "st_all_legs"
    view("st_prices", "03_prices.sql", True, price_legs=price_legs)
    view("st_fifo_legs", "04_fifo_legs.sql", True, legs="st_legs", min_leg_usd=floor,
         leg_bucket=windows_subs["leg_bucket"])  # fmt: skip
    view("st_sells", "05_sells.sql", True, fifo_legs="st_fifo_legs")
    view("st_sell_totals", "05_sell_totals.sql", True, sells="st_sells")
    view(
        "st_token_rows", "06_token_rows.sql", True, legs="st_legs",
        fifo_legs="st_fifo_legs", sell_totals="st_sell_totals", prices="st_prices",
        min_leg_usd=floor,
    )  # fmt: skip
    view(
        "st_window_token_rows", "08_window_token_rows.sql", True, token_rows="st_token_rows",
        sell_totals="st_sell_totals", fifo_legs="st_fifo_legs", **windows_subs,
    )  # fmt: skip
    rows = spark.sql(
        load_sql(DIALECT, "07_rows.sql", trades="st_trades", token_rows="st_token_rows")
    )
    windows = spark.sql(
        load_sql(
            DIALECT, "09_window_rows.sql", trades="st_trades",
            window_token_rows="st_window_token_rows", **windows_subs,
        )
    )  # fmt: skip
    counts = spark.sql(
        "SELECT (SELECT count(*) FILTER (WHERE NOT is_valid) FROM st_trades) AS rejected, "
        "(SELECT coalesce(sum(duplicates), 0) FROM st_trades) AS duplicates, "
        "(SELECT count(*) FROM st_legs) AS legs, "
        "(SELECT count(*) FILTER (WHERE value IS NULL) FROM st_legs) AS unpriced, "
        "(SELECT count(DISTINCT wallet) FROM st_trades) AS wallets"
    ).collect()[0]
    out = _stamped(rows, WALLET_PNL, params).persist()
    total = out.count()
    out_windows = _stamped(windows, WALLET_PNL_WINDOWS, params).persist()
    window_rows = out_windows.count()
    # Once no view names them, Spark's context cleaner frees the checkpoints' blocks (the
    # persisted outputs still hold the ones their plans read until they are unpersisted).
    for name in materialized:
        spark.catalog.dropTempView(name)
    stats = {k: int(counts[k]) for k in ("rejected", "duplicates", "legs", "unpriced", "wallets")}
    stats.update(rows=total, window_rows=window_rows)
    return out, out_windows, stats


def _stamped(rows: DataFrame, table: TableSpec, params: PnlParams) -> DataFrame:
    """`rows` in `table`'s column order and types, with the run's stamp."""
    stamp = "timestamp" + literal(params.calculated_at)
    return rows.selectExpr(
        *[_cast(f.name, str(f.type)) for f in table.schema if f.name not in _STAMPS],
        f"{stamp} AS calculated_at",
        f"{quote(params.run_id)} AS run_id",
    )


_STAMPS = ("calculated_at", "run_id")


def _cast(name: str, arrow_type: str) -> str:
    # Inside the SQL the window column is window_name: `window` is a keyword.
    source = "window_name" if name == "window" else name
    if arrow_type.startswith("timestamp"):
        return f"{source} AS `{name}`"
    return f"CAST({source} AS {_SPARK_TYPES[arrow_type]}) AS `{name}`"


def write_rows(
    spark: SparkSession,
    lake: Lake,
    rows: DataFrame | None,
    windows: DataFrame | None,
    plan: RunPlan,
    meta: CommitMeta,
) -> None:
    """The windows, then silver.wallet_pnl, each one Delta commit with delta-spark, by the
    plan's rules (pnl_common.RunPlan) as the DuckDB engine's stage writes them.

    Windows first: should the second commit fail, the wallets' calculated_at in
    silver.wallet_pnl is still old and the next incremental run recomputes them.
    """
    wallets = plan.params.wallets or ()
    if plan.windows == "shift":
        # The stored rows are read from the table this commit overwrites: compute them first.
        shifted = shifted_windows(spark, plan.params).localCheckpoint(eager=True)
        windows = shifted if windows is None else shifted.unionByName(windows)
        _write(spark, lake, WALLET_PNL_WINDOWS, windows, None, meta)
    elif windows is not None and plan.windows in ("overwrite", "merge"):
        merge_wallets = wallets if plan.windows == "merge" else None
        _write(spark, lake, WALLET_PNL_WINDOWS, windows, merge_wallets, meta)
    if rows is not None:
        full = plan.params.wallets is None or plan.mode == "full"
        _write(spark, lake, WALLET_PNL, rows, None if full else wallets, meta)


def _write(
    spark: SparkSession,
    lake: Lake,
    table: TableSpec,
    rows: DataFrame,
    merge_wallets: tuple[str, ...] | None,
    meta: CommitMeta,
) -> None:
    """Overwrite `table` with `rows`, or (merge_wallets given) merge them on its key,
    deleting the rows of those wallets that `rows` no longer has."""
    lake.ensure_table(table)
    uri = spark_uri(lake.uri(table))
    operation = "overwrite" if merge_wallets is None else "merge"
    user_meta = json.dumps(meta.as_metadata(rows.count(), operation))
    if merge_wallets is None:
        rows.write.format("delta").mode("overwrite").option("userMetadata", user_meta).save(uri)
        return
    from delta.tables import DeltaTable

    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in table.keys)
    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", user_meta)
    try:
        (
            DeltaTable.forPath(spark, uri)
            .alias("t")
            .merge(rows.alias("s"), on)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .whenNotMatchedBySourceDelete(in_list("t.wallet_address", merge_wallets))
            .execute()
        )
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")


def run_spark_pnl(
    app: StageContext, params: PnlParams, mode: str, meta: CommitMeta
) -> PnlResult | None:
    """The whole stage on Spark: choose wallets, compute, write the windows and the rows."""
    lake = app.lake
    spark = build_session(app.config, lake.storage_options)
    register_inputs(spark, lake)
    params = resolve_as_of(params, latest_trade_time(spark))
    plan = plan_run(
        params, mode, window_state(spark, lake), lambda: stale_wallets(spark, lake),
        lambda bands: moved_wallets(spark, bands),
    )  # fmt: skip
    if plan is None:
        return None
    if plan.params.wallets == ():  # only the windows' bounds moved
        write_rows(spark, lake, None, None, plan, meta)
        return None
    rows, windows, stats = compute_pnl(spark, plan.params)
    meta.extra.update(stats)
    try:
        write_rows(spark, lake, rows, windows, plan, meta)
    finally:
        rows.unpersist()
        windows.unpersist()
    return PnlResult(
        rows=None,
        wallets=stats["wallets"],
        token_rows=stats["rows"] - stats["wallets"],
        legs=stats["legs"],
        unpriced_legs=stats["unpriced"],
        rejected_trades=stats["rejected"],
        duplicate_trades=stats["duplicates"],
    )
