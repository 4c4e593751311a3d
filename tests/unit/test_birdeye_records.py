"""Parsing the documented BirdEye bodies, their variants, and rejecting the rest."""

from __future__ import annotations

import copy

import pytest

from smarttrader_cli.sources.records import (
    RecordError,
    parse_holder,
    parse_token_v1,
    parse_token_v3,
    parse_trade,
)

WALLET = "GBJ4MZe8fqpA6UVgjh19BwJPMb79KDfMv78XnFVxgH2Q"
TRADE = {
    "quote": {"symbol": "SOL", "decimals": 9, "address": "So11111111111111111111111111111111111111112",
              "amount": 8791828613200, "type_swap": "to", "ui_amount": 8791.8286132, "price": 182.32,
              "nearest_price": 182.32, "change_amount": 8791828613200, "ui_change_amount": 8791.8286132},
    "base": {"symbol": "BNSOL", "decimals": 9, "address": "BNso1VUJnh4zcfpZa6986Ea66P6TCp59hvtNJ8b1X85",
             "amount": 8243057055060, "type_swap": "from", "ui_amount": 8243.05, "price": 195.07,
             "nearest_price": 195.07, "change_amount": -8243057055060, "ui_change_amount": -8243.05},
    "base_price": 195.07, "quote_price": 182.32, "tx_hash": "3tiVxyz61rF", "source": "raydium",
    "block_unix_time": 1754870741, "tx_type": "swap", "owner": WALLET,
    "block_number": 359226070, "volume_usd": 1602968.28, "ins_index": 2, "inner_ins_index": 0,
}  # fmt: skip
HOLDER = {
    "amount": "4995300410087424", "decimals": 9, "mint": "So11111111111111111111111111111111111111112",
    "owner": "AVzP2GeRmqGphJsMxWoqjpUifPpCret7LqWhD8NWQK49", "token_account": "BUvdSCm",
    "ui_amount": 4995300.410087424, "is_scaled_ui_token": False, "multiplier": None,
}  # fmt: skip
TOKEN_V3 = {
    "address": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", "name": "Bonk", "symbol": "Bonk",
    "decimals": 5, "logo_uri": "https://x", "market_cap": 1.5e9, "fdv": 1.7e9, "liquidity": 8.1e6,
    "price": 0.0000213, "price_change_24h_percent": -3.2, "volume_24h_usd": 3.4e7,
    "volume_24h_change_percent": 12.5, "trade_24h_count": 120000, "buy_24h": 60000,
    "sell_24h": 60000, "unique_wallet_24h": 20000, "holder": 900000,
    "last_trade_unix_time": 1754870741, "recent_listing_time": None,
}  # fmt: skip


def test_documented_trade_maps_from_and_to_legs() -> None:
    r = parse_trade(TRADE, WALLET)
    # base had type_swap "from": the wallet gave up BNSOL and received SOL
    assert (r.from_symbol, r.to_symbol) == ("BNSOL", "SOL")
    assert r.from_amount == pytest.approx(8243.05) and r.from_amount_raw == "8243057055060"
    assert r.to_amount == pytest.approx(8791.8286132) and r.to_amount_raw == "8791828613200"
    assert (r.from_price_usd, r.to_price_usd) == (195.07, 182.32)
    assert r.key == ("3tiVxyz61rF", 2, 0, WALLET)
    assert r.block_unix_time == 1754870741 and r.block_number == 359226070


def test_direction_does_not_depend_on_which_leg_is_base() -> None:
    item = copy.deepcopy(TRADE)
    item["base"], item["quote"] = item["quote"], item["base"]
    r = parse_trade(item, WALLET)
    assert (r.from_symbol, r.to_symbol) == ("BNSOL", "SOL")


def test_amount_as_string_and_price_fallbacks() -> None:
    item = copy.deepcopy(TRADE)
    item["base"]["amount"] = "8243057055060"
    item["base"]["price"] = None  # falls back to nearest_price
    item["quote"]["price"] = None
    item["quote"]["nearest_price"] = None  # unpriced
    r = parse_trade(item, WALLET)
    assert r.from_amount_raw == "8243057055060"
    assert r.from_price_usd == 195.07
    assert r.to_price_usd is None


def test_missing_type_swap_falls_back_to_the_sign_of_the_change() -> None:
    item = copy.deepcopy(TRADE)
    del item["base"]["type_swap"]
    assert parse_trade(item, WALLET).from_symbol == "BNSOL"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda i: i.update(tx_hash=None), "tx_hash"),
        (lambda i: i["base"].update(type_swap="sideways"), "base.type_swap"),
        (lambda i: i["quote"].update(type_swap="from"), "quote.type_swap"),
        (lambda i: i.update(ins_index="first"), "ins_index"),
        (lambda i: i.pop("quote"), "quote"),
        (lambda i: i["base"].update(amount="12abc"), "base.amount"),
        (lambda i: i["base"].update(amount=True), "base.amount"),
        (lambda i: i["quote"].update(price="cheap"), "quote.price"),
        (lambda i: i.update(block_unix_time=None), "block_unix_time"),
        (lambda i: i.update(owner="someoneelse"), "owner"),
        (lambda i: i["base"].update(decimals=None), "base.decimals"),
    ],
)
def test_malformed_trades_are_rejected_naming_the_field(mutate, field) -> None:
    item = copy.deepcopy(TRADE)
    mutate(item)
    with pytest.raises(RecordError, match=rf"^{field.replace('.', '[.]')}\b"):
        parse_trade(item, WALLET)


def test_holder_documented_and_variants() -> None:
    h = parse_holder(HOLDER, HOLDER["mint"])
    assert h.wallet_address == HOLDER["owner"] and h.amount_raw == "4995300410087424"
    assert h.ui_amount == pytest.approx(4995300.410087424) and h.decimals == 9
    numeric = {**HOLDER, "amount": 4995300410087424, "ui_amount": None}
    assert parse_holder(numeric, HOLDER["mint"]).ui_amount == pytest.approx(4995300.410087424)
    with pytest.raises(RecordError, match=r"^owner"):
        parse_holder({**HOLDER, "owner": None}, HOLDER["mint"])
    with pytest.raises(RecordError, match=r"^mint"):
        parse_holder(HOLDER, "OtherMint")
    with pytest.raises(RecordError, match=r"^amount"):
        parse_holder({**HOLDER, "amount": "lots"}, HOLDER["mint"])


def test_token_v3_and_v1() -> None:
    t = parse_token_v3(TOKEN_V3)
    assert t.token_address == TOKEN_V3["address"] and t.holder == 900000
    assert t.recent_listing_time is None and t.price == pytest.approx(0.0000213)
    assert parse_token_v3({**TOKEN_V3, "liquidity": "8100000.5"}).liquidity == 8100000.5
    with pytest.raises(RecordError, match=r"^liquidity"):
        parse_token_v3({**TOKEN_V3, "liquidity": {"usd": 1}})
    with pytest.raises(RecordError, match=r"^address"):
        parse_token_v3({**TOKEN_V3, "address": ""})
    v1 = parse_token_v1(
        {"address": "A1", "decimals": 6, "price": 1.5, "lastTradeUnixTime": 1754870741,
         "liquidity": 2e5, "mc": 3e6, "name": "A", "symbol": "A", "v24hChangePercent": -2.0,
         "v24hUSD": 9e4}
    )  # fmt: skip
    assert (v1.market_cap, v1.volume_24h_usd, v1.last_trade_unix_time) == (3e6, 9e4, 1754870741)
