"""The one registry of lake tables: names, pyarrow schemas, natural keys."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from smarttrader_cli.errors import TableNotFoundError

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A Delta table of the lake: where it lives, its columns and its natural key."""

    name: str  # "layer.table", as addressed in SQL
    schema: pa.Schema
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    # Columns added after a table's first release, with the SQL value their rows had
    # before (a key column must not be null): see Lake.ensure_table.
    backfill: tuple[tuple[str, str], ...] = ()
    # Columns that hold the UTC date of a timestamp column, (date column, timestamp
    # column): Lake.conform sets them from it, so a day partition follows its rows' times.
    # A date column listed twice takes the first of its timestamps that is set.
    # A partition column of a merged table must be a function of the key: merges stay in
    # their rows' partitions (bronze.webhook_events is only appended to, one row a signature).
    dates_of: tuple[tuple[str, str], ...] = ()
    # Columns written without a Parquet dictionary: values nearly all distinct (a large
    # table's floats) make one a waste of the write's time (Lake.append, Lake.overwrite).
    plain_columns: tuple[str, ...] = ()

    @property
    def frequent(self) -> bool:
        """Whether stages write the table every few minutes (its log is kept shorter:
        lake/properties.py)."""
        return self.name in FREQUENTLY_WRITTEN

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def relative_path(self) -> str:
        """Location under lake.root: <layer>/<table>."""
        return f"{self.layer}/{self.short_name}"


# Written by the 5- and 15-minute stages of the crontab (and each run's ledger row).
FREQUENTLY_WRITTEN = frozenset(
    {
        "bronze.webhook_events",
        "bronze.webhook_dead_letters",
        "bronze.token_prices",
        "bronze.token_security",
        "silver.webhook_swaps",
        "silver.webhook_unpriced",
        "gold.token_flows",
        "ops.runs",
        "ops.alerts",
    }
)


def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


def _key(name: str, type_: pa.DataType = pa.string()) -> pa.Field:
    return pa.field(name, type_, nullable=False)


