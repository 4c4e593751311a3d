"""The simulated market: deterministic, realistic, and its planted wallets hold their promise."""

from __future__ import annotations

from collections import defaultdict, deque

import pytest

from smarttrader_cli.sim.birdeye_api import render_trade
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.trades import MALFORMED, TradeBook

SETTINGS = SimSettings(seed=11, wallets=40, tokens=10, trades=6000, end_time=1_750_000_000)
LOOKBACK = 30 * 86400


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(SETTINGS)


@pytest.fixture(scope="module")
def book(market: Market) -> TradeBook:
    return TradeBook(market, cache_size=64)


def fifo_pnl(market: Market, trades, since: int) -> dict[str, float]:
    """Reference FIFO: realized + unrealized USD, matched cost, wins and sells, in the window."""
    quote = {t.index for t in market.tokens if t.kind == "quote"}
    lots: dict[int, deque[list[float]]] = defaultdict(deque)
    realized = cost = 0.0
    wins = sells = 0
    for tr in sorted(trades, key=lambda x: (x.t, x.tx_hash, x.ins_index, x.inner_ins_index)):
        if tr.t <= since or tr.flags & MALFORMED:
            continue
        if tr.from_token not in quote:
            qty = tr.from_raw / 10 ** market.tokens[tr.from_token].decimals
            price = market.price(tr.from_token, tr.t)
            matched_cost = matched = 0.0
            queue = lots[tr.from_token]
            while queue and matched < qty - 1e-12:
                lot = queue[0]
                take = min(lot[0], qty - matched)
                matched += take
                matched_cost += take * lot[1]
                lot[0] -= take
                if lot[0] <= 1e-12:
                    queue.popleft()
            if matched > 0:
                pnl = matched * price - matched_cost
                realized += pnl
                cost += matched_cost
                sells += 1
                wins += pnl > 0
        if tr.to_token not in quote:
            qty = tr.to_raw / 10 ** market.tokens[tr.to_token].decimals
            lots[tr.to_token].append([qty, market.price(tr.to_token, tr.t)])
    unrealized = 0.0
    for token, queue in lots.items():
        last = market.tokens[token].prices[-1]
        unrealized += sum(q * (last - p) for q, p in queue)
        cost += sum(q * p for q, p in queue)
    total = realized + unrealized
    return {"total": total, "roi": total / cost if cost else 0.0, "win_rate": wins / max(1, sells)}


def test_same_seed_same_market() -> None:
    a, b = Market(SETTINGS), Market(SETTINGS)
    assert [t.address for t in a.tokens] == [t.address for t in b.tokens]
    assert a.truth() == b.truth()
    wallet = a.wallets_of("bot")[0]
    assert TradeBook(a).history(wallet) == TradeBook(b).history(wallet)
    other = Market(SimSettings(seed=12, wallets=40, tokens=10, trades=6000, end_time=1_750_000_000))
    assert other.truth()["smart_wallets"] != a.truth()["smart_wallets"]


def test_planted_smart_wallets_are_profitable(market: Market, book: TradeBook) -> None:
    since = market.end_time - LOOKBACK
    for wallet in market.wallets_of("smart"):
        pnl = fifo_pnl(market, book.history(wallet), since)
        assert pnl["total"] > 100, (wallet, pnl)
        assert pnl["roi"] > 0.05, (wallet, pnl)
        assert pnl["win_rate"] >= 0.6, (wallet, pnl)


def test_planted_losing_wallets_lose(market: Market, book: TradeBook) -> None:
    since = market.end_time - LOOKBACK
    for wallet in market.wallets_of("losing"):
        pnl = fifo_pnl(market, book.history(wallet), since)
        assert pnl["total"] < -10, (wallet, pnl)
        assert pnl["roi"] < 0, (wallet, pnl)


def test_realistic_shapes(market: Market, book: TradeBook) -> None:
    quote = {t.index for t in market.tokens if t.kind == "quote"}
    all_trades = [tr for w in market.wallets for tr in book.history(w.address)]
    bot = market.wallets_of("bot")[0]
    assert len(book.history(bot)) > 5 * len(book.history(market.wallets_of("smart")[0]))
    # swaps between two non-quote tokens exist
    assert any(tr.from_token not in quote and tr.to_token not in quote for tr in all_trades)
    # multi-swap transactions exist and keys are unique
    keys = [(tr.tx_hash, tr.ins_index, tr.inner_ins_index) for tr in all_trades]
    assert len(keys) == len(set(keys))
    assert any(tr.inner_ins_index == 1 for tr in all_trades)
    # history starts before a 30-day lookback, and ends before "now"
    assert min(tr.t for tr in all_trades) < market.end_time - LOOKBACK
    assert max(tr.t for tr in all_trades) < market.end_time
    # pump-and-die tokens: a peak far above the final price
    pumps = [t for t in market.tokens if t.kind == "pump"]
    assert pumps and all(max(t.prices) > 5 * t.prices[-1] for t in pumps)
    # planted malformed records exist (a small share)
    assert 0 < sum(1 for tr in all_trades if tr.flags & MALFORMED) < len(all_trades) * 0.02


def test_rendered_trade_direction_and_variants(market: Market, book: TradeBook) -> None:
    wallet = market.wallets_of("retail")[0]
    items = [render_trade(market, wallet, tr) for tr in book.history(wallet)]
    good = [i for i in items if isinstance(i.get("tx_hash"), str) and "quote" in i]
    for item in good[:50]:
        legs = {item["base"]["type_swap"], item["quote"]["type_swap"]}
        if legs != {"from", "to"}:
            continue
        gave = item["base"] if item["base"]["type_swap"] == "from" else item["quote"]
        assert gave["change_amount"] < 0 and gave["ui_change_amount"] < 0
    assert any(isinstance(i["base"]["amount"], str) for i in good)


def test_holders_include_the_planted_wallets(market: Market) -> None:
    seen = set()
    for token in market.listed_tokens:
        seen.update(h["owner"] for h in market.holders(token.address)[:20])
    planted = set(market.wallets_of("smart")) | set(market.wallets_of("losing"))
    assert planted <= seen
    token = market.listed_tokens[0]
    holders = market.holders(token.address)
    amounts = [h["ui_amount"] for h in holders]
    assert amounts == sorted(amounts, reverse=True)
    # whales hold a meaningful share of supply
    assert holders[0]["ui_amount"] / token.supply > 0.0005


def test_token_list_price_is_the_latest_trade_price(market: Market) -> None:
    for token in market.traded_tokens:
        assert token.metrics["price"] == token.prices[-1]
