"""Discovery lists: the documented top-traders and gainers items, their variants, the
paging (10 a call, a short page is the last), and the config that turns them on."""

from __future__ import annotations

import copy
from pathlib import Path

import httpx
import pytest

from smarttrader_cli.config.loader import load_config
from smarttrader_cli.errors import ApiError, ConfigError
from smarttrader_cli.sources.records import (
    ALL_TOKENS,
    RecordError,
    parse_gainer,
    parse_top_trader,
)

from .test_birdeye_client import CFG, ok, run

SOL = "So11111111111111111111111111111111111111112"
# The documented examples (API_CONTRACTS.md, "More BirdEye endpoints").
TRADER = {
    "tokenAddress": SOL, "owner": "MfDuWeqSHEqTFVYZ7LoexgAK9dxk7cy4DFJWjWMGVWa", "tags": [],
    "type": "24h", "volume": 1649180.8809921234, "trade": 195729, "tradeBuy": 101729,
    "tradeSell": 94000, "volumeBuy": 827695.1022708704, "volumeSell": 821485.7787212529,
    "isScaledUiToken": False, "multiplier": None,
}  # fmt: skip
GAINER = {
    "network": "solana", "address": "FciNKwZAvSzepKH1nFEGeejzbP4k87dJiP9BAzGt2Sm3",
    "pnl": 675542.1369220349, "trade_count": 74194, "volume": 1372626.717443506,
}  # fmt: skip


def test_documented_top_trader_item() -> None:
    r = parse_top_trader(TRADER, SOL, "24h")
    assert (r.source, r.scope, r.time_frame) == ("top_traders", SOL, "24h")
    assert r.wallet_address == TRADER["owner"] and r.volume == TRADER["volume"]
    assert (r.trade_count, r.buy_count, r.sell_count) == (195729, 101729, 94000)
    assert (r.volume_buy, r.volume_sell) == (TRADER["volumeBuy"], TRADER["volumeSell"])
    assert r.tags == "" and r.pnl is None


def test_top_trader_variants_nulls_and_snake_case() -> None:
    item = {k: v for k, v in TRADER.items() if k not in ("tokenAddress", "type")}
    item.update(tags=None, volumeBuy=None, volumeSell=None, extra={"anything": 1})
    r = parse_top_trader(item, SOL, "24h")
    assert r.tags is None and r.volume_buy is None and r.buy_count == 101729
    snake = {
        "token_address": SOL, "owner": TRADER["owner"], "trade": "12", "trade_buy": 7,
        "trade_sell": 5, "volume": "10.5", "volume_buy": 6.0, "volume_sell": 4.5,
        "tags": ["bot", "sniper"],
    }  # fmt: skip
    r = parse_top_trader(snake, SOL, "24h")
    assert (r.trade_count, r.buy_count, r.sell_count, r.volume) == (12, 7, 5, 10.5)
    assert (r.volume_buy, r.tags) == (6.0, "bot,sniper")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"owner": None}, "owner: missing"),
        ({"owner": "not-a-wallet"}, "is not a Solana address"),
        ({"tokenAddress": "other"}, "is not the requested token"),
        ({"type": "1h"}, "is not the requested time frame"),
        ({"volume": "n/a"}, "volume: expected a number"),
        ({"tags": "bot"}, "tags: expected a list of strings"),
        ({"trade": True}, "trade: expected an integer"),
    ],
)
def test_bad_top_trader_items_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_top_trader({**TRADER, **change}, SOL, "24h")


def test_gainer_items() -> None:
    r = parse_gainer(GAINER, "1W")
    assert (r.source, r.scope, r.time_frame, r.network) == ("gainers", ALL_TOKENS, "1W", "solana")
    assert (r.pnl, r.trade_count, r.volume) == (GAINER["pnl"], 74194, GAINER["volume"])
    assert parse_gainer({**GAINER, "volume": None, "rank": 3}, "today").volume is None
    assert (
        parse_gainer({"address": GAINER["address"], "PnL": "-3.5", "tradeCount": 2}, "1W").pnl
        == -3.5
    )
    for bad, message in (({"pnl": None}, "pnl: missing"), ({"address": ""}, "address")):
        with pytest.raises(RecordError, match=message):
            parse_gainer({**GAINER, **bad}, "1W")


def _traders(n: int, bad: set[int] = frozenset()) -> list[dict]:
    from smarttrader_cli.sim.accounts import wallet_key

    out = []
    for i in range(n):
        item = copy.deepcopy(TRADER)
        item["owner"] = None if i in bad else wallet_key(bytes([i]) * 32)
        out.append(item)
    return out


def test_top_traders_page_by_ten_stop_on_a_short_page_and_keep_bad_items_apart() -> None:
    everyone = _traders(23, bad={4})
    calls: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        calls.append(params)
        offset, limit = int(params["offset"]), int(params["limit"])
        return ok({"items": everyone[offset : offset + limit]})

    cfg = CFG.__class__(**{**CFG.__dict__, "page_size": 100, "max_offset": 10000})
    fetched, _, _ = run(handler, lambda c: c.top_traders(SOL, "24h", "volume", 50), cfg)
    assert [(c["offset"], c["limit"]) for c in calls] == [("0", "10"), ("10", "10"), ("20", "10")]
    assert calls[0]["time_frame"] == "24h" and calls[0]["sort_by"] == "volume"
    assert fetched.items == 23 and len(fetched.records) == 22 and len(fetched.rejects) == 1
    assert (
        fetched.rejects[0].request
        == f"address={SOL}&time_frame=24h&sort_by=volume&sort_type=desc&offset=0"
    )
    # a cap below the list: the last call asks for what is left
    calls.clear()
    fetched, _, _ = run(handler, lambda c: c.top_traders(SOL, "24h", "trade", 15), cfg)
    assert [(c["offset"], c["limit"]) for c in calls] == [("0", "10"), ("10", "5")]
    assert len(fetched.records) == 14


def test_gainers_respect_the_offset_cap_and_fail_when_every_item_is_bad() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["type"] == "yesterday" and request.url.params["sort_by"] == "PnL"
        return ok({"items": [{**GAINER, "address": None}] * int(request.url.params["limit"])})

    cfg = CFG.__class__(**{**CFG.__dict__, "page_size": 100, "max_offset": 20})
    with pytest.raises(ApiError, match="all 20 items were malformed"):
        run(handler, lambda c: c.gainers("yesterday", 100), cfg)


def test_discovery_config_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "st.yaml"
    path.write_text("discovery:\n  gainers: true\n  gainers_time_frames: [1W, today]\n")
    assert load_config(path, env={}).config.discovery.gainers_time_frames == ["1W", "today"]
    for body, message in (
        ("gainers_time_frames: [1w]", "gainers_time_frames must be a non-empty list"),
        ("gainers_time_frames: []", "gainers_time_frames must be a non-empty list"),
        ("top_traders_time_frame: 7d", "top_traders_time_frame"),
        ("top_traders_per_token: 0", "top_traders_per_token"),
        ("gainers_per_list: 10001", "gainers_per_list"),
    ):
        path.write_text(f"discovery:\n  {body}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path, env={})
