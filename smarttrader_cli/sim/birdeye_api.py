"""BirdEye endpoints of the simulator: request checks, filtering, paging, real shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarttrader_cli.sim.birdeye_items import render_trade
from smarttrader_cli.sim.market import Market, SimToken, rng_for
from smarttrader_cli.sim.trades import TradeBook

MAX_OFFSET = 10_000
CAMEL_PAGE_FLAG_SHARE = 0.15  # seek_by_time pages flagged `hasNext` (documented), not `has_next`
UI_AMOUNT_MODES = ("raw", "scaled")
TX_TYPES = ("swap", "add", "remove", "all")
Reply = tuple[int, dict[str, Any]]

V3_SORT_KEYS = {
    "liquidity": "liquidity",
    "market_cap": "market_cap",
    "fdv": "fdv",
    "volume_24h_usd": "volume_24h_usd",
    "price_change_24h_percent": "price_change_24h_percent",
    "holder": "holder",
    "trade_24h_count": "trade_24h_count",
    "recent_listing_time": "recent_listing_time",
}
V1_SORT_KEYS = {
    "mc": "market_cap",
    "v24hUSD": "volume_24h_usd",
    "liquidity": "liquidity",
    "v24hChangePercent": "volume_24h_change_percent",
}


class BadRequest(Exception):
    """A request BirdEye would answer with 400."""


def error(status: int, message: str) -> Reply:
    """A BirdEye-style error body."""
    return status, {"success": False, "message": message}


def _int(params: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    """A parameter restricted to a few values (400 otherwise)."""
    value = params.get(name) or default
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return value


def paging(params: Mapping[str, str], max_limit: int) -> tuple[int, int]:
    """offset and limit (default the smaller of 50 and `max_limit`), checked as BirdEye does."""
    offset = _int(params, "offset", 0, 0, MAX_OFFSET)
    limit = _int(params, "limit", min(50, max_limit), 1, max_limit)
    if offset + limit > MAX_OFFSET:
        raise BadRequest(f"offset + limit must be <= {MAX_OFFSET}")
    return offset, limit


def _listed(market: Market) -> list[SimToken]:
    return [t for t in market.tokens if t.kind != "quote"]


def _filtered(market: Market, params: Mapping[str, str], sort_key: str, desc: bool) -> list[dict]:
    rows = [t.metrics for t in _listed(market)]
    for name, raw in params.items():
        for prefix, keep in (("min_", lambda v, b: v >= b), ("max_", lambda v, b: v <= b)):
            if not name.startswith(prefix):
                continue
            field = name[len(prefix) :]
            if field not in market.tokens[0].metrics:
                raise BadRequest(f"unknown filter {name}")
            try:
                bound = float(raw)
            except ValueError:
                raise BadRequest(f"{name} must be a number") from None
            rows = [r for r in rows if r[field] is not None and keep(r[field], bound)]
    return sorted(rows, key=lambda r: (r[sort_key], r["address"]), reverse=desc)


def token_list_v3(market: Market, params: Mapping[str, str]) -> Reply:
    """GET /defi/v3/token/list."""
    sort_by = params.get("sort_by", "liquidity")
    if sort_by not in V3_SORT_KEYS:
        raise BadRequest(f"sort_by must be one of {', '.join(V3_SORT_KEYS)}")
    sort_type = params.get("sort_type", "desc")
    if sort_type not in ("asc", "desc"):
        raise BadRequest("sort_type must be asc or desc")
    choice(params, "ui_amount_mode", UI_AMOUNT_MODES, "scaled")
    offset, limit = paging(params, 100)
    rows = _filtered(market, params, V3_SORT_KEYS[sort_by], sort_type == "desc")
    page = rows[offset : offset + limit]
    return 200, {"success": True, "data": {"items": page, "hasNext": offset + limit < len(rows)}}


def token_list_v1(market: Market, params: Mapping[str, str]) -> Reply:
    """GET /defi/tokenlist (v1, camelCase)."""
    sort_by = params.get("sort_by", "v24hUSD")
    if sort_by not in V1_SORT_KEYS:
        raise BadRequest(f"sort_by must be one of {', '.join(V1_SORT_KEYS)}")
    sort_type = params.get("sort_type", "desc")
    if sort_type not in ("asc", "desc"):
        raise BadRequest("sort_type must be asc or desc")
    offset, limit = paging(params, 50)
    min_liquidity = float(params.get("min_liquidity", "0") or 0)
    rows = [
        r
        for r in _filtered(market, {}, V1_SORT_KEYS[sort_by], sort_type == "desc")
        if r["liquidity"] >= min_liquidity
    ]
    tokens = [
        {
            "address": r["address"],
            "decimals": r["decimals"],
            "price": r["price"],
            "lastTradeUnixTime": r["last_trade_unix_time"],
            "liquidity": r["liquidity"],
            "logoURI": r["logo_uri"],
            "mc": r["market_cap"],
            "name": r["name"],
            "symbol": r["symbol"],
            "v24hChangePercent": r["volume_24h_change_percent"],
            "v24hUSD": r["volume_24h_usd"],
        }
        for r in rows[offset : offset + limit]
    ]
    data = {
        "updateUnixTime": market.end_time,
        "updateTime": "",
        "tokens": tokens,
        "total": len(rows),
    }
    return 200, {"success": True, "data": data}


def token_holders(market: Market, params: Mapping[str, str]) -> Reply:
    """GET /defi/v3/token/holder."""
    mint = params.get("address")
    if not mint:
        raise BadRequest("address is required")
    choice(params, "ui_amount_mode", UI_AMOUNT_MODES, "scaled")
    offset, limit = paging(params, 100)
    if mint not in market.by_address:
        return 200, {"success": True, "data": {"items": []}}
    items = market.holders(mint)[offset : offset + limit]
    return 200, {"success": True, "data": {"items": items}}


def seek_by_time(market: Market, book: TradeBook, params: Mapping[str, str]) -> Reply:
    """GET /trader/txs/seek_by_time: newest first; the page flag is `has_next` or `hasNext`."""
    wallet = params.get("address")
    if not wallet:
        raise BadRequest("address is required")
    tx_type = choice(params, "tx_type", TX_TYPES, "swap")
    choice(params, "ui_amount_mode", UI_AMOUNT_MODES, "scaled")
    offset, limit = paging(params, 100)
    after = _int(params, "after_time", -1, -1, 1 << 40)
    before = _int(params, "before_time", 1 << 40, 0, 1 << 40)
    trades = book.window(wallet, after, before) if tx_type in ("swap", "all") else []
    page = trades[offset : offset + limit]
    items = [render_trade(market, wallet, tr) for tr in page]
    flag = "hasNext"
    if market.settings.quirks:
        pick = rng_for(market.seed, "page-flag", wallet, offset, limit, after, before)
        flag = "hasNext" if pick.random() < CAMEL_PAGE_FLAG_SHARE else "has_next"
    return 200, {"success": True, "data": {"items": items, flag: offset + limit < len(trades)}}
