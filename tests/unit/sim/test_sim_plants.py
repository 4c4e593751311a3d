"""The planted wallets and accounts behave as contract 3 of the brief says they do.

Bots, snipers, distributors, faded wallets, pool/vault (program-derived), exchange and
burn holders in the default-shaped market, measured on the swaps the simulator serves;
planted smart wallets stay clear of every flag's threshold; every wallet is a real
keypair's public key.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import pytest
from solders.pubkey import Pubkey

from smarttrader_cli.sim.accounts import INCINERATOR, KNOWN_ACCOUNTS, known_accounts
from smarttrader_cli.sim.market import DAY, Market, SimSettings
from smarttrader_cli.sim.trades import MALFORMED, Trade, TradeBook

SETTINGS = SimSettings(seed=7, wallets=120, tokens=12, trades=12_000, end_time=1_750_000_000)


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(SETTINGS)


@pytest.fixture(scope="module")
def histories(market: Market) -> dict[str, list[Trade]]:
    book = TradeBook(market, cache_size=1)
    return {
        w.address: [tr for tr in book.history(w.address) if not tr.flags & MALFORMED]
        for w in market.wallets
    }


def _quote(market: Market, index: int) -> bool:
    return market.tokens[index].kind == "quote"


def first_trades(market: Market, histories: dict[str, list[Trade]]) -> dict[int, int]:
    """Each traded token's first swap time over every wallet."""
    first: dict[int, int] = {}
    for trades in histories.values():
        for tr in trades:
            for index in (tr.from_token, tr.to_token):
                if not _quote(market, index):
                    first[index] = min(first.get(index, tr.t), tr.t)
    return first


def profile(market: Market, trades: list[Trade], first: dict[int, int]) -> dict[str, Any]:
    """What a classifier measures: trades per active day, fast sells, sniped tokens, flows."""
    ordered = sorted(trades, key=lambda tr: tr.t)
    days = {tr.t // DAY for tr in ordered}
    buys: dict[int, list[int]] = defaultdict(list)
    bought_usd = sold_usd = 0.0
    fast = sells = 0
    holds = []
    sniped, bought = set(), set()
    for tr in ordered:
        if not _quote(market, tr.to_token):
            buys[tr.to_token].append(tr.t)
            bought.add(tr.to_token)
            bought_usd += (
                tr.to_raw
                / 10 ** market.tokens[tr.to_token].decimals
                * market.price(tr.to_token, tr.t)
            )
            if tr.t - first[tr.to_token] <= 10:
                sniped.add(tr.to_token)
        if not _quote(market, tr.from_token):
            sells += 1
            sold_usd += (
                tr.from_raw
                / 10 ** market.tokens[tr.from_token].decimals
                * market.price(tr.from_token, tr.t)
            )
            earlier = [t for t in buys[tr.from_token] if t <= tr.t]
            if earlier:
                holds.append(tr.t - earlier[-1])
                fast += tr.t - earlier[-1] <= 20
    return {
        "per_day": len(ordered) / max(1, len(days)),
        "fast_share": fast / max(1, sells),
        "sells": sells,
        "median_hold": statistics.median(holds) if holds else None,
        "sniped": sniped,
        "bought": bought,
        "bought_usd": bought_usd,
        "sold_usd": sold_usd,
    }


def test_every_wallet_is_a_keypair_and_pools_are_program_derived(market: Market) -> None:
    assert all(Pubkey.from_string(w.address).is_on_curve() for w in market.wallets)
    truth = market.truth()
    pools = truth["pool_accounts"]
    assert len(pools) == 2 * len(market.tokens)
    assert not any(Pubkey.from_string(p).is_on_curve() for p in pools)
    assert INCINERATOR in truth["burn_accounts"]
    assert set(truth["exchange_accounts"]) <= set(known_accounts("exchange"))
    assert truth["exchange_accounts"] or not KNOWN_ACCOUNTS.is_file()
    for token in market.listed_tokens:
        owners = [h["owner"] for h in market.holders(token.address)[:20]]
        assert {a for _, a in market.accounts_of(token)} <= set(owners)
    labels = market.labels()
    assert {labels[p] for p in pools} == {"pool"} and labels[INCINERATOR] == "burn"
    assert set(labels.values()) >= {"smart", "faded", "bot", "sniper", "distributor", "ordinary"}


def test_bots_trade_fast_and_often(market: Market, histories) -> None:
    first = first_trades(market, histories)
    bots = market.wallets_of("bot")
    assert bots
    for wallet in bots:
        p = profile(market, histories[wallet], first)
        assert p["per_day"] >= 100 and p["fast_share"] >= 0.6 and p["sells"] >= 10, p
        assert p["median_hold"] < 120


def test_snipers_buy_each_launch_within_seconds(market: Market, histories) -> None:
    first = first_trades(market, histories)
    launched = {t.index for t in market.launched_tokens}
    assert len(launched) >= 4
    for token in market.launched_tokens:
        assert first[token.index] >= token.launch_time  # nobody trades before the launch
    snipers = market.wallets_of("sniper")
    assert len(snipers) >= 2
    for wallet in snipers:
        p = profile(market, histories[wallet], first)
        assert p["sniped"] == p["bought"] == launched, p
        assert p["sells"] >= len(launched) and p["per_day"] < 20


def test_distributors_sell_what_they_never_bought(market: Market, histories) -> None:
    first = first_trades(market, histories)
    for wallet in market.wallets_of("distributor"):
        p = profile(market, histories[wallet], first)
        assert p["sold_usd"] >= 10 * p["bought_usd"] and p["sells"] >= 10, p
        main = market.wallet_by_address[wallet].tokens[0]
        assert not any(tr.to_token == main for tr in histories[wallet])  # coverage 0


def test_faded_wallets_won_last_month_and_lose_this_week(market: Market, histories) -> None:
    from tests.unit.sim.test_sim_market import fifo_pnl

    end = market.end_time
    faded = market.wallets_of("faded")
    assert faded
    for wallet in faded:
        trades = histories[wallet]
        month = fifo_pnl(market, [tr for tr in trades if tr.t < end - 8 * DAY], end - 30 * DAY)
        assert month["total"] > 1000, month
        week = fifo_pnl(market, trades, end - 7 * DAY)
        assert week["total"] < 0, week


def test_smart_wallets_stay_clear_of_every_flag(market: Market, histories) -> None:
    first = first_trades(market, histories)
    for wallet in market.wallets_of("smart"):
        p = profile(market, histories[wallet], first)
        assert not p["sniped"] and p["per_day"] < 20, p
        assert p["fast_share"] < 0.1 and p["sold_usd"] < 3 * p["bought_usd"]


@pytest.mark.parametrize("wallets", [120, 80])  # 80: a bot once had no trades to see at all
def test_flag_worthy_wallets_trade_inside_a_30_day_lookback(wallets: int) -> None:
    tokens = 12 if wallets == 120 else 10
    market = Market(SimSettings(seed=7, wallets=wallets, tokens=tokens, trades=wallets * 100))
    book = TradeBook(market, cache_size=1)
    since = market.end_time - 28 * DAY  # what a 30-day lookback fetched an hour late sees
    for kind in ("bot", "sniper", "distributor", "faded", "smart"):
        for wallet in market.wallets_of(kind):
            recent = [tr for tr in book.history(wallet) if tr.t > since]
            assert len(recent) >= 8, (kind, wallet, len(recent))
