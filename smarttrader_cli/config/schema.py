"""Typed shape of the configuration and what each key allows; defaults live in defaults.yaml."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    keep_alive_timeout_seconds: float = 5.0
    max_header_bytes: int = 65536
    max_connections: int = 256


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


# --- what each value must be besides its type --------------------------------
# Declared once here; the loader checks every key at load (file:line in the error), and
# stages that take a Config built in code check it with config.loader.check_values.
# Every int and float key has a rule (tests/unit/test_config.py makes sure), and no
# float may be NaN or infinite whatever its rule.


@dataclass(frozen=True)
class Rule:
    """A key's allowed values: one of `choices`, or within min/max (`above`: strictly)."""

    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    above: float | None = None

    def problem(self, value: Any) -> str | None:
        """What `value` must be, when it is not; None when it fits."""
        if self.choices:
            if value in self.choices:
                return None
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        low_ok = (self.min is None or value >= self.min) and (
            self.above is None or value > self.above
        )
        if low_ok and (self.max is None or value <= self.max):
            return None
        if self.min is not None and self.max is not None:
            return f"must be between {self.min} and {self.max}, got {value!r}"
        if self.above is not None and self.max is not None:
            return f"must be > {self.above} and <= {self.max}, got {value!r}"
        if self.above is not None:
            return f"must be > {self.above}, got {value!r}"
        return f"must be >= {self.min}, got {value!r}"


@dataclass(frozen=True)
class Relation:
    """A rule over several keys: `holds(*values)`, else the error is `message`."""

    keys: tuple[str, ...]
    holds: Callable[..., bool]
    message: str


ANY = Rule()  # any finite number (a threshold that may be negative)
ZERO_OR_MORE = Rule(min=0)  # 0 means none, off, or no wait
ONE_OR_MORE = Rule(min=1)  # a count or size where 0 makes no sense
POSITIVE = Rule(above=0)  # a duration or scale that cannot be 0
FRACTION = Rule(min=0, max=1)
SHARE = Rule(above=0, max=1)  # a share of memory: 0 would leave nothing
PERCENT = Rule(min=0, max=100)
PORT = Rule(min=1, max=65535)

