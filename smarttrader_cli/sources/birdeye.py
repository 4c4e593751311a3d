"""BirdEye API client: pacing, bounded concurrency, retries, pagination, typed records.

One `BirdeyeClient` per stage run, used inside an asyncio loop::

    async with BirdeyeClient(config.birdeye, secrets.birdeye_api_key) as client:
        tokens = await client.token_list(config.tokens)

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
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from smarttrader_cli.errors import ApiError, ApiRefusedError, ConfigError
from smarttrader_cli.host import is_loopback_url
from smarttrader_cli.sources.pacing import TokenBucket
from smarttrader_cli.sources.records import (
    HolderRecord,
    PriceRecord,
    RecordError,
    TokenRecord,
    TradeRecord,
    parse_current_price,
    parse_holder,
    parse_price_point,
    parse_token_v3,
    parse_trade,
)
from smarttrader_cli.sources.retry import (
    Attempts,
    RetryPolicy,
    parse_retry_after,
    rate_limit_wait,
)

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.config.schema import BirdeyeConfig, TokensConfig

log = logging.getLogger("st.birdeye")

TOKEN_LIST = "/defi/v3/token/list"
TOKEN_HOLDERS = "/defi/v3/token/holder"
WALLET_TRADES = "/trader/txs/seek_by_time"
PRICE_HISTORY = "/defi/history_price"
MULTI_PRICE = "/defi/multi_price"
# Seconds per point of each history_price interval (`1m` is a minute, `1M` would be a month).
INTERVAL_SECONDS = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1H": 3600, "2H": 7200,
    "4H": 14400, "6H": 21600, "8H": 28800, "12H": 43200, "1D": 86400,
}  # fmt: skip
POINTS_PER_CALL = 1000  # no cap is documented: ask for bounded slices of the range
T = TypeVar("T")


@dataclass
class Reject:
    """A record that could not be parsed: where it came from, why, and its raw JSON."""

    endpoint: str
    request: str
    reason: str
    raw: str


@dataclass
class Fetched(Generic[T]):
    """Parsed records of one logical fetch (all its pages), with its rejects."""

    records: list[T] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    items: int = 0  # items received, parsed or not
    capped: bool = False  # stopped at a configured maximum

    def parse(
        self, items: list[Any], parse: Callable[[Any], T], endpoint: str, request: str
    ) -> list[T]:
        """Parse one page's items; each malformed one becomes a reject, never an error."""
        parsed = []
        for item in items:
            self.items += 1
            try:
                parsed.append(parse(item))
            except RecordError as exc:
                self.rejects.append(_reject(endpoint, request, exc, item))
        return parsed


