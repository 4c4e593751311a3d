"""The simulator over HTTP: BirdEye shapes and paging, rate limit, faults, prices, Helius.

Helius events carry the quirks of real deliveries at their intended rates, and each
event's accountData, read by hand here, says what its truth says.
"""

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
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.sim.market import SOL, USDC, USDT, Market, SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sim.truth import birdeye_truth, helius_truth
from smarttrader_cli.sim.webhooks import emit_webhooks, enhanced_swaps

SETTINGS = SimSettings(seed=3, wallets=30, tokens=8, trades=3000, end_time=1_750_000_000)
START = 1_750_000_000
RENT = 2_039_280
QUOTES = (SOL, USDC, USDT)


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
        # every SOL-quoted BirdEye truth leg is priced as the 1m series says
        wallet = market.wallets_of("smart")[0]
        legs = [
            leg
            for leg in birdeye_truth(market, [wallet])
            if leg.token_address == SOL and not leg.malformed
        ][:40]
        assert legs
        for leg in legs:
            minute = leg.time // 60 * 60
            (point,) = series(SOL, "1m", minute, minute)
            assert leg.value_usd == pytest.approx(leg.amount * point["value"], rel=1e-12)
        # so is every SOL leg of a Helius event (past the history: the current price)
        events = helius_truth(market, 200, START)
        sol_legs = [leg for e in events for leg in e["legs"] if leg.token_address == SOL]
        current = c.get("/defi/price", params={"address": SOL}).json()["data"]["value"]
        for leg in sol_legs:
            other = next(g for g in events if g["signature"] == leg.tx)["legs"]
            if any(g.token_address in (USDC, USDT) for g in other):
                continue  # valued by its stable leg
            assert leg.value_usd == pytest.approx(leg.amount * current, rel=1e-12)
        bad = {"address": SOL, "address_type": "token", "type": "1h", "time_from": 0, "time_to": 1}
        assert c.get("/defi/history_price", params=bad).status_code == 400
        del bad["address_type"]
        assert c.get("/defi/history_price", params={**bad, "type": "1H"}).status_code == 400


# --- Helius enhanced transactions -------------------------------------------