RULES: dict[str, Rule] = {
    "engine": Rule(choices=("duckdb", "spark")),
    "lake.commit_retries": ZERO_OR_MORE,
    "lake.vacuum_retention_hours": ZERO_OR_MORE,
    "birdeye.rate_limit_rps": ZERO_OR_MORE,  # 0 = unpaced (the simulator)
    "birdeye.burst": ONE_OR_MORE,
    "birdeye.max_concurrency": ONE_OR_MORE,
    "birdeye.timeout_seconds": POSITIVE,
    "birdeye.max_retries": ZERO_OR_MORE,
    "birdeye.backoff_base_seconds": ZERO_OR_MORE,
    "birdeye.backoff_max_seconds": ZERO_OR_MORE,
    "birdeye.page_size": Rule(min=1, max=100),  # BirdEye's largest page
    "birdeye.max_offset": ONE_OR_MORE,
    "birdeye.max_rate_limited": ZERO_OR_MORE,
    "birdeye.ui_amount_mode": Rule(choices=("raw", "scaled")),
    "tokens.limit": ONE_OR_MORE,
    "tokens.sort_type": Rule(choices=("asc", "desc")),
    "tokens.min_liquidity": ZERO_OR_MORE,
    "tokens.min_market_cap": ZERO_OR_MORE,
    "tokens.min_volume_24h_usd": ZERO_OR_MORE,
    "tokens.min_holder": ZERO_OR_MORE,
    "tokens.min_trade_24h_count": ZERO_OR_MORE,
    "tokens.max_price_change_24h_percent": ZERO_OR_MORE,
    "whales.top_holders": ONE_OR_MORE,
    "whales.max_tokens": ONE_OR_MORE,
    "whales.min_share_of_supply": FRACTION,
    "whales.refetch_after_hours": ZERO_OR_MORE,
    "trades.lookback_days": ONE_OR_MORE,
    "trades.max_wallets_per_run": ONE_OR_MORE,
    "trades.max_trades_per_wallet": ONE_OR_MORE,
    "trades.commit_every_wallets": ONE_OR_MORE,
    "pnl.min_leg_usd": ZERO_OR_MORE,
    "gold.min_total_pnl": ANY,
    "gold.min_roi": ANY,
    "gold.min_win_rate": FRACTION,
    "gold.min_trade_count": ZERO_OR_MORE,
    "gold.top_n": ONE_OR_MORE,
    **{
        f"gold.tiers.{tier}.{key}": rule
        for tier in ("elite", "strong")
        for key, rule in (
            ("min_total_pnl", ANY),
            ("min_roi", ANY),
            ("min_win_rate", FRACTION),
            ("min_trade_count", ZERO_OR_MORE),
        )
    },
    "gold.score.weight_profitability": ZERO_OR_MORE,
    "gold.score.weight_win_rate": ZERO_OR_MORE,
    "gold.score.weight_activity": ZERO_OR_MORE,
    "gold.score.pnl_scale_usd": POSITIVE,  # divides
    "gold.score.roi_scale": POSITIVE,
    "gold.score.activity_scale_trades": POSITIVE,
    "flows.window_minutes": ONE_OR_MORE,
    "flows.lookback_hours": ONE_OR_MORE,
    "flows.top_n": ONE_OR_MORE,
    "helius.max_addresses": ONE_OR_MORE,
    "helius.webhook_type": Rule(choices=("enhanced", "enhancedDevnet")),  # what silver parses
    "helius.timeout_seconds": POSITIVE,
    "helius.max_retries": ZERO_OR_MORE,
    "swaps.sol_dust": ZERO_OR_MORE,
    "prices.interval": Rule(
        choices=("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H", "12H", "1D")
    ),
    "prices.lookback_hours": ONE_OR_MORE,
    "prices.max_staleness_seconds": ZERO_OR_MORE,
    "webhook.port": PORT,
    "webhook.max_body_bytes": ONE_OR_MORE,
    "webhook.dedupe_window_seconds": ZERO_OR_MORE,
    "webhook.header_timeout_seconds": POSITIVE,
    "webhook.body_timeout_seconds": POSITIVE,
    "webhook.keep_alive_timeout_seconds": POSITIVE,
    "webhook.max_header_bytes": Rule(min=1024),  # a request line and a few headers
    "webhook.max_connections": ONE_OR_MORE,
    "stream.backend": Rule(choices=("kafka", "local")),
    "stream.partitions": ONE_OR_MORE,  # 0: every POST would get 503
    "stream.segment_bytes": ONE_OR_MORE,
    "stream.batch_size": ONE_OR_MORE,  # 0: the drain would spin without committing
    "stream.max_batch_bytes": ONE_OR_MORE,
    "stream.max_latency_seconds": ZERO_OR_MORE,
    "stream.producer_timeout_seconds": POSITIVE,
    "memory.min_free_mb": ZERO_OR_MORE,
    "memory.duckdb_memory_fraction": SHARE,
    "memory.duckdb_max_memory_mb": ONE_OR_MORE,
    "memory.duckdb_threads": ZERO_OR_MORE,  # 0 = one per core
    "memory.spark_memory_fraction": SHARE,
    "spark.shuffle_partitions": ONE_OR_MORE,
    "spark.executor_memory_mb": ZERO_OR_MORE,  # 0 = split from free memory
    "ops.disk_warning_percent": PERCENT,
    "ops.disk_critical_percent": PERCENT,
    "ops.log_retention_days": ZERO_OR_MORE,
    "ops.spool_retention_days": ZERO_OR_MORE,
    "ops.stream_retention_days": ZERO_OR_MORE,
}

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
        ("ops.disk_warning_percent", "ops.disk_critical_percent"),
        lambda warning, critical: warning <= critical,
        "ops.disk_warning_percent must be <= ops.disk_critical_percent",
    ),
)