TOKEN_METRICS = TableSpec(
    "bronze.token_metrics",
    pa.schema(
        [
            _key("token_address"),
            _key("snapshot_at", TS),
            _f("symbol", pa.string()),
            _f("name", pa.string()),
            _f("decimals", pa.int32()),
            _f("price", pa.float64()),
            _f("liquidity", pa.float64()),
            _f("market_cap", pa.float64()),
            _f("fdv", pa.float64()),
            _f("volume_24h_usd", pa.float64()),
            _f("volume_24h_change_percent", pa.float64()),
            _f("price_change_24h_percent", pa.float64()),
            _f("trade_24h_count", pa.int64()),
            _f("buy_24h", pa.int64()),
            _f("sell_24h", pa.int64()),
            _f("unique_wallet_24h", pa.int64()),
            _f("holder", pa.int64()),
            _f("last_trade_unix_time", pa.int64()),
            _f("recent_listing_time", pa.int64()),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address", "snapshot_at"),
    "BirdEye token list rows, one per token and snapshot",
)

WHALE_HOLDERS = TableSpec(
    "bronze.whale_holders",
    pa.schema(
        [
            _key("token_address"),
            _key("wallet_address"),
            _key("snapshot_at", TS),
            _f("token_account", pa.string()),
            _f("holder_rank", pa.int32()),
            _f("amount_raw", pa.string()),
            _f("decimals", pa.int32()),
            _f("ui_amount", pa.float64()),
            _f("share_of_supply", pa.float64()),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address", "wallet_address", "snapshot_at"),
    "top holders of the selected tokens",
)

WALLET_SOURCES = TableSpec(
    "bronze.wallet_sources",
    pa.schema(
        [
            _key("source"),  # top_traders | gainers
            _key("scope"),  # the token (top_traders) or ALL_TOKENS (gainers)
            _key("time_frame"),  # 24h ... (top_traders); yesterday, today, 1W (gainers)
            _key("wallet_address"),
            _key("snapshot_at", TS),
            _f("rank", pa.int32()),
            _f("sort_by", pa.string()),
            _f("volume", pa.float64()),
            _f("trade_count", pa.int64()),
            _f("buy_count", pa.int64()),
            _f("sell_count", pa.int64()),
            _f("volume_buy", pa.float64()),
            _f("volume_sell", pa.float64()),
            _f("pnl", pa.float64()),
            _f("tags", pa.string()),  # comma-separated, as the list gave them
            _f("network", pa.string()),
            _f("run_id", pa.string()),
        ]
    ),
    ("source", "scope", "time_frame", "wallet_address", "snapshot_at"),
    "wallets found by discovery (a token's top traders, the gainers list), one row per "
    "list entry and snapshot; the holders are in bronze.whale_holders",
)

WALLET_TRADES = TableSpec(
    "bronze.wallet_trades",
    pa.schema(
        [
            _key("tx_hash"),
            _key("ins_index", pa.int32()),
            _key("inner_ins_index", pa.int32()),
            _key("fill_id"),
            _key("wallet_address"),
            _key("block_unix_time", pa.int64()),
            _f("block_number", pa.int64()),
            _f("source", pa.string()),
            # what the wallet gave up
            _f("from_token_address", pa.string()),
            _f("from_symbol", pa.string()),
            _f("from_decimals", pa.int32()),
            _f("from_amount_raw", pa.string()),
            _f("from_amount", pa.float64()),
            _f("from_price_usd", pa.float64()),
            # what the wallet received
            _f("to_token_address", pa.string()),
            _f("to_symbol", pa.string()),
            _f("to_decimals", pa.int32()),
            _f("to_amount_raw", pa.string()),
            _f("to_amount", pa.float64()),
            _f("to_price_usd", pa.float64()),
            _f("volume_usd", pa.float64()),
            _f("fetched_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("tx_hash", "ins_index", "inner_ins_index", "fill_id", "wallet_address"),
    "one row per swap with both legs, from BirdEye wallet history "
    "(an index of -1: the API gave none; fill_id tells apart fills without one)",
    backfill=(("fill_id", "''"),),
)

WALLET_FETCHES = TableSpec(
    "bronze.wallet_fetches",
    pa.schema(
        [
            _key("wallet_address"),
            _f("fetched_at", TS),
            _f("window_after", pa.int64()),
            _f("window_before", pa.int64()),
            _f("trades", pa.int64()),
            _f("capped", pa.bool_()),
            _f("run_id", pa.string()),
        ]
    ),
    ("wallet_address",),
    "when each whale wallet's swap history was last fetched, and the window asked for",
)

API_REJECTS = TableSpec(
    "bronze.api_rejects",
    pa.schema(
        [
            _key("rejected_at", TS),
            _key("endpoint"),
            _f("request", pa.string()),
            _f("reason", pa.string()),
            _f("raw", pa.string()),
            _f("run_id", pa.string()),
            _f("reject_id", pa.string()),  # digest of endpoint and raw record
        ]
    ),
    ("reject_id",),
    "API records that could not be parsed, with the reason and the raw body (once each)",
)

TOKEN_PRICES = TableSpec(
    "bronze.token_prices",
    pa.schema(
        [
            _key("token_address"),
            _key("unix_time", pa.int64()),
            _f("price_usd", pa.float64()),
            _f("source", pa.string()),  # the BirdEye endpoint the point came from
            _f("fetched_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address", "unix_time"),
    "USD prices over time of the assets that price real-time legs (SOL), from BirdEye",
)

TOKEN_SECURITY = TableSpec(
    "bronze.token_security",
    pa.schema(
        [
            _key("token_address"),
            _f("known", pa.bool_()),  # BirdEye answered with facts (not a null `data`)
            _f("mint_authority", pa.string()),  # its ownerAddress (unconfirmed: alerts.md)
            _f("freeze_authority", pa.string()),
            _f("freezeable", pa.bool_()),
            _f("top10_holder_share", pa.float64()),  # a fraction 0-1
            _f("liquidity_usd", pa.float64()),  # from multi_price include_liquidity
            _f("mutable_metadata", pa.bool_()),
            _f("token_2022", pa.bool_()),
            _f("fake_token", pa.bool_()),
            _f("fetched_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address",),
    "BirdEye's security facts of the tokens alerts were raised on, the latest per token "
    "(the safety gate's cache)",
)

WALLET_PNL = TableSpec(
    "silver.wallet_pnl",
    pa.schema(
        [
            _key("wallet_address"),
            _key("token_address"),
            _f("realized_pnl", pa.float64()),
            _f("unrealized_pnl", pa.float64()),
            _f("total_pnl", pa.float64()),
            _f("trade_count", pa.int64()),
            _f("buy_count", pa.int64()),
            _f("sell_count", pa.int64()),
            _f("winning_sells", pa.int64()),
            _f("win_rate", pa.float64()),
            _f("total_bought", pa.float64()),
            _f("total_sold", pa.float64()),
            _f("matched_cost", pa.float64()),
            _f("roi", pa.float64()),
            _f("current_position_tokens", pa.float64()),
            _f("current_position_cost_basis", pa.float64()),
            _f("current_position_value", pa.float64()),
            _f("avg_holding_time_hours", pa.float64()),
            _f("trade_frequency_daily", pa.float64()),
            _f("first_trade_at", TS),
            _f("last_trade_at", TS),
            _f("unmatched_sell_qty", pa.float64()),
            _f("unpriced_leg_count", pa.int64()),
            _f("calculated_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("wallet_address", "token_address"),
    "FIFO PnL per wallet and token, plus one ALL_TOKENS row per wallet",
)

# PnL by time window (issue 13; docs/pnl.md §8): silver.wallet_pnl's rows once per window
# of `pnl.windows`, each window ending at the run's as_of.
WALLET_PNL_WINDOWS = TableSpec(
    "silver.wallet_pnl_windows",
    pa.schema(
        [
            _key("wallet_address"),
            _key("token_address"),
            _key("window"),
            _f("window_start", TS),
            _f("window_end", TS),
            _f("realized_pnl", pa.float64()),
            _f("unrealized_pnl", pa.float64()),
            _f("total_pnl", pa.float64()),
            _f("trade_count", pa.int64()),
            _f("buy_count", pa.int64()),
            _f("sell_count", pa.int64()),
            _f("winning_sells", pa.int64()),
            _f("win_rate", pa.float64()),
            _f("roi", pa.float64()),
            _f("volume_usd", pa.float64()),
            _f("total_bought", pa.float64()),
            _f("total_sold", pa.float64()),
            _f("matched_cost", pa.float64()),
            _f("sold_qty", pa.float64()),
            _f("matched_qty", pa.float64()),
            _f("basis_coverage", pa.float64()),
            _f("closed_positions", pa.int64()),
            # win_rate's denominator and basis_coverage's USD numerator (ALL_TOKENS rows):
            # what later runs need to move a window without a FIFO
            _f("counted_sells", pa.int64()),
            _f("matched_proceeds", pa.float64()),
            _f("calculated_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("wallet_address", "token_address", "window"),
    "FIFO PnL per wallet, token and time window (pnl.windows), plus ALL_TOKENS rows",
    # Its floats: a dictionary per column of 2.5M nearly distinct values (10M trades)
    # doubled the time of its write.
    plain_columns=(
        "realized_pnl",
        "unrealized_pnl",
        "total_pnl",
        "win_rate",
        "roi",
        "volume_usd",
        "total_bought",
        "total_sold",
        "matched_cost",
        "sold_qty",
        "matched_qty",
        "basis_coverage",
        "matched_proceeds",
    ),
)

# The DuckDB engine's incremental state (docs/pnl.md §7): the latest price of every token as
# the last run valued open positions at, and the traded leg it came from when no snapshot
# priced it. Its commit carries the bronze.wallet_trades version it was built through.
WALLET_PNL_PRICES = TableSpec(
    "silver.wallet_pnl_prices",
    pa.schema(
        [
            _key("token_address"),
            _f("price", pa.float64()),
            _f("snapshot_price", pa.float64()),
            _f("traded_price", pa.float64()),
            _f("traded_at", pa.int64()),
            _f("traded_tx", pa.string()),
            _f("traded_ins_index", pa.int32()),
            _f("traded_inner_ins_index", pa.int32()),
            _f("traded_wallet", pa.string()),
            _f("calculated_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address",),
    "the latest price per token that silver.wallet_pnl values open positions at, and the "
    "traded leg it came from (the DuckDB engine's incremental state)",
)

# Every priced leg's part in the windows (docs/pnl.md §7): a sell's FIFO result, a buy's
# cost. When the windows' end moves, the legs that left a window are subtracted from it
# (no FIFO). Written sorted by time: a window edge's legs are read from few files.
WALLET_PNL_LEDGER = TableSpec(
    "silver.wallet_pnl_ledger",
    pa.schema(
        [
            _key("wallet_address"),
            _key("token_address"),
            _key("leg", pa.int64()),  # position in the (wallet, token)'s leg order
            _f("block_unix_time", pa.int64()),
            _f("is_buy", pa.bool_()),
            _f("value_usd", pa.float64()),
            _f("sold_qty", pa.float64()),
            _f("matched_qty", pa.float64()),
            _f("matched_cost", pa.float64()),
            _f("realized_pnl", pa.float64()),
            _f("counts", pa.bool_()),  # counts for win rate
            _f("wins", pa.bool_()),
            _f("leg_date", pa.date32()),  # the UTC day of block_unix_time: the partition
        ]
    ),
    ("wallet_address", "token_address", "leg"),
    "every priced PnL leg with its FIFO result (sells) or cost (buys), for moving the "
    "windows without a FIFO (the DuckDB engine's incremental state), partitioned by the "
    "UTC day of the leg",
    partition_by=("leg_date",),
    plain_columns=(
        "leg",
        "block_unix_time",
        "value_usd",
        "sold_qty",
        "matched_qty",
        "matched_cost",
        "realized_pnl",
    ),
)

SMART_WALLETS = TableSpec(
    "gold.smart_wallets",
    pa.schema(
        [
            _key("wallet_address"),
            _f("rank", pa.int64()),
            _f("tier", pa.string()),
            _f("score", pa.float64()),
            _f("total_pnl", pa.float64()),
            _f("realized_pnl", pa.float64()),
            _f("unrealized_pnl", pa.float64()),
            _f("roi", pa.float64()),
            _f("win_rate", pa.float64()),
            _f("trade_count", pa.int64()),
            _f("total_bought", pa.float64()),
            _f("total_sold", pa.float64()),
            _f("avg_holding_time_hours", pa.float64()),
            _f("trade_frequency_daily", pa.float64()),
            _f("first_trade_at", TS),
            _f("last_trade_at", TS),
            _f("rank_window", pa.string()),  # the pnl.windows window the metrics are from
            _f("closed_positions", pa.int64()),  # in that window (null: silver has no windows)
            _f("basis_coverage", pa.float64()),  # in that window
            _f("ranked_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("wallet_address",),
    "qualified smart traders with tier, score and rank",
)

WALLET_FLAGS = TableSpec(
    "gold.wallet_flags",
    pa.schema(
        [
            _key("wallet_address"),
            _f("is_flagged", pa.bool_()),
            _f("flags", pa.string()),  # comma-separated, in config.schema.WALLET_FLAGS order
            _f("reasons", pa.string()),  # one per flag and rule, "; "-separated
            _f("excluded", pa.bool_()),  # a flag of gold.exclude_flags kept it out of the ranking
            _f("is_holder", pa.bool_()),
            _f("is_trader", pa.bool_()),
            _f("on_curve", pa.bool_()),
            _f("address_error", pa.string()),
            _f("known_kind", pa.string()),
            _f("known_name", pa.string()),
            _f("swap_count", pa.int64()),
            _f("active_days", pa.int64()),
            _f("trades_per_active_day", pa.float64()),
            _f("sell_count", pa.int64()),
            _f("flip_count", pa.int64()),
            _f("flip_share", pa.float64()),
            _f("matched_sell_count", pa.int64()),
            _f("median_hold_seconds", pa.float64()),
            _f("tokens_bought", pa.int64()),
            _f("sniped_tokens", pa.int64()),
            _f("sniped_share", pa.float64()),
            _f("total_bought", pa.float64()),
            _f("total_sold", pa.float64()),
            _f("basis_coverage", pa.float64()),
            _f("classified_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("wallet_address",),
    "every wallet seen by gold.rank with its flags (bot, sniper, distributor, non-trader "
    "accounts), the reasons and the numbers behind them",
)

WEBHOOK_EVENTS = TableSpec(
    "bronze.webhook_events",
    pa.schema(
        [
            _key("signature"),
            _f("stream_partition", pa.int32()),
            _f("stream_offset", pa.int64()),
            _f("event_type", pa.string()),
            _f("source", pa.string()),
            _f("slot", pa.int64()),
            _f("event_timestamp", pa.int64()),
            _f("fee_payer", pa.string()),
            _f("payload", pa.string()),
            _f("received_at", TS),
            _f("ingested_at", TS),
            _f("run_id", pa.string()),
            # the UTC day of received_at (of ingested_at for an event without it): the partition
            _f("received_date", pa.date32()),
        ]
    ),
    ("signature",),
    "raw Helius webhook events with their stream offset, partitioned by the UTC day they "
    "were received",
    partition_by=("received_date",),
    dates_of=(("received_date", "received_at"), ("received_date", "ingested_at")),
)

WEBHOOK_DEAD_LETTERS = TableSpec(
    "bronze.webhook_dead_letters",
    pa.schema(
        [
            _key("stream_partition", pa.int32()),
            _key("stream_offset", pa.int64()),
            _f("raw", pa.string()),
            _f("error", pa.string()),
            _f("ingested_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("stream_partition", "stream_offset"),
    "stream messages that could not be parsed, with the error",
)

WEBHOOK_SWAPS = TableSpec(
    "silver.webhook_swaps",
    pa.schema(
        [
            _key("signature"),
            _key("wallet"),
            _key("leg", pa.int32()),
            _f("direction", pa.string()),  # buy (received) or sell (gave up)
            _f("token_address", pa.string()),
            _f("amount", pa.float64()),
            _f("price_usd", pa.float64()),
            _f("value_usd", pa.float64()),
            _f("source", pa.string()),
            _f("event_type", pa.string()),
            _f("slot", pa.int64()),
            _f("event_time", TS),
            _f("parsed_from", pa.string()),  # balances: the wallet's own balance changes
            _f("is_smart_wallet", pa.bool_()),
            _f("amount_raw", pa.string()),
            _f("decimals", pa.int32()),
            _f("price_source", pa.string()),  # stablecoin, price_table, quote_leg, token_snapshot
            _f("unpriced_reason", pa.string()),  # why value_usd is unknown (null when priced)
            _f("processed_at", TS),
            _f("run_id", pa.string()),
            _f("event_date", pa.date32()),  # the UTC day of event_time: the partition
        ]
    ),
    ("signature", "wallet", "leg"),
    "swap legs parsed from webhook events, partitioned by the UTC day of their event",
    partition_by=("event_date",),
    dates_of=(("event_date", "event_time"),),
)

WEBHOOK_UNPRICED = TableSpec(
    "silver.webhook_unpriced",
    pa.schema(
        [
            _key("signature"),
            _key("wallet"),
            _key("leg", pa.int32()),
            _f("direction", pa.string()),
            _f("token_address", pa.string()),
            _f("amount", pa.float64()),
            _f("amount_raw", pa.string()),
            _f("decimals", pa.int32()),
            _f("parsed_from", pa.string()),
            _f("event_time", TS),
            _f("price_usd", pa.float64()),
            _f("value_usd", pa.float64()),
            _f("price_source", pa.string()),
            _f("unpriced_reason", pa.string()),
            _f("is_smart_wallet", pa.bool_()),
        ]
    ),
    ("signature", "wallet", "leg"),
    "the legs, as silver.webhook_swaps holds them, of its events of prices.lookback_hours "
    "with a leg still unpriced: what st silver webhooks values again each run",
)

TOKEN_FLOWS = TableSpec(
    "gold.token_flows",
    pa.schema(
        [
            _key("token_address"),
            _key("window_start", TS),
            _f("window_minutes", pa.int32()),
            _f("buy_volume_usd", pa.float64()),
            _f("sell_volume_usd", pa.float64()),
            _f("net_flow_usd", pa.float64()),
            _f("buy_count", pa.int64()),
            _f("sell_count", pa.int64()),
            _f("smart_buyers", pa.int64()),
            _f("smart_sellers", pa.int64()),
            _f("unpriced_buy_count", pa.int64()),
            _f("unpriced_sell_count", pa.int64()),
            _f("computed_at", TS),
            _f("run_id", pa.string()),
        ]
    ),
    ("token_address", "window_start"),
    "smart-wallet buy and sell flow per token and time window",
)

RUNS = TableSpec(
    "ops.runs",
    pa.schema(
        [
            _key("run_id"),
            _f("stage", pa.string()),
            _f("status", pa.string()),  # running, succeeded, failed
            _f("started_at", TS),
            _f("ended_at", TS),
            _f("duration_seconds", pa.float64()),
            _f("rows_in", pa.int64()),
            _f("rows_out", pa.int64()),
            _f("error", pa.string()),
            _f("config_hash", pa.string()),
            _f("args", pa.string()),
            _f("host", pa.string()),
            _f("pid", pa.int64()),
            _f("api_requests", pa.int64()),
            _f("api_retries", pa.int64()),
            _f("api_rate_limited", pa.int64()),
        ]
    ),
    ("run_id",),
    "the run ledger: one row per stage run",
)

# --- alerts (smarttrader_cli/alerts/) -------------------------------------------------
ALERTS = TableSpec(
    "ops.alerts",
    pa.schema(
        [
            _key("alert_id"),  # digest of (rule, token, window or signature)
            _key("channel"),
            _f("rule", pa.string()),
            _f("token_address", pa.string()),
            _f("alert_key", pa.string()),  # the window or signature that makes it unique
            _f("text", pa.string()),
            _f("payload", pa.string()),  # the JSON body the generic webhook signs and sends
            _f("event_time", TS),  # when what the alert is about happened
            _f("state", pa.string()),  # pending, sending, sent, dead, blocked
            _f("attempts", pa.int64()),
            _f("uncertain_sends", pa.int64()),  # resent after a crash left it in flight
            _f("replays", pa.int64()),
            _f("last_status", pa.int32()),
            _f("last_error", pa.string()),
            _f("created_at", TS),
            _f("next_attempt_at", TS),
            _f("claimed_at", TS),
            _f("sent_at", TS),
            _f("updated_at", TS),
            _f("run_id", pa.string()),
            _f("safety", pa.string()),  # the gate's verdict: passed, blocked, unknown (null: none)
            _f("safety_reasons", pa.string()),  # why blocked or unknown, "; "-joined
        ]
    ),
    ("alert_id", "channel"),
    "the alerts outbox: one row per alert and channel, committed before it is sent",
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TOKEN_METRICS,
        WHALE_HOLDERS,
        WALLET_SOURCES,
        WALLET_TRADES,
        WALLET_FETCHES,
        API_REJECTS,
        TOKEN_PRICES,
        TOKEN_SECURITY,
        WALLET_PNL,
        WALLET_PNL_WINDOWS,
        WALLET_PNL_PRICES,
        WALLET_PNL_LEDGER,
        SMART_WALLETS,
        WALLET_FLAGS,
        WEBHOOK_EVENTS,
        WEBHOOK_DEAD_LETTERS,
        WEBHOOK_SWAPS,
        WEBHOOK_UNPRICED,
        TOKEN_FLOWS,
        RUNS,
        ALERTS,
    )
}


def table_spec(name: str) -> TableSpec:
    """Look a table up by `layer.table`; TableNotFoundError names the known ones."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise TableNotFoundError(f"unknown table {name!r}; known tables: {known}") from None
