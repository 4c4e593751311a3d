"""The configuration, declared once: every key's type, default, help and allowed values.

defaults.yaml (with its comments), configs/smarttrader.yaml and docs/config.md are generated
from this module by `python -m smarttrader_cli.docs_gen`; the loader checks every key
against its rule at load. Every int and float key has a rule (tests/unit/config/test_config.py
makes sure), a `Literal` type is a choice, and no float may be NaN or infinite. The stream
half's sections (Helius, swaps, prices, webhook, stream, follow) are declared in stream_schema.py.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any, Literal

from smarttrader_cli.config.alerts_schema import CHANNELS, TIERS, AlertsConfig
from smarttrader_cli.config.rules import (
    ANY,
    FRACTION,
    MISSING,
    NONEMPTY,
    ONE_OR_MORE,
    PERCENT,
    POSITIVE,
    SHARE,
    ZERO_OR_MORE,
    Key,
    Relation,
    Rule,
    is_section,
    key,
    section,
)
from smarttrader_cli.config.stream_schema import (
    FollowConfig,
    HeliusConfig,
    PricesConfig,
    StreamConfig,
    SwapsConfig,
    WebhookConfig,
)
from smarttrader_cli.engines.pnl_windows import DEFAULT_WINDOWS, window_problem

Engine = Literal["duckdb", "spark"]


@dataclass
class LakeConfig:
    root: str = key("./data/lake", "local path or s3://bucket/prefix")
    storage_options: dict[str, str] = key(
        {},
        'S3 endpoint and region, e.g. {AWS_ENDPOINT_URL: "http://127.0.0.1:9000", '
        'AWS_REGION: us-east-1, AWS_ALLOW_HTTP: "true"}',
    )
    commit_retries: int = key(
        8, "attempts when a concurrent writer wins a Delta commit", ZERO_OR_MORE
    )
    vacuum_retention_hours: float = key(
        168,
        "files unreferenced for longer than this are removed by vacuum (also each table's "
        "delta.deletedFileRetentionDuration, or lake.frequent_log_retention_hours if shorter "
        "for the frequently written tables); keep it above the longest a reader holds a "
        "snapshot (a stage run, a drain)",
        ZERO_OR_MORE,
    )
    checkpoint_interval: int = key(
        20,
        "commits between Delta checkpoints (each table's delta.checkpointInterval): an open "
        "replays at most this many commits",
        ONE_OR_MORE,
    )
    log_retention_hours: float = key(
        168,
        "Delta log entries older than this are removed at the next checkpoint (each table's "
        "delta.logRetentionDuration); time travel reaches back this far",
        POSITIVE,
    )
    frequent_log_retention_hours: float = key(
        24,
        "log retention of the tables the 5- and 15-minute stages write (the stream's tables, "
        "ops.runs, ops.alerts), and how long their checkpoints keep removed files' records: "
        "every open and commit of a local table lists its whole log, so a week of 5-minute "
        "commits costs each of them; a stage whose cursor into one is older than this reads "
        "that table whole once",
        POSITIVE,
    )


@dataclass
class RuntimeConfig:
    state_dir: str = key("./data/state", "per-stage locks and other machine-local state")
    log_dir: str = key("./data/logs", "where cron runs keep their log files")


@dataclass
class BirdeyeConfig:
    base_url: str = key("https://public-api.birdeye.so", "BirdEye API (or the simulator)")
    chain: str = key("solana", "x-chain header")
    rate_limit_rps: float = key(
        15.0,
        "client-side pacing, summed over all endpoints (Lite/Starter plan); 0 = unpaced",
        ZERO_OR_MORE,
    )
    burst: int = key(5, "token-bucket burst size", ONE_OR_MORE)
    max_concurrency: int = key(4, "requests in flight at once", ONE_OR_MORE)
    timeout_seconds: float = key(10.0, "per-request timeout", POSITIVE)
    max_retries: int = key(
        6, "attempts after the first on 5xx, timeouts, connection errors", ZERO_OR_MORE
    )
    backoff_base_seconds: float = key(
        0.5, "first backoff; doubles each attempt, with full jitter", ZERO_OR_MORE
    )
    backoff_max_seconds: float = key(
        30.0, "ceiling of one backoff (and of an honoured Retry-After)", ZERO_OR_MORE
    )
    page_size: int = key(
        100,
        "items per page (token list, holders, trades); BirdEye's largest is 100",
        Rule(min=1, max=100),
    )
    max_offset: int = key(
        10000, "offset + limit cap; trades slide the time window past it", ONE_OR_MORE
    )
    max_rate_limited: int = key(
        30,
        "429s in a row one request may wait out (each halves the pace; successes win it back)",
        ZERO_OR_MORE,
    )
    ui_amount_mode: Literal["raw", "scaled"] = key(
        "raw", "sent on every call: raw (on-chain units, as Helius reports them) or scaled"
    )


@dataclass
class TokensConfig:
    limit: int = key(50, "tokens kept per run, best first", ONE_OR_MORE)
    sort_by: str = key("liquidity", "BirdEye v3 sort key")
    sort_type: Literal["asc", "desc"] = key("desc", "asc or desc")
    min_liquidity: float = key(100000.0, "USD", ZERO_OR_MORE)
    min_market_cap: float = key(1000000.0, "USD", ZERO_OR_MORE)
    min_volume_24h_usd: float = key(50000.0, "USD", ZERO_OR_MORE)
    min_holder: int = key(500, "holder count", ZERO_OR_MORE)
    min_trade_24h_count: int = key(100, "trades in the last 24 h", ZERO_OR_MORE)
    max_price_change_24h_percent: float = key(
        1000.0, "drop tokens that moved more than this in 24 h", ZERO_OR_MORE
    )


@dataclass
class WhalesConfig:
    top_holders: int = key(20, "holders fetched per token", ONE_OR_MORE)
    max_tokens: int = key(50, "tokens whose holders are fetched per run", ONE_OR_MORE)
    min_share_of_supply: float = key(0.0005, "a holder below this share is not a whale", FRACTION)
    refetch_after_hours: int = key(72, "a token fetched more recently is skipped", ZERO_OR_MORE)


TopTradersFrame = Literal["30m", "1h", "2h", "4h", "6h", "8h", "12h", "24h"]
GAINERS_PERIODS = ("yesterday", "today", "1W")


@dataclass
class DiscoveryConfig:
    top_traders: bool = key(
        False,
        "also follow each token's top traders (/defi/v2/tokens/top_traders, 10 per call); off "
        "by default: a trader can have a very long history to fetch",
    )
    top_traders_time_frame: TopTradersFrame = key("24h", "the top-traders window (24h longest)")
    top_traders_sort_by: Literal["volume", "trade"] = key(
        "volume", "rank traders by volume or trades"
    )
    top_traders_per_token: int = key(10, "traders kept per token and run", Rule(min=1, max=10000))
    gainers: bool = key(
        False, "also follow BirdEye's top wallets by PnL (/trader/gainers-losers, 10 per call)"
    )
    gainers_time_frames: list[str] = key(["1W"], "gainers lists fetched: yesterday, today, 1W")
    gainers_per_list: int = key(20, "wallets kept per gainers list and run", Rule(min=1, max=10000))
    refetch_after_hours: int = key(
        24, "a token's traders or a list fetched more recently is skipped", ZERO_OR_MORE
    )


@dataclass
class TradesConfig:
    lookback_days: int = key(30, "window for a wallet seen for the first time", ONE_OR_MORE)
    max_wallets_per_run: int = key(
        500,
        "wallets fetched per run (never fetched first, then least recently fetched)",
        ONE_OR_MORE,
    )
    max_trades_per_wallet: int = key(100000, "safety cap per wallet and run", ONE_OR_MORE)
    commit_every_wallets: int = key(50, "commit after this many completed wallets", ONE_OR_MORE)


@dataclass
class PnlConfig:
    quote_assets: list[str] = key(
        [
            "So11111111111111111111111111111111111111112",
            "So11111111111111111111111111111111111111111",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        ],
        "treated as cash: SOL/wSOL, USDC, USDT",
    )
    min_leg_usd: float = key(0.0, "legs worth less than this are ignored as dust", ZERO_OR_MORE)
    windows: list[str] = key(
        list(DEFAULT_WINDOWS),
        "PnL time windows (silver.wallet_pnl_windows): 'all' or a number + h/d, e.g. 12h, 7d",
    )


@dataclass
class TierConfig:
    """A tier's thresholds; each tier (gold.tiers) sets its own defaults."""

    min_total_pnl: float = key(MISSING, "at least this total PnL (USD)", ANY)
    min_roi: float = key(MISSING, "at least this ROI (fraction)", ANY)
    min_win_rate: float = key(MISSING, "at least this win rate (fraction)", FRACTION)
    min_trade_count: int = key(MISSING, "at least this many trades", ZERO_OR_MORE)
    # Window rules (silver.wallet_pnl_windows); not applied while silver has no windows.
    positive_windows: list[str] = key(MISSING, "windows (pnl.windows) whose total PnL must be > 0")
    min_closed_positions: int = key(
        MISSING, "at least this many closed positions in the ranking window", ZERO_OR_MORE
    )
    min_basis_coverage: float = key(
        MISSING, "at least this share of the window's sold quantity had a purchase", FRACTION
    )


