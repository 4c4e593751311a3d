"""The simulator over HTTP: BirdEye shapes and paging, rate limit, faults, Helius, webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from smarttrader_cli.sim.market import SOL, USDC, USDT, Market, SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sim.webhooks import emit_webhooks, enhanced_swaps

SETTINGS = SimSettings(seed=3, wallets=30, tokens=8, trades=3000, end_time=1_750_000_000)


@pytest.fixture(scope="module")
def sim():
    with run_in_thread(SETTINGS) as running:
        yield running


def test_token_list_filters_sorts_and_pages(sim) -> None:
    with httpx.Client(base_url=sim.base_url) as c:
        body = c.get("/defi/v3/token/list", params={"limit": 100}).json()
        assert body["success"] is True and body["data"]["hasNext"] is False
        items = body["data"]["items"]
        assert len(items) == 8
        liq = [i["liquidity"] for i in items]
        assert liq == sorted(liq, reverse=True)
        filtered = c.get(
            "/defi/v3/token/list", params={"min_liquidity": 100000, "min_market_cap": 1e6}
        ).json()["data"]["items"]
        assert 0 < len(filtered) < 8
        assert all(i["liquidity"] >= 100000 for i in filtered)
        page = c.get("/defi/v3/token/list", params={"limit": 3, "offset": 3}).json()["data"]
        assert [i["address"] for i in page["items"]] == [i["address"] for i in items[3:6]]
        assert page["hasNext"] is True
        assert (
            c.get("/defi/v3/token/list", params={"offset": 9950, "limit": 100}).status_code == 400
        )
        v1 = c.get("/defi/tokenlist", params={"sort_by": "mc", "limit": 5}).json()["data"]
        assert v1["total"] == 8 and set(v1["tokens"][0]) >= {"mc", "v24hUSD", "lastTradeUnixTime"}


def more(data: dict[str, Any]) -> bool:
    """The page flag, under either of its names (`has_next` real, `hasNext` documented)."""
    assert ("has_next" in data) != ("hasNext" in data)
    return bool(data.get("has_next", data.get("hasNext")))


def test_trade_history_windows_and_pages(sim) -> None:
    wallet = sim.market.wallets_of("bot")[0]
    with httpx.Client(base_url=sim.base_url) as c:

        def page(**params):
            params = {"address": wallet, "tx_type": "swap", **params}
            return c.get("/trader/txs/seek_by_time", params=params).json()["data"]

        first = page(limit=100)
        times = [i["block_unix_time"] for i in first["items"]]
        assert times == sorted(times, reverse=True) and more(first)
        before = times[10]
        windowed = page(limit=100, before_time=before)["items"]
        assert all(i["block_unix_time"] < before for i in windowed)
        after = times[-1]
        newer = page(limit=100, after_time=after)["items"]
        assert all(i["block_unix_time"] > after for i in newer)
        assert page(address="unknownwallet", limit=10)["items"] == []
        # the page flag is `has_next` on most pages, `hasNext` on some, stable per request
        flags = Counter()
        pages = [page(limit=20, offset=k * 20) for k in range(60)]
        for data in pages:
            flags["has_next" if "has_next" in data else "hasNext"] += 1
        assert flags["has_next"] > 40 and flags["hasNext"] > 2
        assert page(limit=20, offset=40) == pages[2]
        assert not more(page(limit=100, offset=9900 - 100)) or len(pages[-1]["items"]) == 20


def test_request_params_are_checked(sim) -> None:
    wallet = sim.market.wallets_of("smart")[0]
    with httpx.Client(base_url=sim.base_url) as c:
        url = "/trader/txs/seek_by_time"
        for mode in ("raw", "scaled"):
            r = c.get(url, params={"address": wallet, "ui_amount_mode": mode, "limit": 5})
            assert r.status_code == 200 and len(r.json()["data"]["items"]) == 5
        bad = c.get(url, params={"address": wallet, "ui_amount_mode": "both"})
        assert bad.status_code == 400 and bad.json()["success"] is False
        assert (
            c.get(url, params={"address": wallet, "tx_type": "add"}).json()["data"]["items"] == []
        )
        assert c.get(url, params={"address": wallet, "tx_type": "mint"}).status_code == 400
        holders = "/defi/v3/token/holder"
        token = sim.market.listed_tokens[0].address
        assert c.get(holders, params={"address": token, "ui_amount_mode": "x"}).status_code == 400


def test_rate_limit_and_faults() -> None:
    settings = SimSettings(
        seed=3, wallets=10, tokens=4, trades=200, rate_limit=5, end_time=1_750_000_000
    )
    with run_in_thread(settings) as sim, httpx.Client(base_url=sim.base_url) as c:
        replies = [c.get("/defi/v3/token/list") for _ in range(20)]
        codes = [r.status_code for r in replies]
        assert codes.count(429) >= 10 and codes.count(200) >= 5
        limited = next(r for r in replies if r.status_code == 429)
        assert limited.headers["Retry-After"] == "1"
        assert int(time.time()) - 5 <= int(limited.headers["X-RateLimit-Reset"]) <= time.time() + 5
    faulty = SimSettings(
        seed=3,
        wallets=10,
        tokens=4,
        trades=200,
        fault_rate=0.5,
        fault_delay_seconds=0.2,
        end_time=1_750_000_000,
    )
    with run_in_thread(faulty) as sim, httpx.Client(base_url=sim.base_url) as c:
        outcomes = set()
        for _ in range(60):
            r = c.get("/defi/v3/token/list")
            try:
                r.json()
                outcomes.add(r.status_code)
            except ValueError:
                outcomes.add("malformed")
        assert {200, 500, 503, "malformed"} <= outcomes
        assert any(k.startswith("fault slow") for k in sim.stats())


def test_paths_outside_the_plan_answer_403() -> None:
    settings = replace(SETTINGS, denied_paths=("/trader/txs/seek_by_time",))
    wallet = Market(settings).wallets_of("smart")[0]
    with run_in_thread(settings) as sim, httpx.Client(base_url=sim.base_url) as c:
        denied = c.get("/trader/txs/seek_by_time", params={"address": wallet})
        assert denied.status_code == 403 and denied.json()["success"] is False
        assert c.get("/defi/v3/token/list").status_code == 200


def test_api_key_is_checked_when_configured() -> None:
    settings = SimSettings(
        seed=3, wallets=10, tokens=4, trades=200, birdeye_api_key="k1", helius_api_key="h1"
    )
    with run_in_thread(settings) as sim, httpx.Client(base_url=sim.base_url) as c:
        assert c.get("/defi/v3/token/list").status_code == 401
        assert c.get("/defi/v3/token/list", headers={"X-API-KEY": "k1"}).status_code == 200
        assert c.get("/v0/webhooks", params={"api-key": "nope"}).status_code == 401


def test_helius_webhook_management(sim) -> None:
    body = {
        "webhookURL": "http://127.0.0.1:8000/webhooks",
        "transactionTypes": ["SWAP"],
        "accountAddresses": ["a", "b"],
        "webhookType": "enhanced",
        "authHeader": "secret",
        "txnStatus": "all",
    }
    with httpx.Client(base_url=sim.base_url, params={"api-key": "k"}) as c:
        assert c.get("/v0/webhooks", params={"api-key": ""}).status_code == 401
        created = c.post("/v0/webhooks", json=body).json()
        hook_id = created["webhookID"]
        assert created["accountAddresses"] == ["a", "b"]
        updated = c.put(f"/v0/webhooks/{hook_id}", json={**body, "accountAddresses": ["c"]})
        assert updated.json()["accountAddresses"] == ["c"]
        assert c.get(f"/v0/webhooks/{hook_id}").json()["accountAddresses"] == ["c"]
        assert [h["webhookID"] for h in c.get("/v0/webhooks").json()] == [hook_id]
        assert c.post("/v0/webhooks", json={"webhookURL": "x"}).status_code == 400
        assert c.delete(f"/v0/webhooks/{hook_id}").status_code == 204
        assert c.get(f"/v0/webhooks/{hook_id}").status_code == 404
    truth = httpx.get(f"{sim.base_url}/sim/truth").json()
    assert truth["smart_wallets"] == sim.market.wallets_of("smart")


# --- prices ----------------------------------------------------------------


def test_current_prices(sim) -> None:
    market = sim.market
    token = market.listed_tokens[0]
    with httpx.Client(base_url=sim.base_url) as c:
        one = c.get("/defi/price", params={"address": token.address}).json()["data"]
        assert one["value"] == token.prices[-1] == token.metrics["price"]
        assert one["priceChange24h"] == pytest.approx(
            token.metrics["price_change_24h_percent"], abs=1e-4
        )
        assert isinstance(one["updateUnixTime"], int) and "liquidity" not in one
        assert len(one["updateHumanTime"]) == 19 and one["updateHumanTime"][10] == "T"
        assert market.price(token.index, one["updateUnixTime"]) == one["value"]
        assert c.get("/defi/price", params={"address": "nope"}).json()["data"] is None
        assert c.get("/defi/price").status_code == 400
        mints = f"{SOL},{USDC},{USDT},unknownMint"
        got = c.get("/defi/multi_price", params={"list_address": mints}).json()["data"]
        posted = c.post(
            "/defi/multi_price", json={"list_address": mints}, params={"include_liquidity": "true"}
        ).json()["data"]
        for data in (got, posted):
            assert set(data) == {SOL, USDC, USDT, "unknownMint"} and data["unknownMint"] is None
            assert data[USDC]["value"] == data[USDT]["value"] == 1.0
            assert data[SOL]["value"] == market.tokens[0].prices[-1]
        assert "liquidity" in posted[SOL] and "liquidity" not in got[SOL]
        listed = {"list_address": [SOL, USDC]}
        assert c.post("/defi/multi_price", json=listed).status_code == 400


def test_price_history_is_the_truths_price(sim) -> None:
    market = sim.market
    sol = market.tokens[0]
    with httpx.Client(base_url=sim.base_url) as c:

        def series(address: str, kind: str, lo: int, hi: int) -> list[dict[str, Any]]:
            params = {"address": address, "address_type": "token", "type": kind}
            r = c.get("/defi/history_price", params={**params, "time_from": lo, "time_to": hi})
            assert r.status_code == 200, r.text
            return r.json()["data"]["items"]

        last = market.start_time + market.hours * 3600 - 1  # the history's last second
        hourly = series(SOL, "1H", market.start_time, last)
        assert [p["value"] for p in hourly] == sol.prices
        assert all(p["unixTime"] % 3600 == 0 for p in hourly)
        minutes = series(SOL, "5m", market.start_time, market.start_time + 7200)
        assert len(minutes) == 25 and minutes[11]["value"] == sol.prices[0]
        assert minutes[12]["value"] == sol.prices[1]
        assert len(series(SOL, "1D", market.start_time, market.end_time)) >= 39
        assert series("unknownMint", "1H", market.start_time, market.end_time) == []
        bad = {"address": SOL, "address_type": "token", "type": "1h", "time_from": 0, "time_to": 1}
        assert c.get("/defi/history_price", params=bad).status_code == 400
        del bad["address_type"]
        assert c.get("/defi/history_price", params={**bad, "type": "1H"}).status_code == 400


def test_enhanced_swaps_shape() -> None:
    from smarttrader_cli.sim.market import Market

    market = Market(SETTINGS)
    events = enhanced_swaps(market, 200, start_time=1_750_000_000)
    assert events == enhanced_swaps(Market(SETTINGS), 200, start_time=1_750_000_000)
    wallets = {w.address for w in market.wallets}
    assert all(e["feePayer"] in wallets and e["type"] == "SWAP" for e in events)
    assert len({e["signature"] for e in events}) == 200
    with_swap = [e for e in events if e["events"].get("swap")]
    assert 0 < len(with_swap) < 200  # the transfers fallback is exercised
    for e in with_swap:
        swap = e["events"]["swap"]
        for side in ("nativeInput", "nativeOutput"):
            if swap[side]:
                assert isinstance(swap[side]["amount"], str)
        for out in swap["tokenInputs"] + swap["tokenOutputs"]:
            assert isinstance(out["rawTokenAmount"]["tokenAmount"], str)
    smart = set(market.wallets_of("smart"))
    assert sum(e["feePayer"] in smart for e in events) > 60


def test_emit_webhooks_posts_arrays_with_the_auth_header() -> None:
    received: list[tuple[str | None, list]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(
                (self.headers.get("Authorization"), json.loads(self.rfile.read(length)))
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks"
        result = emit_webhooks(url, SETTINGS, 25, "tok", batch_size=10)
    finally:
        server.shutdown()
    assert result.posts == 3 and result.events == 25 and result.statuses == {200: 3}
    assert [len(batch) for _, batch in received] == [10, 10, 5]
    assert all(auth == "tok" for auth, _ in received)
