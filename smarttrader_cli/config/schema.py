"""Typed shape of the configuration; defaults live in defaults.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LakeConfig:
    root: str = "./data/lake"
    storage_options: dict[str, str] = field(default_factory=dict)
    commit_retries: int = 8
    vacuum_retention_hours: int = 168


@dataclass
class RuntimeConfig:
    state_dir: str = "./data/state"
    log_dir: str = "./data/logs"


@dataclass
class BirdeyeConfig:
    base_url: str = "https://public-api.birdeye.so"
    chain: str = "solana"
    rate_limit_rps: float = 15.0
    burst: int = 5
    max_concurrency: int = 4
    timeout_seconds: float = 10.0
    max_retries: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    page_size: int = 100
    max_offset: int = 10000
    max_rate_limited: int = 30
    ui_amount_mode: str = "raw"


@dataclass
class TokensConfig:
    limit: int = 50
    sort_by: str = "liquidity"
    sort_type: str = "desc"
    min_liquidity: float = 100000.0
    min_market_cap: float = 1000000.0
    min_volume_24h_usd: float = 50000.0
    min_holder: int = 500
    min_trade_24h_count: int = 100
    max_price_change_24h_percent: float = 1000.0


@dataclass
class WhalesConfig:
    top_holders: int = 20
    max_tokens: int = 50
    min_share_of_supply: float = 0.0005
    refetch_after_hours: int = 72


@dataclass
class TradesConfig:
    lookback_days: int = 30
    max_wallets_per_run: int = 500
    max_trades_per_wallet: int = 100000
    commit_every_wallets: int = 50


@dataclass
class PnlConfig:
    quote_assets: list[str] = field(default_factory=list)
    min_leg_usd: float = 0.0


@dataclass
class TierConfig:
    min_total_pnl: float = 0.0
    min_roi: float = 0.0
    min_win_rate: float = 0.0
    min_trade_count: int = 0


@dataclass
class TiersConfig:
    elite: TierConfig = field(default_factory=TierConfig)
    strong: TierConfig = field(default_factory=TierConfig)


@dataclass
class ScoreConfig:
    weight_profitability: float = 0.4
    weight_win_rate: float = 0.3
    weight_activity: float = 0.3
    pnl_scale_usd: float = 1000.0
    roi_scale: float = 1.0
    activity_scale_trades: float = 20.0


@dataclass
class GoldConfig:
    min_total_pnl: float = 10.0
    min_roi: float = 0.01
    min_win_rate: float = 0.40
    min_trade_count: int = 1
    top_n: int = 100
    tiers: TiersConfig = field(default_factory=TiersConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)


@dataclass
class FlowsConfig:
    window_minutes: int = 60
    lookback_hours: int = 24
    top_n: int = 20


@dataclass
class HeliusConfig:
    api_base_url: str = "https://api.helius.xyz"
    webhook_url: str = ""
    max_addresses: int = 1000
    transaction_types: list[str] = field(default_factory=lambda: ["SWAP", "TRANSFER", "UNKNOWN"])
    webhook_type: str = "enhanced"
    timeout_seconds: float = 15.0
    max_retries: int = 4


@dataclass
class SwapsConfig:
    sol_dust: float = 0.01


@dataclass
class PricesConfig:
    assets: list[str] = field(
        default_factory=lambda: ["So11111111111111111111111111111111111111112"]
    )
    stablecoins: list[str] = field(
        default_factory=lambda: [
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        ]
    )
    interval: str = "5m"
    lookback_hours: int = 48
    max_staleness_seconds: int = 900


@dataclass
class WebhookConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1048576
    dedupe_window_seconds: int = 600
    spool_dir: str = "./data/spool"


@dataclass
class StreamConfig:
    backend: str = "local"
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "helius-webhooks"
    group_id: str = "st-drain"
    partitions: int = 3
    local_dir: str = "./data/stream"
    segment_bytes: int = 67108864
    batch_size: int = 5000
    max_batch_bytes: int = 16777216
    max_latency_seconds: float = 5.0
    producer_timeout_seconds: float = 5.0


@dataclass
class MemoryConfig:
    min_free_mb: int = 1024
    duckdb_memory_fraction: float = 0.6
    duckdb_max_memory_mb: int = 2048
    duckdb_threads: int = 0
    spark_memory_fraction: float = 0.5


@dataclass
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "st-silver-pnl"
    shuffle_partitions: int = 8
    jar_cache: str = ""
    executor_memory_mb: int = 0


@dataclass
class OpsConfig:
    disk_warning_percent: float = 80.0
    disk_critical_percent: float = 90.0
    log_retention_days: int = 30
    spool_retention_days: int = 7
    stream_retention_days: int = 7


@dataclass
class Config:
    engine: str = "duckdb"
    lake: LakeConfig = field(default_factory=LakeConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    birdeye: BirdeyeConfig = field(default_factory=BirdeyeConfig)
    tokens: TokensConfig = field(default_factory=TokensConfig)
    whales: WhalesConfig = field(default_factory=WhalesConfig)
    trades: TradesConfig = field(default_factory=TradesConfig)
    pnl: PnlConfig = field(default_factory=PnlConfig)
    gold: GoldConfig = field(default_factory=GoldConfig)
    flows: FlowsConfig = field(default_factory=FlowsConfig)
    helius: HeliusConfig = field(default_factory=HeliusConfig)
    swaps: SwapsConfig = field(default_factory=SwapsConfig)
    prices: PricesConfig = field(default_factory=PricesConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)


# Keys whose value must be one of a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {
    "engine": ("duckdb", "spark"),
    "stream.backend": ("kafka", "local"),
    "tokens.sort_type": ("asc", "desc"),
    "birdeye.ui_amount_mode": ("raw", "scaled"),
    "prices.interval": ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H", "12H", "1D"),
}
