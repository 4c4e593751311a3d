"""The Spark PnL engine: the same set-based FIFO in Spark SQL, reading and writing Delta."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from smarttrader_cli.engines.pnl_common import (
    SWAP_TX_SQL,
    TRADES_HINT,
    PnlParams,
    PnlResult,
    load_sql,
    quote_filters,
    run_scope,
)
from smarttrader_cli.engines.spark_session import build_session, spark_uri
from smarttrader_cli.lake.readers import require
from smarttrader_cli.lake.sql import in_list, literal, quote
from smarttrader_cli.lake.tables import TOKEN_METRICS, WALLET_PNL, WALLET_TRADES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.stages.contract import StageContext

DIALECT = "spark"
_SPARK_TYPES = {"double": "double", "int64": "bigint", "string": "string"}


def register_inputs(spark: SparkSession, lake: Lake) -> None:
    """bronze_wallet_trades, bronze_token_metrics and (if written) silver_wallet_pnl views."""
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
    if lake.exists(WALLET_PNL):
        reader.load(spark_uri(lake.uri(WALLET_PNL))).createOrReplaceTempView("silver_wallet_pnl")


def stale_wallets(spark: SparkSession, lake: Lake) -> tuple[str, ...] | None:
    """Wallets an incremental run must recompute (same query as DuckDB); None if silver is empty."""
    if not lake.exists(WALLET_PNL):
        return None
    text = load_sql("duckdb", "00_stale_wallets.sql")
    for name in ("bronze.wallet_trades", "bronze.token_metrics", "silver.wallet_pnl"):
        text = text.replace(name, name.replace(".", "_"))
    return tuple(sorted(r[0] for r in spark.sql(text).collect()))


def compute_pnl(spark: SparkSession, params: PnlParams) -> tuple[DataFrame, dict[str, int]]:
    """silver.wallet_pnl rows as a DataFrame (inputs registered), plus the run's counts."""
    floor = repr(float(params.min_leg_usd)) + "D"
    legs_subs = quote_filters(params)
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
    view("st_fifo_legs", "04_fifo_legs.sql", True, legs="st_legs", min_leg_usd=floor)
    view("st_sells", "05_sells.sql", True, fifo_legs="st_fifo_legs")
    view(
        "st_token_rows", "06_token_rows.sql", True, legs="st_legs",
        fifo_legs="st_fifo_legs", sells="st_sells", prices="st_prices", min_leg_usd=floor,
    )  # fmt: skip
    rows = spark.sql(
        load_sql(DIALECT, "07_rows.sql", trades="st_trades", token_rows="st_token_rows")
    )
    counts = spark.sql(
        "SELECT (SELECT count(*) FILTER (WHERE NOT is_valid) FROM st_trades) AS rejected, "
        "(SELECT coalesce(sum(duplicates), 0) FROM st_trades) AS duplicates, "
        "(SELECT count(*) FROM st_legs) AS legs, "
        "(SELECT count(*) FILTER (WHERE value IS NULL) FROM st_legs) AS unpriced, "
        "(SELECT count(DISTINCT wallet) FROM st_trades) AS wallets"
    ).collect()[0]
    stamp = "timestamp" + literal(params.calculated_at)
    out = rows.selectExpr(
        *[_cast(f.name, str(f.type)) for f in WALLET_PNL.schema if f.name not in _STAMPS],
        f"{stamp} AS calculated_at",
        f"{quote(params.run_id)} AS run_id",
    )
    out = out.persist()
    total = out.count()
    # Once no view names them, Spark's context cleaner frees the checkpoints' blocks (the
    # persisted output still holds the ones its plan reads until it is unpersisted).
    for name in materialized:
        spark.catalog.dropTempView(name)
    stats = {k: int(counts[k]) for k in ("rejected", "duplicates", "legs", "unpriced", "wallets")}
    stats["rows"] = total
    return out, stats


_STAMPS = ("calculated_at", "run_id")


def _cast(name: str, arrow_type: str) -> str:
    if arrow_type.startswith("timestamp"):
        return name
    return f"CAST({name} AS {_SPARK_TYPES[arrow_type]}) AS {name}"


def write_rows(
    spark: SparkSession,
    lake: Lake,
    rows: DataFrame,
    params: PnlParams,
    full: bool,
    meta: CommitMeta,
) -> None:
    """One Delta commit with delta-spark: overwrite (full) or merge replacing these wallets."""
    lake.ensure_table(WALLET_PNL)
    uri = spark_uri(lake.uri(WALLET_PNL))
    user_meta = json.dumps(meta.as_metadata(rows.count(), "overwrite" if full else "merge"))
    if full:
        rows.write.format("delta").mode("overwrite").option("userMetadata", user_meta).save(uri)
        return
    from delta.tables import DeltaTable

    spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", user_meta)
    try:
        (
            DeltaTable.forPath(spark, uri)
            .alias("t")
            .merge(
                rows.alias("s"),
                "t.wallet_address = s.wallet_address AND t.token_address = s.token_address",
            )
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .whenNotMatchedBySourceDelete(in_list("t.wallet_address", params.wallets or ()))
            .execute()
        )
    finally:
        spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")


def run_spark_pnl(
    app: StageContext, params: PnlParams, mode: str, meta: CommitMeta
) -> PnlResult | None:
    """The whole stage on Spark: choose wallets, compute, write one commit."""
    lake = app.lake
    spark = build_session(app.config, lake.storage_options)
    register_inputs(spark, lake)
    scope = run_scope(params, mode, lambda: stale_wallets(spark, lake))
    if scope is None:
        return None
    params, mode = scope
    rows, stats = compute_pnl(spark, params)
    meta.extra.update(stats)
    try:
        write_rows(spark, lake, rows, params, mode == "full", meta)
    finally:
        rows.unpersist()
    return PnlResult(
        rows=None,
        wallets=stats["wallets"],
        token_rows=stats["rows"] - stats["wallets"],
        legs=stats["legs"],
        unpriced_legs=stats["unpriced"],
        rejected_trades=stats["rejected"],
        duplicate_trades=stats["duplicates"],
    )
