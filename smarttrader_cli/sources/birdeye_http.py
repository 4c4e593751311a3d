"""BirdEye HTTP transport: pacing, bounded concurrency, retries, stats and API errors.

`BirdeyeHttp` holds one `httpx.AsyncClient`; `BirdeyeClient` (sources.birdeye) adds
the endpoints on top of it.

Every request waits for the shared token bucket (`birdeye.rate_limit_rps`,
`birdeye.burst`) and a concurrency slot (`birdeye.max_concurrency`), and says
`ui_amount_mode` explicitly. 5xx, timeouts, connection errors and unreadable JSON
are retried with exponential backoff and full jitter (`Retry-After` wins when
sent); a 429 waits as the server says and slows the bucket down, on a budget of
its own; 401/403 stop at once, naming the plan when other endpoints worked.

API key: the real API requires `BIRDEYE_API_KEY`. Without one the client refuses
to start unless `birdeye.base_url` is a loopback address (the simulator), in which
case no `X-API-KEY` header is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from smarttrader_cli.errors import ApiError, ApiRefusedError, ConfigError
from smarttrader_cli.host import is_loopback_url
from smarttrader_cli.sources.pacing import TokenBucket
from smarttrader_cli.sources.retry import (
    Attempts,
    RetryPolicy,
    parse_retry_after,
    rate_limit_wait,
)

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.config.schema import BirdeyeConfig

log = logging.getLogger("st.birdeye")


@dataclass
class ClientStats:
    """What the client did: requests, retries and statuses."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class BirdeyeHttp:
    """Async BirdEye client sharing one token bucket and one concurrency limit."""

    def __init__(
        self,
        config: BirdeyeConfig,
        api_key: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if not api_key and not is_loopback_url(config.base_url):
            raise ConfigError(
                f"BIRDEYE_API_KEY is not set; {config.base_url} needs an API key "
                "(only a loopback simulator URL works without one)"
            )
        self.config = config
        self.api_key = api_key
        self.bucket = TokenBucket(config.rate_limit_rps, config.burst)
        self.policy = RetryPolicy.from_config(config)
        self.stats = ClientStats()
        self._transport = transport
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max(1, config.max_concurrency))
        self._http: httpx.AsyncClient | None = None
        self._answered: set[str] = set()  # paths that answered 2xx: a later 403 is the plan

    async def __aenter__(self) -> Self:
        import httpx

        headers = {"accept": "application/json", "x-chain": self.config.chain}
        if self.api_key:
            headers["X-API-KEY"] = self.api_key
        limit = max(1, self.config.max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/"),
            headers=headers,
            timeout=self.config.timeout_seconds,
            transport=self._transport,
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- one request --------------------------------------------------------

    async def get(
        self, path: str, params: dict[str, Any], *, nullable: bool = False
    ) -> dict[str, Any]:
        """GET a BirdEye path and return the `data` object, retrying transient failures.

        Failures (5xx, timeouts, connection errors, bad JSON) use up `max_retries`; a 429
        is the server pacing us, not a failure: it waits as told (`Retry-After`, else
        `X-RateLimit-Reset`), slows the shared bucket down, and has its own budget
        (`max_rate_limited`), so a busy API slows a run instead of failing it.
        """
        import httpx

        if self._http is None:
            raise RuntimeError("BirdeyeClient used outside `async with`")
        params = {**params, "ui_amount_mode": self.config.ui_amount_mode}
        attempts, limited = Attempts(self.policy), 0
        last = "no attempt made"
        while True:
            await self.bucket.wait()
            async with self._slots:
                self.stats.requests += 1
                try:
                    response = await self._http.get(path, params=params)
                except httpx.TimeoutException:
                    last = f"timed out after {self.config.timeout_seconds:g}s"
                    response = None
                except httpx.TransportError as exc:
                    last = f"connection error: {exc or type(exc).__name__}"
                    response = None
            retry_after: float | None = None
            if response is not None:
                status = response.status_code
                self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
                if status == 429:
                    self.stats.rate_limited += 1
                    limited += 1
                    if limited > self.config.max_rate_limited:
                        raise ApiError(
                            f"BirdEye {path} was rate limited {limited} times in a row; "
                            f"lower birdeye.rate_limit_rps ({self.bucket.rate:g}/s now)"
                        )
                    wait = rate_limit_wait(response.headers)
                    self.bucket.slow_down(wait)
                    self.stats.retries += 1
                    log.debug("BirdEye %s: 429; waiting %.2fs", path, wait)
                    await self._sleep(wait)
                    continue
                if status in (401, 403):
                    raise ApiRefusedError(self._refusal(path, status, response))
                if self.policy.retryable(status):
                    last = f"HTTP {status}"
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                elif status >= 400:
                    raise ApiError(f"BirdEye {path} answered {status}: {_message(response)}")
                else:
                    try:
                        body = response.json()
                    except ValueError:
                        last = "response body is not valid JSON"
                    else:
                        self._answered.add(path)
                        self.bucket.recover()
                        return _data(body, path, nullable)
            delay = attempts.next_delay(retry_after)
            if delay is None:
                raise ApiError(
                    f"BirdEye {path} failed after {attempts.failures + 1} attempts: {last}"
                    + (f" (and {limited} rate-limited)" if limited else "")
                )
            if retry_after is not None:
                self.bucket.pause(delay)
            self.stats.retries += 1
            log.debug("BirdEye %s: %s; retry %d in %.2fs", path, last, attempts.failures, delay)
            await self._sleep(delay)

    def _refusal(self, path: str, status: int, response: httpx.Response) -> str:
        """Why a 401/403 happened: the plan when other endpoints work, else the key."""
        detail = _message(response)
        others = sorted(self._answered - {path})
        if others:
            return (
                f"BirdEye refused {path} with {status} while {', '.join(others)} answered: "
                f"the key's plan does not include {path} ({detail})"
            )
        if not self.api_key:
            return f"BirdEye refused {path} with {status}: BIRDEYE_API_KEY is not set ({detail})"
        return (
            f"BirdEye refused {path} with {status}: BIRDEYE_API_KEY is invalid, or its plan "
            f"does not include {path} ({detail})"
        )


def _data(body: Any, path: str, nullable: bool = False) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(f"BirdEye {path}: expected a JSON object, got {type(body).__name__}")
    if body.get("success") is False:
        raise ApiError(f"BirdEye {path} reported failure: {body.get('message', 'no message')}")
    data = body.get("data")
    if data is None and nullable:  # e.g. prices of tokens BirdEye does not know
        return {}
    if not isinstance(data, dict):
        raise ApiError(f"BirdEye {path}: response has no 'data' object")
    return data


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]