@dataclass
class TiersConfig:
    elite: TierConfig = section(
        TierConfig,
        "elite tier: a wallet meeting every threshold",
        min_total_pnl=1000.0,
        min_roi=0.30,
        min_win_rate=0.60,
        min_trade_count=10,
        positive_windows=["7d", "30d"],
        min_closed_positions=3,
        min_basis_coverage=0.8,
    )
    strong: TierConfig = section(
        TierConfig,
        "strong tier: a wallet meeting every threshold (not elite); below strong is promising",
        min_total_pnl=100.0,
        min_roi=0.15,
        min_win_rate=0.40,
        min_trade_count=5,
        positive_windows=["30d"],
        min_closed_positions=2,
        min_basis_coverage=0.5,
    )


@dataclass
class ScoreConfig:
    weight_profitability: float = key(0.4, "weight of the PnL/ROI component", ZERO_OR_MORE)
    weight_win_rate: float = key(0.3, "weight of the win-rate component", ZERO_OR_MORE)
    weight_activity: float = key(0.3, "weight of the trade-count component", ZERO_OR_MORE)
    pnl_scale_usd: float = key(
        1000.0, "PnL at which the profitability component reaches 0.5", POSITIVE
    )
    roi_scale: float = key(
        1.0, "ROI (1.0 = 100 %) at which the ROI half of profitability reaches 0.5", POSITIVE
    )
    activity_scale_trades: float = key(
        20.0, "trades at which the activity component reaches 0.5", POSITIVE
    )


