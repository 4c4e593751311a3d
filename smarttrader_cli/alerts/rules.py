"""Alert rules over smart-wallet trades: a big buy by a ranked wallet, confluence, exits.

They read legs of `silver.webhook_swaps` (priced, not a quote asset: SOL or USDC is what
smart money pays with, not what it buys or sells) by wallets ranked in
`gold.smart_wallets`, and raise alerts with deterministic ids, so evaluating the same
legs again raises the same alerts, which the outbox then ignores.

- `wallet_buy`: a wallet of the rule's tiers buys at least `min_usd` of a token in one
  transaction. Its key is the signature and the wallet.
- `confluence`: `min_wallets` distinct wallets of the rule's tiers buy the same token
  within `window_minutes`. It fires at the buy that completes the set, once per token
  and window-long bucket of time (the bucket that buy falls in is its key).
- `exit`: a wallet sells at least `min_usd` of a token it was alerted buying
  (`wallet_buy`). Its key is the signature and the wallet.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.config.alerts_schema import (
    ConfluenceRuleConfig,
    ExitRuleConfig,
    WalletBuyRuleConfig,
)

WALLET_BUY = "wallet_buy"
CONFLUENCE = "confluence"
EXIT = "exit"


@dataclass(frozen=True)
class RankedWallet:
    """A wallet of gold.smart_wallets: its tier and rank."""

    tier: str
    rank: int | None


@dataclass(frozen=True)
class Trade:
    """One transaction's buy or sell of a token by a ranked wallet (its legs summed)."""

    signature: str
    wallet: str
    token_address: str
    value_usd: float
    event_time: datetime
    wallet_rank: RankedWallet


def smart_trades(
    legs: Iterable[Mapping[str, Any]],
    ranked: Mapping[str, RankedWallet],
    quote_assets: Iterable[str],
    since: datetime,
    direction: str = "buy",
) -> list[Trade]:
    """The buys (or sells) among `legs` by ranked wallets, at or after `since`, oldest first."""
    quotes = set(quote_assets)
    summed: dict[tuple[str, str, str], list[Any]] = {}
    for leg in legs:
        token, wallet, when = leg.get("token_address"), leg.get("wallet"), leg.get("event_time")
        value = leg.get("value_usd")
        if (
            leg.get("direction") != direction
            or not token
            or token in quotes
            or wallet not in ranked
        ):
            continue
        if value is None or when is None or when < since:
            continue  # an unpriced buy has no size to compare with a threshold
        entry = summed.setdefault((str(leg["signature"]), str(wallet), str(token)), [0.0, when])
        entry[0] += float(value)
        entry[1] = min(entry[1], when)
    buys = [
        Trade(sig, wallet, token, value, when, ranked[wallet])
        for (sig, wallet, token), (value, when) in summed.items()
    ]
    buys.sort(key=lambda b: (b.event_time, b.signature, b.wallet))
    return buys


def wallet_buy_alerts(buys: Iterable[Trade], rule: WalletBuyRuleConfig) -> list[Alert]:
    """One alert per big buy by a wallet of the rule's tiers."""
    if not rule.enabled:
        return []
    tiers = set(rule.tiers)
    return [
        Alert(
            WALLET_BUY,
            b.token_address,
            f"{b.signature}:{b.wallet}",
            f"{b.wallet_rank.tier} wallet {_short(b.wallet)}{_rank(b.wallet_rank)} bought "
            f"${b.value_usd:,.0f} of {b.token_address} at {b.event_time:%Y-%m-%d %H:%M:%S} UTC "
            f"(tx {_short(b.signature)})",
            {
                "wallet": b.wallet,
                "tier": b.wallet_rank.tier,
                "rank": b.wallet_rank.rank,
                "value_usd": round(b.value_usd, 2),
                "signature": b.signature,
            },
            b.event_time,
        )
        for b in buys
        if b.wallet_rank.tier in tiers and b.value_usd >= rule.min_usd
    ]


def confluence_alerts(buys: Iterable[Trade], rule: ConfluenceRuleConfig) -> list[Alert]:
    """One alert per token and bucket where enough distinct wallets bought within the window."""
    if not rule.enabled:
        return []
    tiers, window = set(rule.tiers), timedelta(minutes=rule.window_minutes)
    by_token: dict[str, list[Trade]] = {}
    for b in buys:
        if b.wallet_rank.tier in tiers and b.value_usd >= rule.min_usd:
            by_token.setdefault(b.token_address, []).append(b)
    alerts = []
    for token, token_buys in by_token.items():
        recent: deque[Trade] = deque()
        fired: set[int] = set()
        for b in token_buys:  # oldest first
            recent.append(b)
            while b.event_time - recent[0].event_time > window:
                recent.popleft()
            wallets = {r.wallet for r in recent}
            bucket = int(b.event_time.timestamp() // window.total_seconds())
            if len(wallets) < rule.min_wallets or bucket in fired:
                continue
            fired.add(bucket)
            start = datetime.fromtimestamp(bucket * window.total_seconds(), UTC)
            total = sum(r.value_usd for r in recent)
            alerts.append(
                Alert(
                    CONFLUENCE,
                    token,
                    f"{rule.window_minutes}m@{start:%Y-%m-%dT%H:%M}",
                    f"{len(wallets)} smart wallets bought {token} within {rule.window_minutes} "
                    f"minutes (${total:,.0f} in all), the last at {b.event_time:%H:%M:%S} UTC",
                    {
                        "wallets": sorted(wallets),
                        "value_usd": round(total, 2),
                        "window_minutes": rule.window_minutes,
                    },
                    b.event_time,
                )
            )
    return alerts


def exit_alerts(
    sells: Iterable[Trade], alerted: set[tuple[str, str]], rule: ExitRuleConfig
) -> list[Alert]:
    """One alert per sell of at least min_usd of a token its wallet was alerted buying;
    `alerted` holds those (wallet, token) pairs."""
    if not rule.enabled:
        return []
    return [
        Alert(
            EXIT,
            s.token_address,
            f"{s.signature}:{s.wallet}",
            f"{s.wallet_rank.tier} wallet {_short(s.wallet)}{_rank(s.wallet_rank)} sold "
            f"${s.value_usd:,.0f} of {s.token_address}, which it was alerted buying, at "
            f"{s.event_time:%Y-%m-%d %H:%M:%S} UTC (tx {_short(s.signature)})",
            {
                "wallet": s.wallet,
                "tier": s.wallet_rank.tier,
                "rank": s.wallet_rank.rank,
                "value_usd": round(s.value_usd, 2),
                "signature": s.signature,
            },
            s.event_time,
        )
        for s in sells
        if (s.wallet, s.token_address) in alerted and s.value_usd >= rule.min_usd
    ]


def _short(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:4]}…{address[-4:]}"


def _rank(wallet: RankedWallet) -> str:
    return f" (rank {wallet.rank})" if wallet.rank is not None else ""
