"""Helius webhook-management API client (list, create, replace a webhook)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import ApiError
from smarttrader_cli.sources.retry import Attempts, RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.config.schema import HeliusConfig

log = logging.getLogger("st.helius")

WEBHOOKS = "/v0/webhooks"


class HeliusClient:
    """Synchronous client for `/v0/webhooks`; errors are ApiError naming the HTTP status.

    GET and PUT are idempotent and retried on 429, 5xx and transport errors. POST creates
    a webhook, so it is retried only when the request surely did not reach Helius
    (429, or a refused connection): a blind retry could create a duplicate webhook.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        from smarttrader_cli.config.schema import HeliusConfig

        if not api_key:
            raise ApiError("HELIUS_API_KEY is not set: Helius needs an API key")
        self._api_key = api_key
        self._retry = retry or RetryPolicy.from_config(HeliusConfig())
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"accept": "application/json"},
        )

    @classmethod
    def from_config(
        cls, helius: HeliusConfig, api_key: str, transport: httpx.BaseTransport | None = None
    ) -> HeliusClient:
        """A client for the configured base URL with the configured timeout and retries."""
        return cls(
            helius.api_base_url,
            api_key,
            timeout=helius.timeout_seconds,
            retry=RetryPolicy.from_config(helius),
            transport=transport,
        )

    def __enter__(self) -> HeliusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def list_webhooks(self) -> list[dict[str, Any]]:
        """GET /v0/webhooks: every webhook of the account."""
        body = self._request("GET", WEBHOOKS)
        if not isinstance(body, list) or not all(isinstance(h, dict) for h in body):
            raise ApiError(f"Helius GET {WEBHOOKS}: expected a JSON list of webhooks")
        return body

    def create_webhook(self, spec: dict[str, Any]) -> dict[str, Any]:
        """POST /v0/webhooks; returns the created webhook (with its webhookID)."""
        body = self._request("POST", WEBHOOKS, json=spec)
        if not isinstance(body, dict) or not body.get("webhookID"):
            raise ApiError(f"Helius POST {WEBHOOKS}: the answer has no webhookID")
        return body

    def replace_webhook(self, webhook_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """PUT /v0/webhooks/{id} with the whole body."""
        body = self._request("PUT", f"{WEBHOOKS}/{webhook_id}", json=spec)
        return body if isinstance(body, dict) else {}

    def _request(self, method: str, path: str, json: Any = None) -> Any:
        import httpx

        idempotent = method != "POST"
        attempts = Attempts(self._retry)
        while True:
            try:
                response = self._http.request(
                    method, path, params={"api-key": self._api_key}, json=json
                )
            except httpx.TransportError as exc:
                safe = idempotent or isinstance(exc, httpx.ConnectError)
                if safe and (delay := attempts.next_delay()) is not None:
                    self._wait(method, path, attempts.failures, delay, type(exc).__name__)
                    continue
                detail = str(exc).replace(self._api_key, "***")
                raise ApiError(f"Helius {method} {path}: {type(exc).__name__}: {detail}") from exc
            status = response.status_code
            if status < 400:
                if status == 204 or not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise ApiError(
                        f"Helius {method} {path} answered HTTP {status} with a non-JSON body"
                    ) from None
            retry_ok = status == 429 or (idempotent and self._retry.retryable(status))
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_ok and (delay := attempts.next_delay(retry_after)) is not None:
                self._wait(method, path, attempts.failures, delay, f"HTTP {status}")
                continue
            raise ApiError(f"Helius {method} {path} answered HTTP {status}: {_reason(response)}")

    def _wait(self, method: str, path: str, retry: int, delay: float, why: str) -> None:
        log.warning("Helius %s %s: %s, retry %d in %.1fs", method, path, why, retry, delay)
        self._sleep(delay)


def _reason(response: httpx.Response) -> str:
    """The error text Helius sent, without echoing anything long."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text else response.reason_phrase
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]