# Wallet flags (gold.wallet_flags); definitions and the reasoning: docs/scoring.md.
WALLET_FLAGS = (
    "bot",
    "sniper",
    "distributor",
    "off_curve",
    "invalid_address",
    "exchange",
    "burn",
    "program",
)


@dataclass
class ClassifyConfig:
    bot_max_trades_per_day: float = key(
        50.0, "bot: more swaps than this per UTC day with a swap", POSITIVE
    )
    bot_flip_seconds: int = key(
        30,
        "bot: a sell this soon after a buy of the same token is a flip (same block counts)",
        ZERO_OR_MORE,
    )
    bot_min_flip_share: float = key(0.5, "bot: at least this share of sells are flips", SHARE)
    bot_max_median_hold_seconds: float = key(
        120.0, "bot: median FIFO holding time of its sells below this (seconds)", ZERO_OR_MORE
    )
    bot_min_sells: int = key(
        10, "bot: the flip and holding-time rules need at least this many sells", ONE_OR_MORE
    )
    sniper_seconds: int = key(
        10, "sniper: a first buy this soon after the token's first trade seen", ZERO_OR_MORE
    )
    sniper_min_tokens: int = key(3, "sniper: on at least this many tokens", ONE_OR_MORE)
    sniper_min_share: float = key(
        0.5, "sniper: and on at least this share of the tokens it bought", SHARE
    )
    distributor_min_sold_to_bought: float = key(
        3.0, "distributor: sold (USD) at least this many times what it bought", POSITIVE
    )
    distributor_max_basis_coverage: float = key(
        0.5,
        "distributor: and less than this share of its sold quantity had a purchase",
        FRACTION,
    )


@dataclass
class GoldConfig:
    min_total_pnl: float = key(10.0, "USD, base filter", ANY)
    min_roi: float = key(0.01, "fraction (0.01 = 1 %), base filter", ANY)
    min_win_rate: float = key(0.40, "fraction, base filter", FRACTION)
    min_trade_count: int = key(1, "sells + buys, base filter", ZERO_OR_MORE)
    top_n: int = key(100, "rows printed by `st gold rank`", ONE_OR_MORE)
    tiers: TiersConfig = section(TiersConfig)
    score: ScoreConfig = section(ScoreConfig)
    exclude_flagged: bool = key(True, "leave wallets with an excluding flag out of the ranking")
    exclude_flags: list[str] = key(
        list(WALLET_FLAGS), f"the flags that exclude a wallet (of {', '.join(WALLET_FLAGS)})"
    )
    classify: ClassifyConfig = section(ClassifyConfig)
    window: str = key(
        "all", "the pnl.windows window the filters, tiers and score read (st gold rank --window)"
    )