@dataclass
class ClientStats:
    """What the client did: requests, retries and statuses."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class BirdeyeClient:
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

    async def __aenter__(self) -> BirdeyeClient:
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

    # --- endpoints ------------------------------------------------------------

    async def token_list(self, filters: TokensConfig) -> Fetched[TokenRecord]:
        """Tokens matching the configured filters, best first, up to `tokens.limit`."""
        cfg = self.config
        params: dict[str, Any] = {
            "sort_by": filters.sort_by,
            "sort_type": filters.sort_type,
            "min_liquidity": filters.min_liquidity,
            "min_market_cap": filters.min_market_cap,
            "min_volume_24h_usd": filters.min_volume_24h_usd,
            "min_holder": filters.min_holder,
            "min_trade_24h_count": filters.min_trade_24h_count,
        }
        out: Fetched[TokenRecord] = Fetched()
        page_size = max(1, min(cfg.page_size, 100))
        offset = 0
        while len(out.records) < filters.limit and offset + page_size <= cfg.max_offset:
            data = await self.get(TOKEN_LIST, {**params, "offset": offset, "limit": page_size})
            items = _items(data, TOKEN_LIST)
            records = out.parse(items, parse_token_v3, TOKEN_LIST, f"offset={offset}")
            out.records += [r for r in records if passes_filters(r, filters)]
            if len(items) < page_size or not has_next(data):
                break
            offset += page_size
        out.capped = len(out.records) > filters.limit
        del out.records[filters.limit :]
        _check_not_all_malformed(out, TOKEN_LIST)
        return out

    async def token_holders(self, token_address: str, top: int) -> Fetched[HolderRecord]:
        """The `top` largest holders of a token, largest first."""
        cfg = self.config
        out: Fetched[HolderRecord] = Fetched()
        offset = 0
        while out.items < top:
            page_size = max(1, min(cfg.page_size, 100, top - out.items))
            if offset + page_size > cfg.max_offset:
                break
            params = {"address": token_address, "offset": offset, "limit": page_size}
            items = _items(await self.get(TOKEN_HOLDERS, params), TOKEN_HOLDERS)
            out.records += out.parse(
                items,
                lambda item: parse_holder(item, token_address),
                TOKEN_HOLDERS,
                f"address={token_address}&offset={offset}",
            )
            if len(items) < page_size:  # no hasNext here: a short page is the last
                break
            offset += page_size
        _check_not_all_malformed(out, TOKEN_HOLDERS)
        return out

    async def wallet_trades(
        self,
        wallet: str,
        after_time: int | None,
        before_time: int | None = None,
        max_trades: int = 100_000,
    ) -> Fetched[TradeRecord]:
        """A wallet's swaps with after_time < t < before_time, newest first.

        Past the offset cap the window slides: `before_time` moves to just after the
        oldest trade seen and the offset restarts; repeats are dropped by key.
        """
        cfg = self.config
        page_size = max(1, min(cfg.page_size, 100, cfg.max_offset))
        out: Fetched[TradeRecord] = Fetched()
        seen: set[tuple[str, int, int, str, str]] = set()
        offset, before = 0, before_time
        oldest: int | None = None
        while True:
            if offset + page_size > cfg.max_offset:
                if oldest is None:
                    break
                # +1 because before_time is exclusive: trades in the oldest second that
                # did not fit are fetched again; fall back to the oldest to make progress.
                slide = oldest + 1 if before is None or oldest + 1 < before else oldest
                if before is not None and slide >= before:
                    break
                before, offset = slide, 0
            params: dict[str, Any] = {
                "address": wallet,
                "tx_type": "swap",
                "offset": offset,
                "limit": page_size,
            }
            if after_time is not None:
                params["after_time"] = after_time
            if before is not None:
                params["before_time"] = before
            data = await self.get(WALLET_TRADES, params)
            items = _items(data, WALLET_TRADES)
            request = f"address={wallet}&offset={offset}&before_time={before}"
            for record in out.parse(
                items, lambda item: parse_trade(item, wallet), WALLET_TRADES, request
            ):
                oldest = (
                    record.block_unix_time
                    if oldest is None
                    else min(oldest, record.block_unix_time)
                )
                if record.key not in seen:
                    seen.add(record.key)
                    out.records.append(record)
            if len(out.records) >= max_trades:
                out.capped = True
                del out.records[max_trades:]
                break
            if len(items) < page_size or not has_next(data):
                break
            offset += page_size
        return out

    async def price_history(
        self, token_address: str, interval: str, time_from: int, time_to: int
    ) -> Fetched[PriceRecord]:
        """A token's USD price series over [time_from, time_to], oldest first."""
        step = INTERVAL_SECONDS[interval]
        out: Fetched[PriceRecord] = Fetched()
        start = time_from
        while start <= time_to:
            end = min(time_to, start + step * POINTS_PER_CALL)
            params = {
                "address": token_address,
                "address_type": "token",
                "type": interval,
                "time_from": start,
                "time_to": end,
            }
            out.records += out.parse(
                _items(await self.get(PRICE_HISTORY, params), PRICE_HISTORY),
                lambda item: parse_price_point(item, token_address),
                PRICE_HISTORY,
                f"address={token_address}&time_from={start}&time_to={end}",
            )
            start = end + 1
        out.records.sort(key=lambda r: r.unix_time)
        return out

    async def current_prices(self, token_addresses: list[str]) -> Fetched[PriceRecord]:
        """The current USD price of each token BirdEye knows (unknown ones are left out)."""
        out: Fetched[PriceRecord] = Fetched()
        for i in range(0, len(token_addresses), 50):
            chunk = token_addresses[i : i + 50]
            data = await self.get(MULTI_PRICE, {"list_address": ",".join(chunk)}, nullable=True)
            for token in chunk:
                out.items += 1
                try:
                    record = parse_current_price(data.get(token), token)
                except RecordError as exc:
                    out.rejects.append(_reject(MULTI_PRICE, f"address={token}", exc, data[token]))
                    continue
                if record is not None:
                    out.records.append(record)
        return out


def passes_filters(record: TokenRecord, filters: TokensConfig) -> bool:
    """The configured token filters, applied client-side too (the API may ignore some)."""
    checks = (
        (record.liquidity, filters.min_liquidity),
        (record.market_cap, filters.min_market_cap),
        (record.volume_24h_usd, filters.min_volume_24h_usd),
        (record.holder, filters.min_holder),
        (record.trade_24h_count, filters.min_trade_24h_count),
    )
    if any(value is not None and value < bound for value, bound in checks):
        return False
    change = record.price_change_24h_percent
    return change is None or abs(change) <= filters.max_price_change_24h_percent


def has_next(data: dict[str, Any]) -> bool:
    """The page flag: `has_next` on real pages, `hasNext` in the docs; absent means maybe."""
    for key in ("has_next", "hasNext"):
        if key in data:
            return data[key] is not False
    return True


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


def _items(data: dict[str, Any], path: str) -> list[Any]:
    items = data.get("items")
    if not isinstance(items, list):
        raise ApiError(f"BirdEye {path}: response has no 'data.items' list")
    return items


def _reject(endpoint: str, request: str, exc: RecordError, item: Any) -> Reject:
    return Reject(endpoint, request, str(exc), json.dumps(item, default=str, sort_keys=True))


def _check_not_all_malformed(out: Fetched[Any], path: str) -> None:
    if out.items and not out.records and len(out.rejects) == out.items:
        raise ApiError(
            f"BirdEye {path}: all {out.items} items were malformed (first: {out.rejects[0].reason})"
        )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]
