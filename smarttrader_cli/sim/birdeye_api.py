"""BirdEye endpoints of the simulator: request checks, filtering, paging, real shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smarttrader_cli.sim.market import Market, SimToken
from smarttrader_cli.sim.trades import (
    AMOUNT_AS_STRING,
    BASE_IS_FROM,
    FROM_PRICE_NULL,
    FROM_UNPRICED,
    MALFORMED,
    TO_PRICE_NULL,
    TO_UNPRICED,
    Trade,
    TradeBook,
)

MAX_OFFSET = 10_000
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


def _paging(params: Mapping[str, str], max_limit: int) -> tuple[int, int]:
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
    offset, limit = _paging(params, 100)
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
    offset, limit = _paging(params, 50)
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
    offset, limit = _paging(params, 100)
    if mint not in market.by_address:
        return 200, {"success": True, "data": {"items": []}}
    items = market.holders(mint)[offset : offset + limit]
    return 200, {"success": True, "data": {"items": items}}


def seek_by_time(market: Market, book: TradeBook, params: Mapping[str, str]) -> Reply:
    """GET /trader/txs/seek_by_time."""
    wallet = params.get("address")
    if not wallet:
        raise BadRequest("address is required")
    tx_type = params.get("tx_type", "swap")
    if tx_type not in ("swap", "all"):
        raise BadRequest("tx_type must be swap or all")
    offset, limit = _paging(params, 100)
    after = _int(params, "after_time", -1, -1, 1 << 40)
    before = _int(params, "before_time", 1 << 40, 0, 1 << 40)
    trades = book.window(wallet, after, before)
    page = trades[offset : offset + limit]
    items = [render_trade(market, wallet, tr) for tr in page]
    return 200, {"success": True, "data": {"items": items, "hasNext": offset + limit < len(trades)}}


def _leg(market: Market, tr: Trade, side: str) -> dict[str, Any]:
    token_index, raw = (tr.from_token, tr.from_raw) if side == "from" else (tr.to_token, tr.to_raw)
    token = market.tokens[token_index]
    ui = raw / 10**token.decimals
    price: float | None = market.price(token_index, tr.t)
    nearest: float | None = price
    null_flag, unpriced_flag = (
        (FROM_PRICE_NULL, FROM_UNPRICED) if side == "from" else (TO_PRICE_NULL, TO_UNPRICED)
    )
    if tr.flags & unpriced_flag:
        price = nearest = None
    elif tr.flags & null_flag:
        price = None
    sign = -1 if side == "from" else 1
    amount: int | str = str(raw) if tr.flags & AMOUNT_AS_STRING else raw
    return {
        "symbol": token.symbol,
        "decimals": token.decimals,
        "address": token.address,
        "amount": amount,
        "type_swap": side,
        "ui_amount": ui,
        "price": price,
        "nearest_price": nearest,
        "change_amount": sign * raw,
        "ui_change_amount": sign * ui,
    }


def render_trade(market: Market, wallet: str, tr: Trade) -> dict[str, Any]:
    """One trade in the seek_by_time item shape (malformed on purpose when planted)."""
    gave, got = _leg(market, tr, "from"), _leg(market, tr, "to")
    from_is_quote = market.tokens[tr.from_token].kind == "quote"
    to_is_quote = market.tokens[tr.to_token].kind == "quote"
    if from_is_quote != to_is_quote:
        base, quote = (got, gave) if from_is_quote else (gave, got)
    else:
        base, quote = (gave, got) if tr.flags & BASE_IS_FROM else (got, gave)
    price = gave["price"] if gave["price"] is not None else gave["nearest_price"]
    item: dict[str, Any] = {
        "quote": quote,
        "base": base,
        "base_price": base["price"],
        "quote_price": quote["price"],
        "tx_hash": tr.tx_hash,
        "source": tr.source,
        "block_unix_time": tr.t,
        "tx_type": "swap",
        "address": "",
        "owner": wallet,
        "block_number": int((tr.t - 1_600_000_000) * 2.5),
        "volume_usd": round(gave["ui_amount"] * price, 6) if price is not None else None,
        "ins_index": tr.ins_index,
        "inner_ins_index": tr.inner_ins_index,
    }
    if tr.flags & MALFORMED:
        kind = ord(tr.tx_hash[-1]) % 4
        if kind == 0:
            item["tx_hash"] = None
        elif kind == 1:
            item["base"]["type_swap"] = "sideways"
        elif kind == 2:
            item["ins_index"] = "first"
        else:
            del item["quote"]
    return item
