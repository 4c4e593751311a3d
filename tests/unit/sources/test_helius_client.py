"""HeliusClient against httpx.MockTransport: paths, api key, retries, error messages."""

from __future__ import annotations

import json

import httpx
import pytest

from smarttrader_cli.errors import ApiError
from smarttrader_cli.sources.helius import HeliusClient
from smarttrader_cli.sources.retry import RetryPolicy

SPEC = {
    "webhookURL": "https://x/webhooks",
    "transactionTypes": ["SWAP"],
    "accountAddresses": ["A"],
    "webhookType": "enhanced",
    "authHeader": "t",
    "txnStatus": "all",
}


def client(handler, retries: int = 2, sleeps: list[float] | None = None) -> HeliusClient:
    return HeliusClient(
        "http://helius.test/",
        "KEY123",
        retry=RetryPolicy(max_retries=retries, base_seconds=0.01, max_seconds=0.05),
        transport=httpx.MockTransport(handler),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def test_requests_carry_the_api_key_and_hit_the_documented_paths() -> None:
    seen: list[tuple[str, str, str | None, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, request.url.params.get("api-key"), body))
        if request.method == "GET":
            return httpx.Response(200, json=[{"webhookID": "w1", **SPEC}])
        if request.method == "POST":
            return httpx.Response(200, json={"webhookID": "w2", **SPEC})
        return httpx.Response(200, json={"webhookID": "w1", **SPEC})

    with client(handler) as c:
        assert c.list_webhooks()[0]["webhookID"] == "w1"
        assert c.create_webhook(SPEC)["webhookID"] == "w2"
        c.replace_webhook("w1", SPEC)
    assert [(m, p, k) for m, p, k, _ in seen] == [
        ("GET", "/v0/webhooks", "KEY123"),
        ("POST", "/v0/webhooks", "KEY123"),
        ("PUT", "/v0/webhooks/w1", "KEY123"),
    ]
    assert seen[1][3] == SPEC and seen[2][3] == SPEC


def test_get_and_put_retry_on_429_and_5xx_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "0.03"}),
            httpx.Response(503),
            httpx.Response(200, json=[]),
        ]
    )
    sleeps: list[float] = []
    with client(lambda r: next(answers), sleeps=sleeps) as c:
        assert c.list_webhooks() == []
    assert len(sleeps) == 2 and sleeps[0] == pytest.approx(0.03)


def test_retries_are_bounded_and_the_error_names_the_status() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502, json={"error": "bad gateway upstream"})

    with client(handler, retries=2) as c, pytest.raises(ApiError) as info:
        c.replace_webhook("w1", SPEC)
    assert len(calls) == 3
    assert str(info.value) == ("Helius PUT /v0/webhooks/w1 answered HTTP 502: bad gateway upstream")


def test_post_is_not_retried_on_5xx_but_is_on_429() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text="boom")

    with client(handler) as c, pytest.raises(ApiError, match="answered HTTP 500: boom"):
        c.create_webhook(SPEC)
    assert len(calls) == 1  # a blind retry could create a second webhook

    answers = iter([httpx.Response(429), httpx.Response(200, json={"webhookID": "w9"})])
    with client(lambda r: next(answers)) as c:
        assert c.create_webhook(SPEC)["webhookID"] == "w9"


def test_post_timeout_is_not_retried_connect_error_is() -> None:
    calls = []

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    with client(timeout) as c, pytest.raises(ApiError, match="POST /v0/webhooks: ReadTimeout"):
        c.create_webhook(SPEC)
    assert len(calls) == 1

    attempts = []

    def refused_then_ok(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) == 1:
            raise httpx.ConnectError("refused KEY123", request=request)
        return httpx.Response(200, json={"webhookID": "w3"})

    with client(refused_then_ok) as c:
        assert c.create_webhook(SPEC)["webhookID"] == "w3"


def test_errors_never_echo_the_api_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with client(handler, retries=0) as c, pytest.raises(ApiError) as info:
        c.list_webhooks()
    assert "KEY123" not in str(info.value)


def test_unexpected_shapes_and_missing_key() -> None:
    with (
        client(lambda r: httpx.Response(200, json={"not": "a list"})) as c,
        pytest.raises(ApiError, match="expected a JSON list"),
    ):
        c.list_webhooks()
    with (
        client(lambda r: httpx.Response(200, text="<html>")) as c,
        pytest.raises(ApiError, match="non-JSON body"),
    ):
        c.list_webhooks()
    with (
        client(lambda r: httpx.Response(200, json={})) as c,
        pytest.raises(ApiError, match="no webhookID"),
    ):
        c.create_webhook(SPEC)
    with pytest.raises(ApiError, match="HELIUS_API_KEY is not set"):
        HeliusClient("http://x", "")


def test_from_config_backs_off_as_the_helius_keys_say() -> None:
    from smarttrader_cli.config.schema import HeliusConfig

    sleeps: list[float] = []
    config = HeliusConfig(
        api_base_url="http://helius.test", max_retries=3, backoff_max_seconds=0.25
    )
    handler = httpx.MockTransport(lambda request: httpx.Response(503, headers={"retry-after": "9"}))
    with HeliusClient.from_config(config, "KEY123", transport=handler) as c:
        c._sleep = sleeps.append
        with pytest.raises(ApiError, match="HTTP 503"):
            c.list_webhooks()
    assert sleeps == [0.25, 0.25, 0.25]  # Retry-After 9 capped by helius.backoff_max_seconds
