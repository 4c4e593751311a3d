"""The simulated market: deterministic, realistic, and its planted wallets hold their promise.

BirdEye items carry the quirks of real pages at their intended rates, and the truth of
every planted swap matches the served items field by field.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import replace
from typing import Any

import pytest

from smarttrader_cli.sim.birdeye_api import render_trade
from smarttrader_cli.sim.market import SOL, USDC, USDT, Market, SimSettings
from smarttrader_cli.sim.trades import MALFORMED, TIDY_SOURCES, TradeBook, order_key
from smarttrader_cli.sim.truth import birdeye_truth

SETTINGS = SimSettings(seed=11, wallets=40, tokens=10, trades=6000, end_time=1_750_000_000)
LOOKBACK = 30 * 86400
# API_CONTRACTS.md item 7: every source name seen on real pages.
REAL_SOURCES = {
    "raydium",
    "whirlpool",
    "pump_amm",
    "raydium_clamm",
    "meteora_dlmm",
    "openbook_v2",
    "lifinity",
    "stake_pool",
    "raydium_cp",
    "meteora_damm_v2",
    "meteora",
    "solfi",
    "stabble",
    "pump_dot_fun",
    "orca",
    "phoenix",
    "jupiterz",
    "raydium_launchlab",
    "1intro",
    "cropper_dlmm",
    "guacamole",
    "fluxbeam",
    "bonkswap",
    "zerofi",
}
TOP_LEVEL = {"raydium", "whirlpool", "pump_amm", "raydium_clamm", "jupiterz"}
TOP_LEVEL |= {"raydium_launchlab", "lifinity"}


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
    for tr in sorted(trades, key=order_key, reverse=True):
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
    items_a = [render_trade(a, wallet, tr) for tr in TradeBook(a).history(wallet)]
    assert items_a == [render_trade(b, wallet, tr) for tr in TradeBook(b).history(wallet)]
    assert birdeye_truth(a, [wallet]) == birdeye_truth(b, [wallet])
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
    # multi-swap transactions exist and every swap has its own place in its tx
    keys = [(tr.tx_hash, tr.ins_index, tr.inner_ins_index, tr.fill) for tr in all_trades]
    assert len(keys) == len(set(keys))
    per_tx = Counter(tr.tx_hash for tr in all_trades if tr.source != "openbook_v2")
    assert any(n > 1 for n in per_tx.values())
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
        assert float(gave["change_amount"]) < 0 and gave["ui_change_amount"] < 0
    assert any(isinstance(i["base"]["amount"], str) for i in good)


def _items(market: Market, book: TradeBook) -> list[dict[str, Any]]:
    return [
        render_trade(market, w.address, tr)
        for w in market.wallets
        for tr in book.history(w.address)
    ]


def _well_formed(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        i
        for i in items
        if isinstance(i.get("tx_hash"), str)
        and "quote" in i
        and i["base"]["type_swap"] in ("from", "to")
        and not isinstance(i.get("ins_index"), str)
    ]


def test_quirks_appear_at_their_rates(market: Market, book: TradeBook) -> None:
    items = _items(market, book)
    good = _well_formed(items)
    n = len(items)
    assert n > 5000
    # inner_ins_index null on about half the items, on top-level sources and openbook only
    nulls = [i for i in items if i["inner_ins_index"] is None]
    assert 0.42 < len(nulls) / n < 0.54
    assert {i["source"] for i in nulls} <= TOP_LEVEL | {"openbook_v2"}
    # sources are real names, most of them show up
    sources = Counter(i["source"] for i in items)
    assert set(sources) <= REAL_SOURCES and len(sources) >= 20
    # openbook_v2: no ins_index key, 2-4 fills per tx with different amounts, float amounts
    book_items = [i for i in good if i["source"] == "openbook_v2"]
    assert 0.02 < len(book_items) / n < 0.1
    assert all("ins_index" not in i and i["inner_ins_index"] is None for i in book_items)
    assert all(i["owner"] not in (i["signers"] or []) for i in book_items)
    fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in book_items:
        fills[i["tx_hash"]].append(i)
    sizes = Counter(len(f) for f in fills.values())
    # two swaps of one tx can both go through the book: up to 8 fills then
    assert sum(sizes[k] for k in (2, 3, 4)) >= 0.9 * len(fills) and max(sizes) <= 8
    for group in fills.values():
        for side in ("base", "quote"):
            amounts = [round(i[side]["amount"]) for i in group]
            assert len(set(amounts)) == len(amounts)
    legs = [i[side] for i in book_items for side in ("base", "quote")]
    floats = [leg["amount"] for leg in legs if isinstance(leg["amount"], float)]
    off = [a for a in floats if a != int(a)]
    assert 0.3 < len(off) / len(legs) < 0.7
    assert all(abs(a - round(a)) < 1e-3 for a in off)
    # raw amounts as strings exactly on meteora_dlmm, meteora_damm_v2 and pump_dot_fun
    stringy = {"meteora_dlmm", "meteora_damm_v2", "pump_dot_fun"}
    for i in good:
        for side in ("base", "quote"):
            leg = i[side]
            assert isinstance(leg["amount"], str) == (i["source"] in stringy)
            if i["source"] == "meteora_dlmm":
                assert isinstance(leg["change_amount"], int)
    assert {i["source"] for i in good if isinstance(i["base"]["amount"], str)} == stringy
    # extra fields of real items
    for i in good:
        assert i["address"] and i["interacted_program_id"] and "volume" in i and "signers" in i
        for side in ("base", "quote"):
            leg = i[side]
            assert leg["type"] in ("transfer", "transferChecked", "log")
            assert leg["is_scaled_ui_token"] is False and leg["multiplier"] is None
    with_fee = sum("fee_info" in i[side] for i in good for side in ("base", "quote"))
    assert 0.01 < with_fee / (2 * len(good)) < 0.06
    null_signers = sum(i["signers"] is None for i in good) / len(good)
    assert 0.15 < null_signers < 0.35
    # planted malformed items and null prices stay rare
    malformed = n - len(good)
    assert 0 < malformed < 0.02 * n
    null_price = sum(i[side]["price"] is None for i in good for side in ("base", "quote"))
    assert 0 < null_price < 0.04 * 2 * len(good)


def test_tidy_mode_serves_documented_shapes_of_the_same_trades(market: Market) -> None:
    tidy = Market(replace(SETTINGS, quirks=False))
    tidy_book, book = TradeBook(tidy, cache_size=64), TradeBook(market, cache_size=64)
    for w in tidy.wallets[:10]:
        trades = tidy_book.history(w.address)
        for tr in trades:
            item = render_trade(tidy, w.address, tr)
            if tr.flags & MALFORMED:
                continue
            assert tr.source in TIDY_SOURCES or tr.source == "pump_amm"
            assert isinstance(item["ins_index"], int) and isinstance(item["inner_ins_index"], int)
            assert isinstance(item["base"]["amount"], int) and "type" not in item["base"]
            assert item["base"]["price"] is not None and item["quote"]["price"] is not None

        def amounts(history):
            out: Counter[tuple[str, int, int]] = Counter()
            for tr in history:
                if not tr.flags & MALFORMED:
                    out[(tr.tx_hash, tr.from_token, tr.to_token)] += tr.from_raw
            return out

        # the quirks change how trades are reported, never which trades were made
        assert amounts(trades) == amounts(book.history(w.address))


def test_birdeye_truth_matches_the_served_items(market: Market, book: TradeBook) -> None:
    wallets = [market.wallets_of(kind)[0] for kind in ("smart", "losing", "bot", "retail")]
    truth = birdeye_truth(market, wallets)
    items = [render_trade(market, w, tr) for w in wallets for tr in book.history(w)]
    assert len(truth) == 2 * len(items)
    checked = 0
    for item, (sell, buy) in zip(items, zip(truth[::2], truth[1::2], strict=True), strict=True):
        assert sell.direction == "sell" and buy.direction == "buy"
        assert sell.tx == buy.tx and sell.source == "birdeye"
        if item not in _well_formed([item]):
            assert sell.malformed and buy.malformed
            continue
        assert not sell.malformed and item["tx_hash"] == sell.tx
        legs = {item[s]["type_swap"]: item[s] for s in ("base", "quote")}
        for leg, want in ((legs["from"], sell), (legs["to"], buy)):
            assert want.wallet == item["owner"] and want.time == item["block_unix_time"]
            assert want.token_address == leg["address"]
            assert want.amount_raw == round(float(leg["amount"]))
            assert want.amount_raw == abs(round(float(leg["change_amount"])))
            assert want.amount == want.amount_raw / 10 ** leg["decimals"]
            assert want.amount == pytest.approx(leg["ui_amount"], rel=1e-12)
        quote = next(
            (legs[s] for s in ("from", "to") if legs[s]["address"] in (USDC, USDT, SOL)), None
        )
        if quote is not None and quote["price"] is not None:
            value = quote["ui_amount"] * quote["price"]
            assert sell.value_usd == pytest.approx(value) == buy.value_usd
        elif quote is None and legs["from"]["price"] is not None:
            assert sell.value_usd == pytest.approx(
                legs["from"]["ui_amount"] * legs["from"]["price"]
            )
        checked += 1
    assert checked > 0.95 * len(items)
    assert any(leg.malformed for leg in truth)


def test_well_known_mints() -> None:
    assert SOL == "So11111111111111111111111111111111111111112"
    assert USDC == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert USDT == "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
    market = Market(SETTINGS)
    assert [t.address for t in market.tokens[:3]] == [SOL, USDC, USDT]
    assert all(market.price_of(m, market.end_time - 10) == 1.0 for m in (USDC, USDT))


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