def read_by_hand(event: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """What the wallet traded, from accountData alone: net raw change per asset.

    Native SOL and wSOL are one asset: the wallet's lamports plus those of its token
    accounts (a wSOL account holds its balance as lamports; a new account holds rent),
    the fee added back. SOL is no leg of a token-to-token swap when it is a dust tip.
    """
    if event["transactionError"] is not None:
        return "failed", {}
    wallet = event["feePayer"]
    rows = {row["account"]: row for row in event["accountData"]}
    sol = rows[wallet]["nativeBalanceChange"] + event["fee"]
    net: Counter[str] = Counter()
    for row in event["accountData"]:
        mine = [c for c in row["tokenBalanceChanges"] if c["userAccount"] == wallet]
        for change in mine:
            raw = int(change["rawTokenAmount"]["tokenAmount"])
            if change["mint"] == SOL:
                assert raw == row["nativeBalanceChange"]
            else:
                net[change["mint"]] += raw
        if mine:
            sol += row["nativeBalanceChange"]
    legs = {mint: raw for mint, raw in net.items() if raw}
    if sol and not (len(legs) >= 2 and abs(sol) < 1_000_000):
        legs[SOL] = sol
    if len(legs) < 2:
        return "not_a_swap", {}
    return "swap", legs


@pytest.fixture(scope="module")
def helius() -> tuple[Market, list[dict[str, Any]], list[dict[str, Any]]]:
    market = Market(SETTINGS)
    return market, enhanced_swaps(market, 3000, start_time=START), helius_truth(market, 3000, START)


def test_enhanced_transactions_are_deterministic() -> None:
    market = Market(SETTINGS)
    events = enhanced_swaps(market, 60, start_time=START)
    assert events == enhanced_swaps(Market(SETTINGS), 60, start_time=START)
    assert events[:30] == enhanced_swaps(market, 30, start_time=START)
    assert len({e["signature"] for e in events}) == 60
    later = enhanced_swaps(market, 60, start_time=START + 1)
    assert not {e["signature"] for e in events} & {e["signature"] for e in later}
    other = enhanced_swaps(Market(replace(SETTINGS, seed=4)), 60, start_time=START)
    assert events[0]["signature"] != other[0]["signature"]


def test_account_data_says_what_the_truth_says(helius) -> None:
    market, events, truth = helius
    assert [e["signature"] for e in events] == [t["signature"] for t in truth]
    for event, want in zip(events, truth, strict=True):
        assert event["feePayer"] == want["wallet"] and event["timestamp"] == want["timestamp"]
        outcome, legs = read_by_hand(event)
        assert outcome == want["outcome"], event["signature"]
        expected = {}
        for leg in want["legs"]:
            decimals = (
                9 if leg.token_address == SOL else market.by_address[leg.token_address].decimals
            )
            assert leg.amount == leg.amount_raw / 10**decimals and leg.amount_raw > 0
            expected[leg.token_address] = leg.amount_raw * (1 if leg.direction == "buy" else -1)
            assert leg.value_usd is not None and leg.value_usd > 0
        assert legs == expected, event["signature"]


def test_helius_quirks_appear_at_their_rates(helius) -> None:
    market, events, truth = helius
    n = len(events)
    outcomes = Counter(t["outcome"] for t in truth)
    assert 0.02 < outcomes["failed"] / n < 0.07 and 0.035 < outcomes["not_a_swap"] / n < 0.09
    swaps = [(e, t) for e, t in zip(events, truth, strict=True) if t["outcome"] == "swap"]
    labels = Counter((e["type"], e["source"]) for e, _ in swaps)
    assert labels[("TRANSFER", "SYSTEM_PROGRAM")] > 0.05 * len(swaps)
    assert labels[("UNKNOWN", "UNKNOWN")] > 0.04 * len(swaps)
    assert {"RAYDIUM", "JUPITER", "ORCA", "PUMP_AMM"} <= {s for t, s in labels if t == "SWAP"}
    # events: {} in some, [] in others, {"swap": {}} in a few
    forms = Counter(
        "list" if isinstance(e["events"], list) else "swap" if e["events"].get("swap") else
        "empty_swap" if "swap" in e["events"] else "dict"
        for e in events
    )  # fmt: skip
    assert forms["list"] > 0.1 * n and forms["dict"] > 0.2 * n and forms["swap"] > 0.3 * n
    assert 0.01 * n < forms["empty_swap"] < 0.08 * n
    for e, _ in swaps:
        swap = e["events"].get("swap") if isinstance(e["events"], dict) else None
        if not swap:
            continue
        owners = {o["userAccount"] for o in swap["tokenOutputs"]}
        if e["source"] == "RAYDIUM" and owners:
            assert owners.isdisjoint({e["feePayer"]})  # credited to the pool
        if e["source"] == "JUPITER" and owners:
            assert owners == {e["feePayer"]}
        for side in ("nativeInput", "nativeOutput"):
            if swap[side]:
                assert isinstance(swap[side]["amount"], str)
        for item in swap["tokenInputs"] + swap["tokenOutputs"] + swap["tokenFees"]:
            assert isinstance(item["rawTokenAmount"]["tokenAmount"], str)
    fees = [f for e, _ in swaps if isinstance(e["events"], dict) for f in
            (e["events"].get("swap") or {}).get("tokenFees", [])]  # fmt: skip
    assert fees and all(f["userAccount"] == "" for f in fees)
    assert any(t["fromUserAccount"] == "" for e, _ in swaps for t in e["tokenTransfers"])
    # wSOL through a temporary account: naive sums count the SOL twice
    wraps = 0
    for e, t in swaps:
        wallet = e["feePayer"]
        natives = e["nativeTransfers"]
        sol_out = [
            x for x in e["tokenTransfers"] if x["mint"] == SOL and x["fromUserAccount"] == wallet
        ]
        funded = {x["toUserAccount"] for x in natives if x["fromUserAccount"] == wallet}
        temp = {x["fromUserAccount"] for x in natives if x["toUserAccount"] == wallet} & funded
        if e["source"] in ("PUMP_AMM", "SYSTEM_PROGRAM") and any(
            leg.token_address == SOL for leg in t["legs"]
        ):
            assert temp, e["signature"]
            assert any(
                x["fromUserAccount"] in temp and x["toUserAccount"] == wallet for x in natives
            )
        if sol_out and temp:
            spent = next(g.amount_raw for g in t["legs"] if g.token_address == SOL)
            naive = sum(x["amount"] for x in natives if x["fromUserAccount"] == wallet) - RENT
            naive += sum(round(x["tokenAmount"] * 10**9) for x in sol_out)
            assert naive > 1.8 * spent
            wraps += 1
    assert wraps > 0.2 * len(swaps)
    # tips and rent: SOL to third parties in nativeTransfers
    amounts = Counter(x["amount"] for e, _ in swaps for x in e["nativeTransfers"])
    assert amounts[4240] > 10 and amounts[200_000_000] + amounts[113_000_000] > 3
    assert amounts[RENT] > 0.3 * len(swaps)
    # token-to-token swaps, and multi-hop routes whose middle token nets to zero
    no_quote = [t for _, t in swaps if not any(g.token_address in QUOTES for g in t["legs"])]
    assert 0.05 * len(swaps) < len(no_quote) < 0.3 * len(swaps)
    hops = 0
    for e, t in swaps:
        traded = {g.token_address for g in t["legs"]} | {SOL}
        moved = {x["mint"] for x in e["tokenTransfers"] if e["feePayer"] in
                 (x["fromUserAccount"], x["toUserAccount"])}  # fmt: skip
        hops += bool(moved - traded)
    assert hops > 0.02 * len(swaps)
    # failed transactions show the fee and nothing else; plain transfers are no swap
    for e, t in zip(events, truth, strict=True):
        assert isinstance(e["slot"], int) and isinstance(e["timestamp"], int)
        assert isinstance(e["fee"], int)
        assert all(isinstance(x["amount"], int) for x in e["nativeTransfers"])
        assert all(isinstance(x["tokenAmount"], float | int) for x in e["tokenTransfers"])
        if t["outcome"] == "failed":
            assert e["transactionError"] is not None and not e["nativeTransfers"]
            assert e["accountData"][0]["nativeBalanceChange"] == -e["fee"]
            assert not any(row["tokenBalanceChanges"] for row in e["accountData"])
        if t["outcome"] == "not_a_swap":
            assert (e["type"], e["source"]) == ("TRANSFER", "SYSTEM_PROGRAM")
            assert not e["tokenTransfers"] and len(e["nativeTransfers"]) == 1
    smart = set(market.wallets_of("smart"))
    assert sum(e["feePayer"] in smart for e in events) > 0.4 * n


def test_tidy_enhanced_transactions() -> None:
    market = Market(replace(SETTINGS, quirks=False))
    events = enhanced_swaps(market, 300, start_time=START)
    truth = helius_truth(market, 300, START)
    for e, t in zip(events, truth, strict=True):
        assert (e["type"], e["source"], t["outcome"]) == ("SWAP", "JUPITER", "swap")
        swap = e["events"]["swap"]
        assert {o["userAccount"] for o in swap["tokenOutputs"]} <= {e["feePayer"]}
        assert not any(x["mint"] == SOL for x in e["tokenTransfers"])
        _, legs = read_by_hand(e)
        signed = {
            g.token_address: g.amount_raw * (1 if g.direction == "buy" else -1) for g in t["legs"]
        }
        assert legs == signed


def test_truth_cli_prints_helius_and_birdeye_legs() -> None:
    market_args = ["--seed", "3", "--wallets", "30", "--tokens", "8", "--trades", "3000"]
    market_args += ["--end-time", str(SETTINGS.end_time)]
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["sim", "truth", *market_args, "--swaps", "helius", "--count", "40",
         "--start-time", str(START), "--format", "json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    events = json.loads(out.stdout)
    want = helius_truth(Market(SETTINGS), 40, START)
    assert [e["signature"] for e in events] == [e["signature"] for e in want]
    assert events[0]["legs"][0]["amount_raw"] == want[0]["legs"][0].amount_raw
    wallet = Market(SETTINGS).wallets_of("smart")[0]
    csv_out = runner.invoke(
        app,
        ["sim", "truth", *market_args, "--swaps", "birdeye", "--wallet", wallet, "-f", "csv"],
        catch_exceptions=False,
    )
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("source,wallet,tx,time,direction")
    assert len(lines) - 1 == len(birdeye_truth(Market(SETTINGS), [wallet]))
    missing = runner.invoke(app, ["sim", "truth", "--swaps", "helius"])
    assert missing.exit_code != 0


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
    assert result.start_time == received[0][1][0]["timestamp"]
    assert [len(batch) for _, batch in received] == [10, 10, 5]
    assert all(auth == "tok" for auth, _ in received)