@dataclass
class FlowsConfig:
    window_minutes: int = key(60, "gold.token_flows bucket size", ONE_OR_MORE)
    lookback_hours: int = key(24, "windows recomputed per run", ONE_OR_MORE)
    top_n: int = key(20, "rows printed by `st gold flows`", ONE_OR_MORE)


@dataclass
class MemoryConfig:
    min_free_mb: int = key(1024, "heavy stages refuse to start below this", ZERO_OR_MORE)
    duckdb_memory_fraction: float = key(0.6, "share of free memory given to DuckDB", SHARE)
    duckdb_max_memory_mb: int = key(
        2048, "ceiling of the DuckDB memory limit (past it, it spills)", ONE_OR_MORE
    )
    duckdb_threads: int = key(0, "0 = one per core", ZERO_OR_MORE)
    spark_memory_fraction: float = key(
        0.5, "share of free memory split between Spark driver and executor", SHARE
    )


@dataclass
class SparkConfig:
    master: str = key("local[*]", "local[*] or spark://host:7077", NONEMPTY)
    app_name: str = key("st-silver-pnl", "Spark application name")
    shuffle_partitions: int = key(8, "spark.sql.shuffle.partitions", ONE_OR_MORE)
    jar_cache: str = key("", "folder of Delta/hadoop-aws jars; empty = the project cache")
    executor_memory_mb: int = key(
        0,
        "per executor; 0 = split from free memory (fits local[*], not a small worker)",
        ZERO_OR_MORE,
    )


@dataclass
class OpsConfig:
    disk_warning_percent: float = key(
        80.0, "`st ops cleanup` and `st doctor` warn above this disk usage", PERCENT
    )
    disk_critical_percent: float = key(
        90.0, "above this, cleanup exits 1 and doctor fails", PERCENT
    )
    log_retention_days: int = key(
        30, "log files in runtime.log_dir older than this are removed", ZERO_OR_MORE
    )
    spool_retention_days: int = key(
        7, "spool segments already re-published and older than this are removed", ZERO_OR_MORE
    )
    stream_retention_days: int = key(
        7,
        "local-log segments already drained into bronze.webhook_events and older than this "
        "are removed",
        ZERO_OR_MORE,
    )
    runs_retention_days: int = key(
        400,
        "rows of ops.runs (the run ledger) for runs started longer ago than this are deleted",
        ONE_OR_MORE,
    )
    runs_compact_files: int = key(
        16,
        "`st ops cleanup` rewrites ops.runs into one file once it has this many files",
        ONE_OR_MORE,
    )
    compact_tables: list[str] = key(
        [
            "bronze.webhook_events",
            "bronze.webhook_dead_letters",
            "silver.webhook_swaps",
            "bronze.token_prices",
            "bronze.token_security",
            "gold.token_flows",
            "bronze.wallet_trades",
            "bronze.wallet_fetches",
            "bronze.api_rejects",
            "ops.runs",
        ],
        "tables `st ops compact` rewrites small files of (those written many times a day)",
    )
    compact_target_file_mb: int = key(
        64, "`st ops compact` writes files of about this size", ONE_OR_MORE
    )
    compact_open_file_mb: int = key(
        4,
        "in a table partitioned by day, `st ops compact` writes the newest day (still being "
        "written) in files of about this size, so it does not rewrite the whole day each "
        "time; the day is folded into `ops.compact_target_file_mb` files once a newer one "
        "exists",
        ONE_OR_MORE,
    )
    compact_min_files: int = key(
        8,
        "a table with fewer files below the target size than this is left as it is",
        Rule(min=2),
    )


