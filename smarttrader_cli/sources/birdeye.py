"""BirdEye endpoints: pagination, typed records, rejects and client-side filters.

One `BirdeyeClient` per stage run, used inside an asyncio loop::

    async with BirdeyeClient(config.birdeye, secrets.birdeye_api_key) as client:
        tokens = await client.token_list(config.tokens)

Pacing, retries, stats, API errors and the API key rules are the transport's,
`BirdeyeHttp` (sources.birdeye_http), which `BirdeyeClient` extends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from smarttrader_cli.errors import ApiError
from smarttrader_cli.sources.birdeye_http import BirdeyeHttp
from smarttrader_cli.sources.records import (
    HolderRecord,
    PriceRecord,
    RecordError,
    TokenRecord,
    TradeRecord,
    WalletSourceRecord,
    parse_current_price,
    parse_gainer,
    parse_holder,
    parse_price_point,
    parse_token_v3,
    parse_top_trader,
    parse_trade,
)
from smarttrader_cli.sources.security import (
    TOKEN_SECURITY,
    SecurityFacts,
    parse_liquidity,
    parse_token_security,
)

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import TokensConfig

TOKEN_LIST = "/defi/v3/token/list"
TOKEN_HOLDERS = "/defi/v3/token/holder"
TOP_TRADERS = "/defi/v2/tokens/top_traders"
GAINERS = "/trader/gainers-losers"
DISCOVERY_PAGE = 10  # the most both discovery endpoints return per call
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


class BirdeyeClient(BirdeyeHttp):
    """BirdEye's endpoints over the shared transport: paged, parsed, with rejects."""

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
        return await self._short_paged(
            TOKEN_HOLDERS,
            {"address": token_address},
            lambda item: parse_holder(item, token_address),
            top,
            100,
        )

    async def top_traders(
        self, token_address: str, time_frame: str, sort_by: str, top: int
    ) -> Fetched[WalletSourceRecord]:
        """The `top` traders of a token in a time frame, best first (10 per call)."""
        params = {
            "address": token_address,
            "time_frame": time_frame,
            "sort_by": sort_by,
            "sort_type": "desc",
        }
        return await self._short_paged(
            TOP_TRADERS,
            params,
            lambda item: parse_top_trader(item, token_address, time_frame),
            top,
            DISCOVERY_PAGE,
        )

    async def gainers(self, period: str, top: int) -> Fetched[WalletSourceRecord]:
        """The `top` wallets by PnL over a period (yesterday, today, 1W), best first."""
        params = {"type": period, "sort_by": "PnL", "sort_type": "desc"}
        return await self._short_paged(
            GAINERS, params, lambda item: parse_gainer(item, period), top, DISCOVERY_PAGE
        )

    async def _short_paged(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], T],
        top: int,
        max_page: int,
    ) -> Fetched[T]:
        """Up to `top` items of an endpoint without a page flag: a short page is the last."""
        cfg = self.config
        out: Fetched[T] = Fetched()
        offset = 0
        while out.items < top:
            page_size = max(1, min(cfg.page_size, max_page, top - out.items))
            if offset + page_size > cfg.max_offset:
                break
            where = {**params, "offset": offset}
            items = _items(await self.get(path, {**where, "limit": page_size}), path)
            request = "&".join(f"{k}={v}" for k, v in where.items())
            out.records += out.parse(items, parse, path, request)
            if len(items) < page_size:
                break
            offset += page_size
        _check_not_all_malformed(out, path)
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

    async def token_security(self, token_address: str) -> SecurityFacts:
        """A token's security facts (`known` False when BirdEye has none); RecordError when
        the answer is malformed."""
        data = await self.get(TOKEN_SECURITY, {"address": token_address}, nullable=True)
        return parse_token_security(data, token_address)

    async def liquidities(
        self, token_addresses: list[str]
    ) -> tuple[dict[str, float | None], dict[str, str]]:
        """Each token's pool liquidity in USD (None: not priced), 50 tokens a call, and why
        a token's value was unreadable."""
        values: dict[str, float | None] = {}
        problems: dict[str, str] = {}
        for i in range(0, len(token_addresses), 50):
            chunk = token_addresses[i : i + 50]
            params = {"list_address": ",".join(chunk), "include_liquidity": "true"}
            data = await self.get(MULTI_PRICE, params, nullable=True)
            for token in chunk:
                try:
                    values[token] = parse_liquidity(data.get(token), token)
                except RecordError as exc:
                    values[token], problems[token] = None, str(exc)
        return values, problems


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
