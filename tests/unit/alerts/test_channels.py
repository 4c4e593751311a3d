"""Each channel's request shape and how it reads 429, 5xx, 4xx, timeouts (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from smarttrader_cli.alerts.channels import Channel, Message, build_channel
from smarttrader_cli.alerts.signing import signature, verify
from smarttrader_cli.config.alerts_schema import AlertsConfig
from smarttrader_cli.config.loader import Secrets
from smarttrader_cli.errors import ConfigError

TOKEN = "123456:telegram-secret-token"
SECRETS = Secrets(
    telegram_bot_token=TOKEN,
    discord_webhook_url="http://discord.test/api/webhooks/1/discord-secret",
    slack_webhook_url="http://slack.test/services/T0/B0/slack-secret",
    alert_webhook_secret="hmac-key-1",
)
MESSAGE = Message("a1b2c3", "smart money bought BONK", b'{"id":"a1b2c3","text":"hi"}')


def _alerts() -> AlertsConfig:
    alerts = AlertsConfig()
    alerts.telegram.base_url = "http://telegram.test"
    alerts.telegram.chat_id = "-100123"
    alerts.webhook.url = "http://hook.test/in"
    for section in (alerts.telegram, alerts.discord, alerts.slack, alerts.webhook):
        section.rate_limit_rps = 0  # unpaced: the tests time nothing
    return alerts


def _channel(
    name: str,
    handler: Callable[[httpx.Request], httpx.Response],
    alerts: AlertsConfig | None = None,
) -> tuple[Channel, list[float]]:
    slept: list[float] = []
    channel = build_channel(
        name,
        alerts or _alerts(),
        SECRETS,
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
    )
    return channel, slept


def _recording(
    responses: list[httpx.Response],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return handler, seen


def test_telegram_posts_send_message_with_chat_id_and_text() -> None:
    handler, seen = _recording([httpx.Response(200, json={"ok": True, "result": {}})])
    channel, _ = _channel("telegram", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.delivered and outcome.status == 200
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"http://telegram.test/bot{TOKEN}/sendMessage"
    assert json.loads(request.content) == {"chat_id": "-100123", "text": MESSAGE.text}


def test_telegram_waits_out_the_retry_after_of_its_429_body() -> None:
    limited = httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )
    handler, seen = _recording([limited, httpx.Response(200, json={"ok": True, "result": {}})])
    channel, slept = _channel("telegram", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.delivered and outcome.rate_limited == 1
    assert 7.0 in slept and len(seen) == 2


def test_a_429_longer_than_the_wait_allowed_is_returned_with_its_retry_after() -> None:
    alerts = _alerts()
    alerts.max_rate_limit_wait_seconds = 5
    limited = httpx.Response(429, json={"ok": False, "parameters": {"retry_after": 600}})
    handler, seen = _recording([limited])
    channel, slept = _channel("telegram", handler, alerts)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and not outcome.permanent
    assert outcome.status == 429 and outcome.retry_after == 600
    assert len(seen) == 1 and 600 not in slept


def test_telegram_ok_false_is_a_refusal_and_errors_never_show_the_token() -> None:
    handler, _ = _recording(
        [httpx.Response(400, json={"ok": False, "description": "chat not found"})]
    )
    channel, _ = _channel("telegram", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.permanent and "chat not found" in (outcome.error or "")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}")

    channel, _ = _channel("telegram", refuse)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and not outcome.permanent
    assert TOKEN not in (outcome.error or "") and "ConnectError" in (outcome.error or "")


def test_discord_posts_content_without_mentions_and_reads_retry_after_seconds() -> None:
    limited = httpx.Response(
        429,
        json={"message": "You are being rate limited.", "retry_after": 0.25, "global": False},
        headers={"retry-after": "1"},
    )
    handler, seen = _recording([limited, httpx.Response(204)])
    channel, slept = _channel("discord", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.delivered and outcome.status == 204
    assert 0.25 in slept  # the body's precise value, not the header's rounded one
    assert str(seen[0].url) == SECRETS.discord_webhook_url
    assert json.loads(seen[0].content) == {
        "content": MESSAGE.text,
        "allowed_mentions": {"parse": []},
    }


def test_discord_pauses_when_its_bucket_is_empty() -> None:
    empty = httpx.Response(
        204, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "2.5"}
    )
    handler, _ = _recording([empty])
    alerts = _alerts()
    alerts.discord.rate_limit_rps = 100  # paced, so the pause shows in the next reservation
    channel, _ = _channel("discord", handler, alerts)
    assert channel.send(MESSAGE).delivered
    assert channel.bucket.reserve() > 2.0


def test_discord_text_is_cut_to_2000_characters() -> None:
    handler, seen = _recording([httpx.Response(204)])
    channel, _ = _channel("discord", handler)
    channel.send(Message("id", "x" * 5000))
    content = json.loads(seen[0].content)["content"]
    assert len(content) == 2000 and content.endswith("…")


def test_slack_posts_text_and_honours_the_retry_after_header() -> None:
    limited = httpx.Response(429, text="rate_limited", headers={"retry-after": "3"})
    handler, seen = _recording([limited, httpx.Response(200, text="ok")])
    channel, slept = _channel("slack", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.delivered and 3.0 in slept
    assert json.loads(seen[1].content) == {"text": MESSAGE.text}
    assert str(seen[1].url) == SECRETS.slack_webhook_url


def test_the_webhook_signs_the_body_and_carries_the_alert_id() -> None:
    handler, seen = _recording([httpx.Response(202)])
    channel, _ = _channel("webhook", handler)
    assert channel.send(MESSAGE).delivered
    (request,) = seen
    assert request.content == MESSAGE.payload
    assert request.headers["idempotency-key"] == "a1b2c3"
    header = request.headers["x-st-signature"]
    parts = dict(p.split("=", 1) for p in header.split(","))
    assert parts["v1"] == signature("hmac-key-1", int(parts["t"]), MESSAGE.payload)
    assert verify("hmac-key-1", header, MESSAGE.payload)
    assert not verify("another-key", header, MESSAGE.payload)
    assert not verify("hmac-key-1", header, MESSAGE.payload + b" ")
    assert not verify("hmac-key-1", header, MESSAGE.payload, now=int(parts["t"]) + 3600)


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_can_be_retried(status: int) -> None:
    handler, seen = _recording([httpx.Response(status, text="boom")])
    channel, _ = _channel("slack", handler)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and not outcome.permanent
    assert outcome.status == status and len(seen) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_client_errors_are_permanent(status: int) -> None:
    handler, _ = _recording([httpx.Response(status, json={"message": "Unknown Webhook"})])
    channel, _ = _channel("discord", handler)
    outcome = channel.send(MESSAGE)
    assert outcome.permanent and "Unknown Webhook" in (outcome.error or "")
    assert "discord-secret" not in (outcome.error or "")


def test_a_timeout_can_be_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    channel, _ = _channel("webhook", slow)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and not outcome.permanent
    assert "timed out" in (outcome.error or "") and outcome.uncertain  # it may have arrived


def test_a_refused_connection_surely_delivered_nothing() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    channel, _ = _channel("webhook", down)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and not outcome.permanent and not outcome.uncertain


def test_429s_past_max_rate_limited_count_as_a_failed_send() -> None:
    alerts = _alerts()
    alerts.max_rate_limited = 2
    handler, seen = _recording([httpx.Response(429, headers={"retry-after": "1"})])
    channel, slept = _channel("slack", handler, alerts)
    outcome = channel.send(MESSAGE)
    assert not outcome.delivered and outcome.status == 429 and outcome.rate_limited == 2
    assert slept.count(1.0) == 2
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("telegram", "ST_TELEGRAM_BOT_TOKEN"),
        ("discord", "ST_DISCORD_WEBHOOK_URL"),
        ("slack", "ST_SLACK_WEBHOOK_URL"),
        ("webhook", "ST_ALERT_WEBHOOK_SECRET"),
    ],
)
def test_a_channel_without_its_secret_is_a_config_error(name: str, missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        build_channel(name, _alerts(), Secrets())
