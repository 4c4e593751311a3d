"""Parsing the documented BirdEye bodies, their variants, and rejecting the rest."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from smarttrader_cli.sources.records import (
    NO_INDEX,
    RecordError,
    parse_holder,
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
    assert r.key == ("3tiVxyz61rF", 2, 0, "", WALLET)
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
        (lambda i: i["base"].update(amount=8243057055060.5), "base.amount"),  # not noise
        (lambda i: i["base"].update(amount=8243057), "base.amount"),  # disagrees with ui
        (lambda i: i.update(ins_index=-3), "ins_index"),
        (lambda i: i["quote"].update(address=i["base"]["address"]), "base.address"),
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


def test_token_v3_documented_and_variants() -> None:
    t = parse_token_v3(TOKEN_V3)
    assert t.token_address == TOKEN_V3["address"] and t.holder == 900000
    assert t.recent_listing_time is None and t.price == pytest.approx(0.0000213)
    assert parse_token_v3({**TOKEN_V3, "liquidity": "8100000.5"}).liquidity == 8100000.5
    with pytest.raises(RecordError, match=r"^liquidity"):
        parse_token_v3({**TOKEN_V3, "liquidity": {"usd": 1}})
    with pytest.raises(RecordError, match=r"^address"):
        parse_token_v3({**TOKEN_V3, "address": ""})


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "birdeye"


def _items(name: str) -> list[dict]:
    return json.loads((FIXTURES / name).read_text())["data"]["items"]


def test_a_top_level_swap_with_null_inner_index_parses() -> None:
    [item] = _items("seek_top_level_null_inner.json")
    r = parse_trade(item, item["owner"])
    # gave 3,309,671,965 lamports of SOL (9 decimals), got 499,593,620 USDC units (6 decimals)
    assert (r.from_symbol, r.from_amount_raw, r.from_amount) == ("SOL", "3309671965", 3.309671965)
    assert (r.to_symbol, r.to_amount_raw, r.to_amount) == ("USDC", "499593620", 499.59362)
    assert (r.ins_index, r.inner_ins_index, r.fill_id) == (1, NO_INDEX, "")


def test_openbook_fills_of_one_tx_without_indexes_get_distinct_stable_keys() -> None:
    items = _items("seek_openbook_fills.json")
    wallet = items[0]["owner"]
    first, second = (parse_trade(i, wallet) for i in items)
    assert first.tx_hash == second.tx_hash
    assert (first.ins_index, first.inner_ins_index) == (NO_INDEX, NO_INDEX)
    assert first.key != second.key and first.fill_id and second.fill_id
    # the float raw amount 4799161360.000001 is the integer 4799161360 with rounding noise
    assert first.to_amount_raw == "4799161360" and first.to_amount == 4799.16136
    assert first.from_amount_raw == "31792000000" and first.from_amount == 31.792
    assert second.to_amount_raw == "198768225" and second.from_amount_raw == "1317000000"
    # the same item fetched again (another page, another run) has the same key
    assert parse_trade(copy.deepcopy(items[0]), wallet).key == first.key
    # the owner is the wallet even when `signers` names another account
    assert items[0]["signers"] != [wallet] and first.wallet_address == wallet


def test_string_raw_amounts_parse() -> None:
    [item] = _items("seek_string_amounts.json")
    r = parse_trade(item, item["owner"])
    assert item["base"]["amount"] == "33084238808"
    assert (r.from_amount_raw, r.from_amount) == ("33084238808", 33.084238808)
    assert (r.to_amount_raw, r.to_amount) == ("4993988490", 4993.98849)
    assert (r.ins_index, r.inner_ins_index) == (1, 3)


def test_stake_pool_items_with_null_signers_and_extra_fields_parse() -> None:
    items = _items("seek_stake_pool_signers_null.json")
    assert items[0]["signers"] is None
    records = [parse_trade(i, i["owner"]) for i in items]
    assert {r.source for r in records} == {"stake_pool"}
    assert len({r.key for r in records}) == len(records)


def test_the_documented_example_parses() -> None:
    [item] = _items("seek_doc_has_next_camel.json")
    assert parse_trade(item, item["owner"]).tx_hash == item["tx_hash"]
