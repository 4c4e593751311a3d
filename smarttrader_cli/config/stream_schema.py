"""The stream half's configuration: Helius, swap parsing, prices, the webhook receiver, the stream.

Part of the schema (`config/schema.py` composes these sections into `Config`); declared
the same way, with each key's default, help and rule on its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smarttrader_cli.config.rules import ONE_OR_MORE, POSITIVE, ZERO_OR_MORE, Rule, key

Interval = Literal["1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "8H", "12H", "1D"]


@dataclass
class HeliusConfig:
    api_base_url: str = key("https://api.helius.xyz", "Helius API (or the simulator)")
    webhook_url: str = key(
        "", "where Helius delivers; empty disables `st helius sync` in the pipeline"
    )
    max_addresses: int = key(1000, "top smart wallets pushed to the webhook", ONE_OR_MORE)
    transaction_types: list[str] = key(
        ["SWAP", "TRANSFER", "UNKNOWN"],
        "what the webhook delivers; real swaps also arrive as TRANSFER/UNKNOWN "
        "(1 credit per event delivered, 100 per webhook edit)",
    )
    webhook_type: Literal["enhanced", "enhancedDevnet"] = key(
        "enhanced", "enhanced (parsed transactions, what silver reads) or enhancedDevnet"
    )
    timeout_seconds: float = key(15.0, "per-request timeout for the Helius API", POSITIVE)
    max_retries: int = key(
        4,
        "attempts after the first on 429/5xx (POST only on 429 and refused connections)",
        ZERO_OR_MORE,
    )
    backoff_base_seconds: float = key(
        0.5, "first backoff; doubles each attempt, with full jitter", ZERO_OR_MORE
    )
    backoff_max_seconds: float = key(
        10.0, "ceiling of one backoff (and of an honoured Retry-After)", ZERO_OR_MORE
    )


@dataclass
class SwapsConfig:
    sol_dust: float = key(
        0.01,
        "SOL; a net SOL change below this in a swap of two other tokens is a fee, not a leg",
        ZERO_OR_MORE,
    )


@dataclass
class PricesConfig:
    assets: list[str] = key(
        ["So11111111111111111111111111111111111111112"],
        "priced over time by `st bronze prices` (BirdEye history) for real-time legs",
    )
    stablecoins: list[str] = key(
        [
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB",
        ],
        "valued at 1 USD without a lookup: USDC, USDT",
    )
    interval: Interval = key("5m", "BirdEye history_price resolution (1m ... 1D)")
    lookback_hours: int = key(
        48,
        "history fetched on the first run (later runs continue from the last point)",
        ONE_OR_MORE,
    )
    max_staleness_seconds: int = key(
        900, "a price point older than this before an event does not price it", ZERO_OR_MORE
    )


@dataclass
class WebhookConfig:
    host: str = key("127.0.0.1", "`st webhook serve` bind address")
    port: int = key(8000, "`st webhook serve` port", Rule(min=1, max=65535))
    max_body_bytes: int = key(1048576, "larger bodies get 413", ONE_OR_MORE)
    dedupe_window_seconds: int = key(
        600,
        "repeated signatures within this window are acknowledged, not republished",
        ZERO_OR_MORE,
    )
    spool_dir: str = key("./data/spool", "fsynced events while the broker is unreachable")
    header_timeout_seconds: float = key(
        10.0,
        "a request's headers must all arrive within this (else 408 and closed; "
        "idle new connections closed)",
        POSITIVE,
    )
    body_timeout_seconds: float = key(
        10.0,
        "the whole body must arrive within this once the headers are in (else 408 and closed)",
        POSITIVE,
    )
    keep_alive_timeout_seconds: float = key(
        5.0, "an idle kept-alive connection is closed after this", POSITIVE
    )
    max_header_bytes: int = key(
        65536,
        "larger request headers get 431 and the connection closed; "
        "at least 1024 (a request line and a few headers)",
        Rule(min=1024),
    )
    max_connections: int = key(
        256,
        "open connections served at once; requests on more get 503 (Helius retries)",
        ONE_OR_MORE,
    )


@dataclass
class StreamConfig:
    backend: Literal["kafka", "local"] = key(
        "local", "kafka (Redpanda/Apache Kafka) or local (embedded on-disk log)"
    )
    bootstrap_servers: str = key("127.0.0.1:9092", "Kafka/Redpanda brokers (kafka backend)")
    topic: str = key("helius-webhooks", "topic (or local log name) the webhook server publishes to")
    group_id: str = key(
        "st-drain", "consumer group of `st stream drain` (offsets live in the Delta log)"
    )
    partitions: int = key(
        3,
        "partitions of the local log (and of the topic when st creates it); "
        "0 would answer every POST 503",
        ONE_OR_MORE,
    )
    local_dir: str = key("./data/stream", "the local backend's segment log")
    segment_bytes: int = key(67108864, "local log segment size", ONE_OR_MORE)
    batch_size: int = key(5000, "messages per Delta commit", ONE_OR_MORE)
    max_batch_bytes: int = key(16777216, "bytes per Delta commit", ONE_OR_MORE)
    max_latency_seconds: float = key(
        5.0, "a partial batch is committed after this long", ZERO_OR_MORE
    )
    producer_timeout_seconds: float = key(5.0, "broker ack wait before spooling", POSITIVE)
    producer_linger_ms: int = key(
        2, "kafka producer: how long a message waits to share a request", Rule(min=0, max=1000)
    )
    producer_max_in_flight: int = key(
        2,
        "kafka producer: produce requests awaiting the broker at once (idempotence allows "
        "up to 5); what arrives meanwhile waits for the next request, so batches grow "
        "with load (5 costs librdkafka's broker thread 4-6x the CPU per event of 1 or 2)",
        Rule(min=1, max=5),
    )
    producer_compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = key(
        "lz4", "kafka producer: compression of each request's batches"
    )


@dataclass
class FollowConfig:
    batch_latency_seconds: float = key(
        0.05,
        "`st follow`: a batch is committed at most this long after its first event arrived "
        "(under load batches grow by themselves: what arrives during a commit is the next one)",
        ZERO_OR_MORE,
    )
    silver_interval_seconds: float = key(
        30.0,
        "`st follow`: seconds between merges of new events into silver.webhook_swaps",
        POSITIVE,
    )
    flows_interval_seconds: float = key(
        1800.0,
        "`st follow`: seconds between rebuilds of gold.token_flows (a dbt build of the "
        "lookback; 0 = never)",
        ZERO_OR_MORE,
    )
    flows_live_seconds: float = key(
        3.0,
        "`st follow`: when smart-wallet legs came, at most this long before gold.token_flows "
        "has their windows (silver merged, the windows they touched recomputed; 0 = only "
        "the rebuilds)",
        ZERO_OR_MORE,
    )
    refresh_seconds: float = key(
        60.0,
        "`st follow`: seconds between re-reads of the ranked wallets and prices it keeps in memory",
        POSITIVE,
    )
    cursor_interval_seconds: float = key(
        10.0,
        "`st follow`: while no alert is raised, how often the outbox records how far the rules "
        "have read bronze (a restart evaluates what came after it again)",
        POSITIVE,
    )
    retry_check_seconds: float = key(
        2.0, "`st follow`: how often it looks for retries and replays that fell due", POSITIVE
    )
    host: str = key("127.0.0.1", "`st follow`: bind address of /health and /metrics")
    port: int = key(
        9108, "`st follow`: port of /health and /metrics (0 = no HTTP server)",
        Rule(min=0, max=65535),
    )  # fmt: skip
    stall_seconds: float = key(
        60.0,
        "`st follow`: /health answers 503 when the stream has unread events and no batch was "
        "committed for this long",
        POSITIVE,
    )
    view_rows: int = key(10, "`st follow`: smart buys and alerts shown on a terminal", ONE_OR_MORE)
