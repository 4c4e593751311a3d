"""The alerts' configuration: delivery through the outbox, the channels, the rules.

Part of the schema (`config/schema.py` composes `AlertsConfig` into `Config`). The channels'
credentials (bot token, webhook URLs, signing key) are secrets: they come only from the
environment (config/loader.py SECRET_ENV), never from these keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarttrader_cli.config.rules import (
    FRACTION,
    MISSING,
    NONEMPTY,
    ONE_OR_MORE,
    POSITIVE,
    ZERO_OR_MORE,
    Rule,
    key,
    section,
)

CHANNELS = ("telegram", "discord", "slack", "webhook")
TIERS = ("elite", "strong", "promising")


@dataclass
class TelegramConfig:
    base_url: str = key(
        "https://api.telegram.org", "Bot API base; the token comes from ST_TELEGRAM_BOT_TOKEN"
    )
    chat_id: str = key("", "chat (or @channel) the bot writes to")
    rate_limit_rps: float = key(
        1.0, "messages per second (Telegram: about one per second per chat)", ZERO_OR_MORE
    )
    burst: int = key(3, "token-bucket burst size", ONE_OR_MORE)


@dataclass
class PacedChannelConfig:
    """A channel posting to a webhook URL (a secret); each channel sets its own pace."""

    rate_limit_rps: float = key(MISSING, "messages per second; 0 = unpaced", ZERO_OR_MORE)
    burst: int = key(MISSING, "token-bucket burst size", ONE_OR_MORE)


@dataclass
class HttpWebhookConfig:
    url: str = key(
        "",
        "where the signed JSON is POSTed; the HMAC key comes from ST_ALERT_WEBHOOK_SECRET",
    )
    rate_limit_rps: float = key(10.0, "requests per second; 0 = unpaced", ZERO_OR_MORE)
    burst: int = key(10, "token-bucket burst size", ONE_OR_MORE)
    signature_header: str = key(
        "X-St-Signature", "header carrying t=<unix time>,v1=<hex HMAC-SHA256>", NONEMPTY
    )
    idempotency_header: str = key(
        "Idempotency-Key", "header carrying the alert id, for the receiver to dedupe", NONEMPTY
    )


@dataclass
class WalletBuyRuleConfig:
    enabled: bool = key(True, "alert when a ranked smart wallet buys at least min_usd of a token")
    tiers: list[str] = key(
        ["elite", "strong"],
        "tiers of gold.smart_wallets whose buys alert (elite, strong, promising)",
    )
    min_usd: float = key(1000.0, "smallest buy (USD) that alerts", ZERO_OR_MORE)


@dataclass
class ConfluenceRuleConfig:
    enabled: bool = key(
        True, "alert when min_wallets distinct smart wallets buy a token within window_minutes"
    )
    tiers: list[str] = key(
        ["elite", "strong", "promising"], "tiers of gold.smart_wallets that count as smart"
    )
    min_wallets: int = key(3, "distinct smart buyers that make a confluence", Rule(min=2))
    window_minutes: int = key(30, "the buys fall within this many minutes", ONE_OR_MORE)
    min_usd: float = key(0.0, "each counted buy is at least this (USD)", ZERO_OR_MORE)


@dataclass
class ExitRuleConfig:
    enabled: bool = key(
        True, "alert when a ranked wallet sells at least min_usd of a token it was alerted buying"
    )
    min_usd: float = key(100.0, "smallest sell (USD) that alerts", ZERO_OR_MORE)


@dataclass
class AlertRulesConfig:
    wallet_buy: WalletBuyRuleConfig = section(WalletBuyRuleConfig)
    confluence: ConfluenceRuleConfig = section(ConfluenceRuleConfig)
    exit: ExitRuleConfig = section(ExitRuleConfig)
    lookback_hours: int = key(
        24, "the first run of `st alerts run` reads buys this far back", ONE_OR_MORE
    )
    max_age_minutes: int = key(
        60,
        "buys older than this when read alert no more (a late backfill stays quiet)",
        ONE_OR_MORE,
    )


@dataclass
class AlertSafetyConfig:
    """The token safety gate (alerts/safety.py): BirdEye's security facts of a token before a
    buy alert on it, cached in bronze.token_security."""

    enabled: bool = key(
        True, "check a token's security facts before a buy alert on it (wallet_buy, confluence)"
    )
    block_mint_authority: bool = key(
        True,
        "block when BirdEye's ownerAddress is set (read as the mint authority: unconfirmed)",
    )
    block_freeze_authority: bool = key(
        True, "block when freezeAuthority is set or freezeable is true"
    )
    max_top10_holder_share: float = key(
        0.5,
        "block when the ten largest holders own more than this fraction (top10HolderPercent, "
        "0-1; pools count as holders); 1 = no limit",
        FRACTION,
    )
    min_liquidity_usd: float = key(
        10000.0,
        "block when the token's pool liquidity (multi_price include_liquidity) is below this "
        "(USD); 0 = no limit",
        ZERO_OR_MORE,
    )
    block_unknown: bool = key(
        False,
        "block when the verdict is unknown (the lookup failed, or a fact a rule needs is null)",
    )
    ttl_hours: float = key(
        6.0, "cached facts older than this are fetched again before the next alert", POSITIVE
    )
    max_retries: int = key(
        1,
        "retries of a failed lookup before the verdict is unknown (the alert waits for them)",
        ZERO_OR_MORE,
    )
    timeout_seconds: float = key(5.0, "per-request timeout of a lookup", POSITIVE)
    retry_failed_after_seconds: float = key(
        300.0,
        "a long-running process (st follow) looks a failed token up again after this long",
        ZERO_OR_MORE,
    )


@dataclass
class AlertsConfig:
    channels: list[str] = key(
        [], "where every alert goes: any of telegram, discord, slack, webhook (empty = none)"
    )
    max_attempts: int = key(
        8, "sends of one alert to one channel before it is dead-lettered", ONE_OR_MORE
    )
    backoff_base_seconds: float = key(
        2.0, "wait after a failed send; doubles each attempt, the upper half jittered", ZERO_OR_MORE
    )
    backoff_max_seconds: float = key(300.0, "ceiling of one wait between sends", ZERO_OR_MORE)
    timeout_seconds: float = key(10.0, "per-request timeout of every channel", POSITIVE)
    batch_size: int = key(
        5,
        "alerts per channel claimed in one outbox commit (a crash may resend at most these; "
        "a round is also how long a new alert may wait behind one)",
        ONE_OR_MORE,
    )
    max_rate_limit_wait_seconds: float = key(
        60.0,
        "a 429's retry_after up to this is waited out in place; a longer one reschedules",
        ZERO_OR_MORE,
    )
    max_rate_limited: int = key(
        5, "429s in a row one send may wait out before it counts as a failed attempt", ZERO_OR_MORE
    )
    retention_days: int = key(
        30,
        "`st alerts deliver` deletes outbox rows sent longer ago than this (dead ones stay)",
        ONE_OR_MORE,
    )
    telegram: TelegramConfig = section(TelegramConfig)
    discord: PacedChannelConfig = section(
        PacedChannelConfig,
        "Discord webhook (its URL in ST_DISCORD_WEBHOOK_URL); its X-RateLimit-* headers slow "
        "it further",
        rate_limit_rps=2.0,
        burst=5,
    )
    slack: PacedChannelConfig = section(
        PacedChannelConfig,
        "Slack incoming webhook (its URL in ST_SLACK_WEBHOOK_URL): about one message a second",
        rate_limit_rps=1.0,
        burst=2,
    )
    webhook: HttpWebhookConfig = section(HttpWebhookConfig)
    rules: AlertRulesConfig = section(AlertRulesConfig)
    safety: AlertSafetyConfig = section(AlertSafetyConfig)
