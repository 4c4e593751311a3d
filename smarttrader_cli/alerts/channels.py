"""Where alerts go: Telegram, Discord, Slack, and a generic webhook with a signed body.

A channel turns one alert into one HTTP POST and its answer into an `Outcome`. It paces
itself (a token bucket per channel), waits out a 429 in place when the wait it is asked
for is short, and otherwise says whether another attempt can help: 5xx, 408, timeouts
and connection errors can; any other 4xx cannot (a wrong token or a deleted webhook).
Retrying across attempts, backoff and dead-lettering are the outbox's (delivery.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from smarttrader_cli.alerts.signing import signature_header
from smarttrader_cli.config.redaction import redact_text
from smarttrader_cli.errors import ConfigError
from smarttrader_cli.sources.pacing import TokenBucket
from smarttrader_cli.sources.retry import RETRYABLE_STATUS, parse_retry_after

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.config.alerts_schema import AlertsConfig
    from smarttrader_cli.config.loader import Secrets

# Waited when a 429 says nothing about how long.
DEFAULT_RATE_LIMIT_WAIT = 1.0


@dataclass(frozen=True)
class Message:
    """What a channel sends: the alert's id, its text, and the JSON body the webhook signs."""

    alert_id: str
    text: str
    payload: bytes = b"{}"


@dataclass(frozen=True)
class Outcome:
    """How one send ended.

    `permanent`: no other attempt can succeed; `retry_after`: the server asked for a wait
    longer than the channel waits in place; `rate_limited`: 429s waited out meanwhile;
    `uncertain`: the request went out but no answer came back (a read timeout, a dropped
    connection), so the channel may have it and a retry may deliver it twice.
    """

    delivered: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None
    rate_limited: int = 0
    uncertain: bool = False


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    content: bytes