@dataclass
class Config:
    engine: Engine = key("duckdb", "silver engine: duckdb (embedded) or spark")
    lake: LakeConfig = section(LakeConfig)
    runtime: RuntimeConfig = section(RuntimeConfig)
    birdeye: BirdeyeConfig = section(BirdeyeConfig)
    tokens: TokensConfig = section(TokensConfig)
    whales: WhalesConfig = section(WhalesConfig)
    discovery: DiscoveryConfig = section(DiscoveryConfig)
    trades: TradesConfig = section(TradesConfig)
    pnl: PnlConfig = section(PnlConfig)
    gold: GoldConfig = section(GoldConfig)
    flows: FlowsConfig = section(FlowsConfig)
    helius: HeliusConfig = section(HeliusConfig)
    swaps: SwapsConfig = section(SwapsConfig)
    prices: PricesConfig = section(PricesConfig)
    webhook: WebhookConfig = section(WebhookConfig)
    stream: StreamConfig = section(StreamConfig)
    follow: FollowConfig = section(FollowConfig)
    memory: MemoryConfig = section(MemoryConfig)
    spark: SparkConfig = section(SparkConfig)
    ops: OpsConfig = section(OpsConfig)
    alerts: AlertsConfig = section(AlertsConfig)


RELATIONS: tuple[Relation, ...] = (
    Relation(
        (
            "gold.score.weight_profitability",
            "gold.score.weight_win_rate",
            "gold.score.weight_activity",
        ),
        lambda *weights: sum(weights) > 0,
        "gold.score weights must not all be 0",
    ),
    Relation(
        ("pnl.windows",),
        lambda windows: window_problem(windows) is None,
        "pnl.windows must list distinct windows, each 'all' or a positive number + h or d",
    ),
    Relation(
        ("discovery.gainers_time_frames",),
        lambda frames: bool(frames) and set(frames) <= set(GAINERS_PERIODS),
        f"discovery.gainers_time_frames must be a non-empty list of {', '.join(GAINERS_PERIODS)}",
    ),
    Relation(
        ("gold.exclude_flagged", "gold.exclude_flags"),
        lambda _, flags: set(flags) <= set(WALLET_FLAGS),
        f"gold.exclude_flags may only name the flags {', '.join(WALLET_FLAGS)}",
    ),
    Relation(
        ("gold.window", "pnl.windows"),
        lambda window, windows: window in windows,
        "gold.window must be one of pnl.windows",
    ),
    Relation(
        ("gold.tiers.elite.positive_windows", "pnl.windows"),
        lambda wanted, windows: set(wanted) <= set(windows),
        "gold.tiers.elite.positive_windows must be windows of pnl.windows",
    ),
    Relation(
        ("gold.tiers.strong.positive_windows", "pnl.windows"),
        lambda wanted, windows: set(wanted) <= set(windows),
        "gold.tiers.strong.positive_windows must be windows of pnl.windows",
    ),
    Relation(
        ("ops.disk_warning_percent", "ops.disk_critical_percent"),
        lambda warning, critical: warning <= critical,
        "ops.disk_warning_percent must be <= ops.disk_critical_percent",
    ),
    # alerts (config/alerts_schema.py)
    Relation(
        ("alerts.channels",),
        lambda channels: set(channels) <= set(CHANNELS),
        f"alerts.channels may only name {', '.join(CHANNELS)}",
    ),
    Relation(
        ("alerts.retention_days", "alerts.rules.max_age_minutes"),
        lambda days, minutes: days * 24 * 60 > minutes,
        "alerts.retention_days must be longer than alerts.rules.max_age_minutes (or an "
        "expired alert could be raised again)",
    ),
    Relation(
        ("alerts.rules.wallet_buy.tiers",),
        lambda tiers: set(tiers) <= set(TIERS),
        f"alerts.rules.wallet_buy.tiers may only name {', '.join(TIERS)}",
    ),
    Relation(
        ("alerts.rules.confluence.tiers",),
        lambda tiers: set(tiers) <= set(TIERS),
        f"alerts.rules.confluence.tiers may only name {', '.join(TIERS)}",
    ),
)


@functools.cache
def keys() -> tuple[Key, ...]:
    """Every leaf key of Config in declaration order, with the defaults of Config()."""
    return tuple(_keys(Config(), ""))


def _keys(section_value: Any, prefix: str) -> list[Key]:
    hints = typing.get_type_hints(type(section_value))
    out: list[Key] = []
    for f in dataclasses.fields(section_value):
        tp, value, dotted = hints[f.name], getattr(section_value, f.name), prefix + f.name
        if is_section(tp):
            out += _keys(value, f"{dotted}.")
            continue
        rule = f.metadata.get("rule")
        if typing.get_origin(tp) is Literal:
            rule = Rule(choices=typing.get_args(tp))
        out.append(Key(dotted, tp, value, f.metadata.get("help", ""), rule))
    return out
