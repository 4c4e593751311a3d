"""BirdEye client at the transport boundary: retries, Retry-After, keys, paging, window slide."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace

import httpx
import pytest

from smarttrader_cli.config.schema import BirdeyeConfig, TokensConfig
from smarttrader_cli.errors import ApiError, ConfigError
from smarttrader_cli.sources.birdeye import BirdeyeClient
from smarttrader_cli.sources.pacing import TokenBucket
from smarttrader_cli.sources.retry import RetryPolicy, parse_retry_after

from .test_birdeye_records import HOLDER, TOKEN_V3, TRADE, WALLET

CFG = BirdeyeConfig(
    base_url="http://127.0.0.1:9", rate_limit_rps=0, max_retries=3, backoff_base_seconds=0.01,
    backoff_max_seconds=5.0, page_size=2, max_offset=6,
)  # fmt: skip


def ok(data: dict) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": data})


def run(handler, coro_fn, cfg: BirdeyeConfig = CFG, api_key: str | None = None):
    """Run `coro_fn(client)` against a MockTransport; returns (result, sleeps, client)."""
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def main():
        client = BirdeyeClient(
            cfg, api_key, transport=httpx.MockTransport(handler), sleep=fake_sleep
        )
        async with client:
            return await coro_fn(client), client

    result, client = asyncio.run(main())
    return result, sleeps, client


def test_headers_and_retries_on_5xx_timeouts_and_bad_json() -> None:
    calls: list[httpx.Request] = []
    script = ["500", "timeout", "badjson", "ok"]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        step = script[len(calls) - 1]
        if step == "500":
            return httpx.Response(500, json={"success": False})
        if step == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if step == "badjson":
            return httpx.Response(200, content=b'{"success": true, "data": {"ite')
        return ok({"items": []})

    data, sleeps, client = run(handler, lambda c: c.get("/x", {"a": 1}), api_key="KEY")
    assert data == {"items": []}
    assert len(calls) == 4 and len(sleeps) == 3
    assert calls[0].headers["X-API-KEY"] == "KEY" and calls[0].headers["x-chain"] == "solana"
    assert calls[0].headers["accept"] == "application/json"
    # full jitter under an exponential ceiling
    assert all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps))
    assert client.stats.retries == 3


def test_retry_after_is_honoured_and_capped() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "2"})
        if len(calls) == 2:
            return httpx.Response(503, headers={"Retry-After": "100"})
        return ok({"items": []})

    _, sleeps, client = run(handler, lambda c: c.get("/x", {}))
    assert sleeps == [2.0, 5.0]  # the second is capped by backoff_max_seconds
    assert client.stats.rate_limited == 1


def test_gives_up_after_max_retries_with_the_last_reason() -> None:
    def handler(request):
        return httpx.Response(502)

    with pytest.raises(ApiError, match=r"failed after 4 attempts: HTTP 502"):
        run(handler, lambda c: c.get("/x", {}))


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_stop_at_once(status: int) -> None:
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(status, json={"success": False, "message": "Unauthorized"})

    with pytest.raises(ApiError, match="BIRDEYE_API_KEY"):
        run(handler, lambda c: c.get("/x", {}))
    assert len(calls) == 1


def test_other_4xx_is_not_retried() -> None:
    def handler(request):
        return httpx.Response(400, json={"success": False, "message": "offset too big"})

    with pytest.raises(ApiError, match="400: offset too big"):
        run(handler, lambda c: c.get("/x", {}))


def test_missing_key_is_refused_for_a_remote_api_only() -> None:
    with pytest.raises(ConfigError, match="BIRDEYE_API_KEY"):
        BirdeyeClient(replace(CFG, base_url="https://public-api.birdeye.so"), None)
    BirdeyeClient(replace(CFG, base_url="http://localhost:8900"), None)


def test_token_list_pages_until_the_limit_and_filters() -> None:
    tokens = [
        {**TOKEN_V3, "address": f"T{i}", "liquidity": 1e6 - i, "price_change_24h_percent": 5.0}
        for i in range(5)
    ]
    tokens[1]["price_change_24h_percent"] = 5000.0  # dropped client-side
    tokens[2] = {**tokens[2], "liquidity": "lots"}  # rejected
    seen = []

    def handler(request):
        p = request.url.params
        seen.append((int(p["offset"]), int(p["limit"]), p["min_liquidity"]))
        off, lim = int(p["offset"]), int(p["limit"])
        return ok({"items": tokens[off : off + lim], "hasNext": off + lim < len(tokens)})

    result, _, _ = run(handler, lambda c: c.token_list(TokensConfig(limit=2)))
    assert [r.token_address for r in result.records] == ["T0", "T3"]
    assert len(result.rejects) == 1 and result.rejects[0].reason.startswith("liquidity")
    assert json.loads(result.rejects[0].raw)["address"] == "T2"
    assert [s[:2] for s in seen] == [(0, 2), (2, 2)] and seen[0][2] == "100000.0"


def test_holders_stop_on_a_short_page() -> None:
    holders = [{**HOLDER, "owner": f"W{i}"} for i in range(3)]

    def handler(request):
        off, lim = int(request.url.params["offset"]), int(request.url.params["limit"])
        return ok({"items": holders[off : off + lim]})

    result, _, _ = run(handler, lambda c: c.token_holders(HOLDER["mint"], top=20))
    assert [h.wallet_address for h in result.records] == ["W0", "W1", "W2"]


def test_all_malformed_response_fails() -> None:
    def handler(request):
        return ok({"items": [{**HOLDER, "owner": None}]})

    with pytest.raises(ApiError, match="all 1 items were malformed"):
        run(handler, lambda c: c.token_holders(HOLDER["mint"], top=5))


def test_envelope_without_items_fails_clearly() -> None:
    def handler(request):
        return httpx.Response(200, json={"success": True, "data": {"things": []}})

    with pytest.raises(ApiError, match=r"no 'data[.]items' list"):
        run(handler, lambda c: c.token_holders(HOLDER["mint"], top=5))


def _history(n: int) -> list[dict]:
    """n trades, newest first, two per second so windows cut through seconds."""
    items = []
    for i in range(n):
        item = copy.deepcopy(TRADE)
        item["tx_hash"] = f"tx{i:03d}"
        item["block_unix_time"] = 1_000_000 - i // 2
        items.append(item)
    return items


def test_trades_slide_the_window_past_the_offset_cap() -> None:
    history = _history(15)
    requests = []

    def handler(request):
        p = request.url.params
        off, lim = int(p["offset"]), int(p["limit"])
        assert off + lim <= CFG.max_offset
        after = int(p.get("after_time", -1))
        before = int(p.get("before_time", 1 << 40))
        window = [t for t in history if after < t["block_unix_time"] < before]
        requests.append((off, p.get("before_time")))
        return ok({"items": window[off : off + lim], "hasNext": off + lim < len(window)})

    result, _, _ = run(handler, lambda c: c.wallet_trades(WALLET, after_time=999_990))
    assert sorted(r.tx_hash for r in result.records) == [f"tx{i:03d}" for i in range(15)]
    assert any(before is not None for _, before in requests)  # the window did slide
    assert all(off + 2 <= CFG.max_offset for off, _ in requests)
    # after_time is respected
    result, _, _ = run(handler, lambda c: c.wallet_trades(WALLET, after_time=999_997))
    assert sorted(r.tx_hash for r in result.records) == [f"tx{i:03d}" for i in range(6)]


def test_trades_stop_at_max_trades() -> None:
    history = _history(15)

    def handler(request):
        off, lim = int(request.url.params["offset"]), int(request.url.params["limit"])
        return ok({"items": history[off : off + lim], "hasNext": off + lim < len(history)})

    result, _, _ = run(handler, lambda c: c.wallet_trades(WALLET, None, max_trades=3))
    assert len(result.records) == 3 and result.capped


def test_token_bucket_paces_at_the_rate_after_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=3, clock=lambda: now[0])
    waits = [bucket.reserve() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3])
    now[0] = 10.0
    assert bucket.reserve() == 0
    bucket.pause(2.0)
    assert bucket.reserve() == pytest.approx(2.0)
    assert TokenBucket(rate=0).reserve() == 0


def test_retry_policy_and_retry_after_parsing() -> None:
    policy = RetryPolicy(max_retries=3, base_seconds=1, max_seconds=4)
    assert all(0 <= policy.backoff(a) <= min(4, 2**a) for a in range(6) for _ in range(20))
    assert policy.backoff(0, retry_after=9) == 4
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert policy.retryable(429) and policy.retryable(503) and not policy.retryable(404)


def test_ui_amount_mode_is_sent_on_every_request() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params.get("ui_amount_mode"))
        return ok({"items": []})

    run(handler, lambda c: c.get("/x", {}))
    run(handler, lambda c: c.get("/x", {}), cfg=replace(CFG, ui_amount_mode="scaled"))
    assert seen == ["raw", "scaled"]


def test_429s_have_their_own_budget_and_slow_the_bucket_down() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) <= 5:  # more 429s than max_retries (3): still not a failure
            return httpx.Response(429, headers={"Retry-After": "1", "X-RateLimit-Reset": "9"})
        if len(calls) == 6:
            return httpx.Response(502)
        return ok({"items": []})

    cfg = replace(CFG, rate_limit_rps=20.0)
    _, sleeps, client = run(handler, lambda c: c.get("/x", {}), cfg=cfg)
    assert len(calls) == 7 and sleeps[:5] == [1.0] * 5
    assert client.stats.rate_limited == 5 and client.stats.retries == 6
    # five halvings from 20/s stop at the floor of a tenth; one success wins 2 % back
    assert client.bucket.rate == pytest.approx(2.0 + 0.4)


def test_rate_limit_reset_header_is_used_without_retry_after() -> None:
    from smarttrader_cli.sources.retry import rate_limit_wait

    assert rate_limit_wait({"x-ratelimit-reset": "3"}) == 3.0
    assert rate_limit_wait({"x-ratelimit-reset": "1700000002"}, now=1700000000.0) == 2.0
    assert rate_limit_wait({}) == 1.0
    assert rate_limit_wait({"retry-after": "7", "x-ratelimit-reset": "3"}) == 7.0


def test_endless_429s_fail_with_advice() -> None:
    def handler(request):
        return httpx.Response(429)

    with pytest.raises(ApiError, match="rate limited 4 times in a row; lower birdeye"):
        run(handler, lambda c: c.get("/x", {}), cfg=replace(CFG, max_rate_limited=3))


def test_a_403_on_one_endpoint_while_others_work_names_the_plan() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/trader/txs/seek_by_time":
            return httpx.Response(403, json={"success": False, "message": "Forbidden"})
        return ok({"items": []})

    async def both(c: BirdeyeClient) -> None:
        await c.get("/defi/v3/token/list", {})
        await c.get("/trader/txs/seek_by_time", {})

    with pytest.raises(ApiError, match="the key's plan does not include /trader/txs/seek_by_time"):
        run(handler, both, api_key="KEY")


def test_real_pages_end_on_has_next_false() -> None:
    pages = []

    def handler(request: httpx.Request) -> httpx.Response:
        pages.append(int(request.url.params["offset"]))
        return ok({"items": [copy.deepcopy(TRADE), copy.deepcopy(TRADE) | {"ins_index": 3}],
                   "has_next": False})  # fmt: skip

    fetched, _, _ = run(handler, lambda c: c.wallet_trades(WALLET, None))
    assert pages == [0] and len(fetched.records) == 2


def test_a_page_of_only_malformed_items_never_fails_the_wallet() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return ok({"items": [{**TRADE, "tx_hash": None}], "has_next": False})

    fetched, _, _ = run(handler, lambda c: c.wallet_trades(WALLET, None))
    assert fetched.records == [] and len(fetched.rejects) == 1
    assert fetched.rejects[0].reason.startswith("tx_hash")


def test_price_history_in_slices_and_current_prices_with_unknown_tokens() -> None:
    slices = []

    def handler(request: httpx.Request) -> httpx.Response:
        p = request.url.params
        if request.url.path == "/defi/history_price":
            lo, hi = int(p["time_from"]), int(p["time_to"])
            slices.append((lo, hi))
            items = [
                {"unixTime": t, "value": 100.0 + t % 7}
                for t in range(lo - lo % 300 + 300, hi + 1, 300)
            ]
            return ok({"isScaledUiToken": False, "items": [*items, {"unixTime": hi, "value": -1}]})
        assert p["list_address"] == "A,B"
        return ok({"A": {"value": 2.5, "updateUnixTime": 1700000000}, "B": None})

    series, _, _ = run(handler, lambda c: c.price_history("A", "5m", 0, 600_000))
    assert slices[0] == (0, 300_000) and slices[-1][1] == 600_000
    assert [r.unix_time for r in series.records] == sorted(r.unix_time for r in series.records)
    assert len(series.rejects) == len(slices)  # the planted non-positive price of each slice
    current, _, _ = run(handler, lambda c: c.current_prices(["A", "B"]))
    assert [(r.token_address, r.price_usd) for r in current.records] == [("A", 2.5)]
