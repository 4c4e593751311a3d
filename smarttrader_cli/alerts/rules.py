"""Alert rules over smart-wallet buys: a big buy by a ranked wallet, and confluence.

Both read buy legs of `silver.webhook_swaps` (direction `buy`, priced, not a quote asset:
SOL or USDC is what smart money pays with, not what it buys) by wallets ranked in
`gold.smart_wallets`, and raise alerts with deterministic ids, so evaluating the same
legs again raises the same alerts, which the outbox then ignores.

- `wallet_buy`: a wallet of the rule's tiers buys at least `min_usd` of a token in one
  transaction. Its key is the signature and the wallet.
- `confluence`: `min_wallets` distinct wallets of the rule's tiers buy the same token
  within `window_minutes`. It fires at the buy that completes the set, once per token
  and window-long bucket of time (the bucket that buy falls in is its key).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.config.alerts_schema import ConfluenceRuleConfig, WalletBuyRuleConfig

WALLET_BUY = "wallet_buy"
CONFLUENCE = "confluence"


@dataclass(frozen=True)
class RankedWallet:
    """A wallet of gold.smart_wallets: its tier and rank."""

    tier: str
    rank: int | None


@dataclass(frozen=True)
class Buy:
    """One transaction's buy of a token by a ranked wallet (its legs summed)."""

    signature: str
    wallet: str
    token_address: str
    value_usd: float
    event_time: datetime
    wallet_rank: RankedWallet


def smart_buys(
    legs: Iterable[Mapping[str, Any]],
    ranked: Mapping[str, RankedWallet],
    quote_assets: Iterable[str],
    since: datetime,
) -> list[Buy]:
    """The buys among `legs` by ranked wallets, at or after `since`, oldest first."""
    quotes = set(quote_assets)
    summed: dict[tuple[str, str, str], list[Any]] = {}
    for leg in legs:
        token, wallet, when = leg.get("token_address"), leg.get("wallet"), leg.get("event_time")
        value = leg.get("value_usd")
        if leg.get("direction") != "buy" or not token or token in quotes or wallet not in ranked:
            continue
        if value is None or when is None or when < since:
            continue  # an unpriced buy has no size to compare with a threshold
        entry = summed.setdefault((str(leg["signature"]), str(wallet), str(token)), [0.0, when])
        entry[0] += float(value)
        entry[1] = min(entry[1], when)
    buys = [
        Buy(sig, wallet, token, value, when, ranked[wallet])
        for (sig, wallet, token), (value, when) in summed.items()
    ]
    buys.sort(key=lambda b: (b.event_time, b.signature, b.wallet))
    return buys


def wallet_buy_alerts(buys: Iterable[Buy], rule: WalletBuyRuleConfig) -> list[Alert]:
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


def confluence_alerts(buys: Iterable[Buy], rule: ConfluenceRuleConfig) -> list[Alert]:
    """One alert per token and bucket where enough distinct wallets bought within the window."""
    if not rule.enabled:
        return []
    tiers, window = set(rule.tiers), timedelta(minutes=rule.window_minutes)
    by_token: dict[str, list[Buy]] = {}
    for b in buys:
        if b.wallet_rank.tier in tiers and b.value_usd >= rule.min_usd:
            by_token.setdefault(b.token_address, []).append(b)
    alerts = []
    for token, token_buys in by_token.items():
        recent: deque[Buy] = deque()
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


def _short(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:4]}…{address[-4:]}"


def _rank(wallet: RankedWallet) -> str:
    return f" (rank {wallet.rank})" if wallet.rank is not None else ""
