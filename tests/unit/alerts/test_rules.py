"""The alert rules over buy legs: thresholds, tiers, quote assets, confluence windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from smarttrader_cli.alerts.rules import (
    RankedWallet,
    confluence_alerts,
    exit_alerts,
    smart_trades,
    wallet_buy_alerts,
)
from smarttrader_cli.config.alerts_schema import (
    ConfluenceRuleConfig,
    ExitRuleConfig,
    WalletBuyRuleConfig,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SOL = "So11111111111111111111111111111111111111112"
RANKED = {
    "elite1": RankedWallet("elite", 1),
    "strong1": RankedWallet("strong", 5),
    "prom1": RankedWallet("promising", 40),
    "prom2": RankedWallet("promising", 41),
}


def _leg(sig: str, wallet: str, token: str, usd: float | None, minute: float, **kw: Any) -> dict:
    return {
        "signature": sig,
        "wallet": wallet,
        "direction": kw.get("direction", "buy"),
        "token_address": token,
        "value_usd": usd,
        "event_time": T0 + timedelta(minutes=minute),
    }


def _buys(legs: list[dict]) -> list:
    return smart_trades(legs, RANKED, [SOL], T0 - timedelta(days=1))


def test_only_priced_buys_of_non_quote_tokens_by_ranked_wallets_count() -> None:
    legs = [
        _leg("s1", "elite1", "BONK", 2000, 0),
        _leg("s1", "elite1", SOL, 2000, 0),  # what it paid with
        _leg("s2", "elite1", "WIF", 5000, 1, direction="sell"),
        _leg("s3", "nobody", "BONK", 9000, 2),  # not ranked
        _leg("s4", "strong1", "BONK", None, 3),  # unpriced
        _leg("s5", "strong1", "BONK", 700, 4),
        _leg("s5", "strong1", "BONK", 600, 4),  # a second leg of the same buy: summed
    ]
    buys = _buys(legs)
    assert [(b.signature, b.wallet, b.token_address, b.value_usd) for b in buys] == [
        ("s1", "elite1", "BONK", 2000),
        ("s5", "strong1", "BONK", 1300),
    ]


def test_wallet_buy_alerts_on_big_buys_of_the_rules_tiers_with_stable_ids() -> None:
    legs = [
        _leg("s1", "elite1", "BONK", 2000, 0),
        _leg("s2", "strong1", "BONK", 999, 1),  # under min_usd
        _leg("s3", "prom1", "BONK", 5000, 2),  # tier not in the rule
        _leg("s4", "strong1", "WIF", 1000, 3),
    ]
    rule = WalletBuyRuleConfig(tiers=["elite", "strong"], min_usd=1000)
    alerts = wallet_buy_alerts(_buys(legs), rule)
    assert [(a.token_address, a.key) for a in alerts] == [
        ("BONK", "s1:elite1"),
        ("WIF", "s4:strong1"),
    ]
    assert "elite wallet elite1 (rank 1) bought $2,000 of BONK" in alerts[0].text
    again = wallet_buy_alerts(_buys(list(reversed(legs))), rule)
    assert sorted(a.id for a in again) == sorted(a.id for a in alerts)


def test_a_rule_that_matches_nothing_or_everything() -> None:
    legs = [_leg(f"s{i}", w, f"T{i % 3}", 100 * (i + 1), i) for i, w in enumerate(RANKED)]
    nothing = WalletBuyRuleConfig(tiers=["elite", "strong", "promising"], min_usd=1e12)
    everything = WalletBuyRuleConfig(tiers=["elite", "strong", "promising"], min_usd=0)
    assert wallet_buy_alerts(_buys(legs), nothing) == []
    assert len(wallet_buy_alerts(_buys(legs), everything)) == len(legs)
    assert wallet_buy_alerts(_buys(legs), WalletBuyRuleConfig(enabled=False, min_usd=0)) == []
    assert confluence_alerts(_buys(legs), ConfluenceRuleConfig(min_wallets=5)) == []


def test_confluence_fires_once_when_enough_distinct_wallets_buy_within_the_window() -> None:
    legs = [
        _leg("a", "prom1", "BONK", 100, 0),
        _leg("b", "prom1", "BONK", 100, 5),  # the same wallet again: not a second buyer
        _leg("c", "prom2", "BONK", 100, 10),
        _leg("d", "strong1", "BONK", 100, 20),  # the third distinct buyer within 30 min
        _leg("e", "elite1", "BONK", 100, 25),  # same bucket: no second alert
        _leg("f", "prom1", "WIF", 100, 0),
        _leg("g", "prom2", "WIF", 100, 40),  # 40 minutes apart: never 3 at once
        _leg("h", "strong1", "WIF", 100, 80),
    ]
    rule = ConfluenceRuleConfig(min_wallets=3, window_minutes=30)
    alerts = confluence_alerts(_buys(legs), rule)
    assert [(a.token_address, a.key, a.event_time) for a in alerts] == [
        ("BONK", "30m@2026-11-01T12:00", T0 + timedelta(minutes=20))
    ]
    assert alerts[0].data["wallets"] == ["prom1", "prom2", "strong1"]
    # a buy in the next bucket with three buyers still within 30 minutes: a new alert
    later = confluence_alerts(_buys([*legs[:5], _leg("i", "prom2", "BONK", 100, 31)]), rule)
    assert [a.key for a in later] == ["30m@2026-11-01T12:00", "30m@2026-11-01T12:30"]
    assert later[0].id == alerts[0].id


def test_exit_alerts_on_sells_of_tokens_the_wallet_was_alerted_buying() -> None:
    legs = [
        _leg("s1", "elite1", "BONK", 500, 0, direction="sell"),
        _leg("s2", "elite1", "WIF", 500, 1, direction="sell"),  # never alerted buying WIF
        _leg("s3", "strong1", "BONK", 50, 2, direction="sell"),  # under min_usd
        _leg("s4", "strong1", "BONK", 150, 3, direction="sell"),
        _leg("s5", "elite1", "BONK", 900, 4),  # a buy, not an exit
        _leg("s6", "elite1", SOL, 900, 5, direction="sell"),  # paying with SOL is no exit
    ]
    sells = smart_trades(legs, RANKED, [SOL], T0 - timedelta(days=1), "sell")
    alerted = {("elite1", "BONK"), ("strong1", "BONK"), ("elite1", SOL)}
    alerts = exit_alerts(sells, alerted, ExitRuleConfig(min_usd=100))
    assert [a.key for a in alerts] == ["s1:elite1", "s4:strong1"]
    assert "sold $500 of BONK, which it was alerted buying" in alerts[0].text
    assert exit_alerts(sells, alerted, ExitRuleConfig(enabled=False)) == []