class Channel:
    """One destination: builds the request, reads its API's errors and rate limits."""

    name: ClassVar[str]
    max_text: ClassVar[int] = 4000

    def __init__(
        self,
        http: httpx.Client,
        bucket: TokenBucket,
        *,
        max_rate_limited: int = 5,
        max_wait: float = 60.0,
        secrets: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = http
        self.bucket = bucket
        self.max_rate_limited = max_rate_limited
        self.max_wait = max_wait
        self._secrets = secrets
        self._sleep = sleep

    def request(self, message: Message) -> Request:
        """The POST that delivers `message`."""
        raise NotImplementedError

    def retry_after(self, response: httpx.Response) -> float | None:
        """Seconds a 429 asks to wait (the Retry-After header unless the API says otherwise)."""
        return parse_retry_after(response.headers.get("retry-after"))

    def observe(self, response: httpx.Response) -> None:
        """Learn from any answer's rate-limit headers (nothing, unless the API sends them)."""

    def refusal(self, response: httpx.Response) -> str | None:
        """Why a 2xx answer still did not deliver (None: it did)."""
        return None

    def send(self, message: Message) -> Outcome:
        """POST `message` once (429s with a short wait are waited out and tried again)."""
        import httpx

        rate_limited = 0
        while True:
            self._sleep(self.bucket.reserve())
            req = self.request(message)  # rebuilt each time: a signature carries a timestamp
            try:
                response = self.http.post(req.url, content=req.content, headers=req.headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                return Outcome(False, error=self._safe(f"{type(exc).__name__}: {exc}"))
            except httpx.TransportError as exc:
                # The request may have arrived and only the answer been lost.
                what = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                error = self._safe(f"{what} after sending ({type(exc).__name__}: {exc})")
                return Outcome(False, error=error, uncertain=True)
            self.observe(response)
            status = response.status_code
            if 200 <= status < 300:
                refused = self.refusal(response)
                if refused is None:
                    self.bucket.recover()
                    return Outcome(True, status, rate_limited=rate_limited)
                return Outcome(False, status, self._safe(refused), permanent=True)
            if status == 429:
                wait = self.retry_after(response)
                wait = DEFAULT_RATE_LIMIT_WAIT if wait is None else wait
                self.bucket.slow_down(wait)
                if rate_limited < self.max_rate_limited and wait <= self.max_wait:
                    rate_limited += 1
                    self._sleep(wait)
                    continue
                error = f"HTTP 429 rate limited (retry after {wait:g} s)"
                return Outcome(False, 429, error, retry_after=wait, rate_limited=rate_limited)
            error = self._safe(f"HTTP {status}: {_reason(response)}")
            retryable = status in RETRYABLE_STATUS or status >= 500
            return Outcome(False, status, error, permanent=not retryable, rate_limited=rate_limited)

    def _safe(self, text: str) -> str:
        """`text` without the channel's credentials (a URL may carry a token)."""
        return redact_text(text, self._secrets)[:300]

    def _json(self, body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False).encode()


class Telegram(Channel):
    """Bot API sendMessage: POST {base}/bot<token>/sendMessage, JSON chat_id and text."""

    name = "telegram"
    max_text = 4096

    def __init__(
        self,
        http: httpx.Client,
        bucket: TokenBucket,
        *,
        base_url: str,
        token: str,
        chat_id: str,
        **options: Any,
    ) -> None:
        super().__init__(http, bucket, secrets=(token,), **options)
        self.url = f"{base_url.rstrip('/')}/bot{token}/sendMessage"
        self.chat_id = chat_id

    def request(self, message: Message) -> Request:
        body = {"chat_id": self.chat_id, "text": fit(message.text, self.max_text)}
        return Request(self.url, {"content-type": "application/json"}, self._json(body))

    def retry_after(self, response: httpx.Response) -> float | None:
        # Telegram says how long in the body: {"parameters": {"retry_after": 5}}
        body = _body(response)
        parameters = body.get("parameters") if isinstance(body, dict) else None
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            return float(parameters["retry_after"])
        return super().retry_after(response)

    def refusal(self, response: httpx.Response) -> str | None:
        body = _body(response)
        if isinstance(body, dict) and body.get("ok") is False:
            return f"Telegram refused: {body.get('description') or 'ok=false'}"
        return None


class UrlChannel(Channel):
    """A channel whose whole URL is its secret (Discord and Slack webhooks): POST JSON."""

    def __init__(
        self, http: httpx.Client, bucket: TokenBucket, *, url: str, **options: Any
    ) -> None:
        super().__init__(http, bucket, secrets=(url,), **options)
        self.url = url

    def body(self, text: str) -> dict[str, Any]:
        """The JSON document carrying `text`."""
        raise NotImplementedError

    def request(self, message: Message) -> Request:
        body = self.body(fit(message.text, self.max_text))
        return Request(self.url, {"content-type": "application/json"}, self._json(body))


class Discord(UrlChannel):
    """Discord webhook: POST <webhook url>, JSON content (mentions disabled)."""

    name = "discord"
    max_text = 2000

    def body(self, text: str) -> dict[str, Any]:
        # allowed_mentions: a token named "@everyone" must not ping a server.
        return {"content": text, "allowed_mentions": {"parse": []}}

    def retry_after(self, response: httpx.Response) -> float | None:
        # The body's retry_after is in seconds, with decimals; the header rounds it up.
        body = _body(response)
        if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
            return float(body["retry_after"])
        return super().retry_after(response)

    def observe(self, response: httpx.Response) -> None:
        # The bucket is empty: wait for its reset instead of earning a 429.
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset_after = parse_retry_after(response.headers.get("x-ratelimit-reset-after"))
            if reset_after:
                self.bucket.pause(min(reset_after, self.max_wait))


class Slack(UrlChannel):
    """Slack incoming webhook: POST <webhook url>, JSON text; 429 with Retry-After."""

    name = "slack"
    max_text = 40000

    def body(self, text: str) -> dict[str, Any]:
        return {"text": text}


class Webhook(Channel):
    """Generic HTTP webhook: the alert's JSON, signed, with its id as the idempotency key."""

    name = "webhook"

    def __init__(
        self,
        http: httpx.Client,
        bucket: TokenBucket,
        *,
        url: str,
        secret: str,
        signature_header: str,
        idempotency_header: str,
        **options: Any,
    ) -> None:
        super().__init__(http, bucket, secrets=(secret,), **options)
        self.url = url
        self.secret = secret
        self.signature_header = signature_header
        self.idempotency_header = idempotency_header

    def request(self, message: Message) -> Request:
        headers = {
            "content-type": "application/json",
            self.signature_header: signature_header(self.secret, message.payload),
            self.idempotency_header: message.alert_id,
        }
        return Request(self.url, headers, message.payload)


def build_channel(
    name: str,
    alerts: AlertsConfig,
    secrets: Secrets,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Channel:
    """The configured channel `name`; ConfigError when its settings or secret are missing."""
    import httpx

    def http() -> httpx.Client:  # made once the settings are known to be there
        return httpx.Client(timeout=alerts.timeout_seconds, transport=transport)

    options: dict[str, Any] = {
        "max_rate_limited": alerts.max_rate_limited,
        "max_wait": alerts.max_rate_limit_wait_seconds,
        "sleep": sleep,
    }
    if name == "telegram":
        tg = alerts.telegram
        if not secrets.telegram_bot_token or not tg.chat_id:
            raise ConfigError(
                "channel telegram needs ST_TELEGRAM_BOT_TOKEN and alerts.telegram.chat_id"
            )
        bucket = TokenBucket(tg.rate_limit_rps, tg.burst)
        return Telegram(
            http(),
            bucket,
            base_url=tg.base_url,
            token=secrets.telegram_bot_token,
            chat_id=tg.chat_id,
            **options,
        )
    if name == "discord":
        if not secrets.discord_webhook_url:
            raise ConfigError("channel discord needs ST_DISCORD_WEBHOOK_URL")
        bucket = TokenBucket(alerts.discord.rate_limit_rps, alerts.discord.burst)
        return Discord(http(), bucket, url=secrets.discord_webhook_url, **options)
    if name == "slack":
        if not secrets.slack_webhook_url:
            raise ConfigError("channel slack needs ST_SLACK_WEBHOOK_URL")
        bucket = TokenBucket(alerts.slack.rate_limit_rps, alerts.slack.burst)
        return Slack(http(), bucket, url=secrets.slack_webhook_url, **options)
    if name == "webhook":
        hook = alerts.webhook
        if not hook.url or not secrets.alert_webhook_secret:
            raise ConfigError(
                "channel webhook needs alerts.webhook.url and ST_ALERT_WEBHOOK_SECRET"
            )
        bucket = TokenBucket(hook.rate_limit_rps, hook.burst)
        return Webhook(
            http(),
            bucket,
            url=hook.url,
            secret=secrets.alert_webhook_secret,
            signature_header=hook.signature_header,
            idempotency_header=hook.idempotency_header,
            **options,
        )
    raise ConfigError(f"unknown alert channel {name!r}; known: telegram, discord, slack, webhook")


def fit(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(response: httpx.Response) -> str:
    """The error the API sent, short."""
    body = _body(response)
    if isinstance(body, dict):
        for key in ("description", "message", "error"):
            if body.get(key):
                return str(body[key])[:200]
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase
