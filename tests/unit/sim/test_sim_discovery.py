"""The simulator's top-traders and gainers endpoints: paging, shapes, consistency with its trades."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest

from smarttrader_cli.sim.market import DAY, Market, SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sim.trades import MALFORMED, TradeBook

SETTINGS = SimSettings(seed=3, wallets=40, tokens=8, trades=4000, end_time=1_750_000_000)
TOP = "/defi/v2/tokens/top_traders"
GAINERS = "/trader/gainers-losers"


@pytest.fixture(scope="module")
def sim():
    with run_in_thread(SETTINGS) as running:
        yield running


def pages(c: httpx.Client, path: str, limit: int = 10, **params: Any) -> list[list[dict]]:
    """Every page until a short one (there is no hasNext)."""
    out, offset = [], 0
    while True:
        body = c.get(path, params={**params, "offset": offset, "limit": limit}).json()
        assert body["success"] is True and set(body["data"]) == {"items"}
        out.append(body["data"]["items"])
        if len(out[-1]) < limit:
            return out
        offset += limit


def well_formed(item: dict[str, Any], wallet_key: str) -> bool:
    return isinstance(item[wallet_key], str) and not isinstance(item["volume"], str)


def recent_trades(market: Market, mint: str, seconds: int) -> Counter[str]:
    """Swaps of `mint` per wallet in the last `seconds`, from the served histories."""
    book, index = TradeBook(market, cache_size=1), market.by_address[mint].index
    since = market.end_time - seconds
    out: Counter[str] = Counter()
    for w in market.wallets:
        for tr in book.history(w.address):
            if tr.t >= since and not tr.flags & MALFORMED and index in (tr.from_token, tr.to_token):
                out[w.address] += 1
    return out


def test_top_traders_page_by_ten_and_match_the_market_trades(sim) -> None:
    market = sim.market
    token = max(market.listed_tokens, key=lambda t: len(recent_trades(market, t.address, DAY)))
    with httpx.Client(base_url=sim.base_url) as c:
        got = pages(c, TOP, address=token.address, time_frame="24h", sort_by="volume")
        assert all(len(p) == 10 for p in got[:-1]) and len(got[-1]) < 10
        items = [i for p in got for i in p]
        good = [i for i in items if well_formed(i, "owner")]
        assert len(good) >= len(items) - 2
        expected = recent_trades(market, token.address, DAY)
        assert {i["owner"] for i in good} <= set(expected)
        assert len(items) == len(expected)  # every trader of the day, once
        for i in good:
            assert i["tokenAddress"] == token.address and i["type"] == "24h"
            assert i["trade"] == i["tradeBuy"] + i["tradeSell"] == expected[i["owner"]]
            assert i["isScaledUiToken"] is False and i["multiplier"] is None
            if i["volumeBuy"] is not None:
                assert i["volume"] == pytest.approx(i["volumeBuy"] + i["volumeSell"])
        volumes = [i["volume"] for i in good]
        assert volumes == sorted(volumes, reverse=True)
        by_trade = [i for p in pages(c, TOP, address=token.address, sort_by="trade") for i in p]
        counts = [i["trade"] for i in by_trade if well_formed(i, "owner")]
        assert counts == sorted(counts, reverse=True)
        shorter = [i for p in pages(c, TOP, address=token.address, time_frame="1h") for i in p]
        assert len(shorter) <= len(items)
        for bad in ({"limit": 11}, {"offset": 9995, "limit": 10}, {"time_frame": "7d"}, {}):
            params = {"address": token.address, **bad} if bad else {}
            r = c.get(TOP, params=params)
            assert r.status_code == 400 and r.json()["success"] is False
        unknown = c.get(TOP, params={"address": "unknownmint"}).json()["data"]["items"]
        assert unknown == []


def test_top_traders_are_messy_like_real_items(sim) -> None:
    market = sim.market
    items = []
    with httpx.Client(base_url=sim.base_url) as c:
        for token in market.traded_tokens:
            for frame in ("24h", "12h"):
                items += [
                    i for p in pages(c, TOP, address=token.address, time_frame=frame) for i in p
                ]
    assert len(items) > 100
    assert any(i["tags"] is None for i in items) and any(i["tags"] == [] for i in items)
    assert any(i["volumeBuy"] is None for i in items)
    malformed = [i for i in items if not well_formed(i, "owner")]
    assert 0 < len(malformed) < 0.08 * len(items)


def test_gainers_rank_wallets_by_their_pnl_in_the_period(sim) -> None:
    market = sim.market
    book = TradeBook(market, cache_size=1)
    with httpx.Client(base_url=sim.base_url) as c:
        desc = [i for p in pages(c, GAINERS, type="1W", sort_by="PnL") for i in p]
        asc = [i for p in pages(c, GAINERS, type="1W", sort_by="PnL", sort_type="asc") for i in p]
        for bad in ({"type": "1w"}, {"sort_by": "pnl"}, {"limit": 20}):
            assert c.get(GAINERS, params=bad).status_code == 400
        yesterday = [i for p in pages(c, GAINERS, type="yesterday") for i in p]
    good = [i for i in desc if well_formed(i, "address")]
    assert len(good) >= len(desc) - 3 and len(desc) == len(asc) > 10
    pnl = [i["pnl"] for i in good]
    assert pnl == sorted(pnl, reverse=True) and pnl[0] > 0 > pnl[-1]
    asc_good = [i["address"] for i in asc if well_formed(i, "address")]
    both = set(asc_good) & {i["address"] for i in good}
    assert [a for a in asc_good[::-1] if a in both] == [
        i["address"] for i in good if i["address"] in both
    ]
    since = market.end_time - 7 * DAY
    for i in good:
        assert set(i) == {"network", "address", "pnl", "trade_count", "volume"}
        trades = [
            tr for tr in book.history(i["address"]) if tr.t >= since and not tr.flags & MALFORMED
        ]
        assert i["trade_count"] == len(trades) and i["network"] == "solana"
    assert {i["address"] for i in yesterday} <= {w.address for w in market.wallets}


def test_tidy_discovery_items_have_the_documented_fields_only() -> None:
    with (
        run_in_thread(replace(SETTINGS, quirks=False)) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        token = sim.market.listed_tokens[0].address
        items = [i for p in pages(c, TOP, address=token) for i in p]
        gainers = [i for p in pages(c, GAINERS) for i in p]
    documented = {"tokenAddress", "owner", "tags", "type", "volume", "trade", "tradeBuy"}
    documented |= {"tradeSell", "volumeBuy", "volumeSell"}
    assert items and all(set(i) == documented and i["tags"] == [] for i in items)
    assert gainers and all(
        i["volume"] is not None and isinstance(i["address"], str) for i in gainers
    )
