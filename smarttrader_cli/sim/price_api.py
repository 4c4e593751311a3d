"""BirdEye price endpoints of the simulator: `/defi/price`, `/defi/multi_price`, `/defi/history_price`.

Every price comes from the market's hourly paths, on the epoch's hour grid: a series of
any interval shows, at each point, exactly the price trades and the truth use at that
time (USDC and USDT at 1.0). A current price is the last hour's, updated when the token
last traded. Unknown mints answer `data: null` (`/defi/price`) or map to null (multi).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from smarttrader_cli.sim.birdeye_api import BadRequest, Reply, choice
from smarttrader_cli.sim.market import Market, SimToken

INTERVALS = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1H": 3600,
    "2H": 7200,
    "4H": 14400,
    "6H": 21600,
    "8H": 28800,
    "12H": 43200,
    "1D": 86400,
    "3D": 3 * 86400,
    "1W": 7 * 86400,
    "1M": 0,  # calendar months (UTC)
}
PRICE_MODES = ("raw", "scaled", "both")  # these endpoints default to raw
MAX_MULTI = 100  # addresses per multi_price call (BirdEye documents no cap; the sim keeps one)
MAX_POINTS = 100_000  # points per history_price answer (40 days of 1m is 57,600)
MAX_TIME = 10_000_000_000


def _flag(params: Mapping[str, Any], name: str) -> bool:
    return str(params.get(name, "")).lower() == "true"


def price_object(market: Market, token: SimToken, include_liquidity: bool) -> dict[str, Any]:
    """A token's current price in the camelCase shape of the price endpoints."""
    updated = market.current_time(token)
    value = token.prices[-1]
    obj: dict[str, Any] = {
        "isScaledUiToken": False,
        "value": value,
        "updateUnixTime": updated,
        "updateHumanTime": datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "priceInNative": value / market.tokens[0].prices[-1],
        "priceChange24h": (value / token.prices[-25] - 1) * 100,
    }
    if include_liquidity:
        obj["liquidity"] = token.metrics.get("liquidity")
    return obj


def _current(market: Market, mint: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    token = market.by_address.get(mint)
    if token is None:
        return None
    floor = params.get("check_liquidity")
    if floor not in (None, ""):
        try:
            if float(token.metrics.get("liquidity") or 0) < float(floor):  # type: ignore[arg-type]
                return None
        except ValueError:
            raise BadRequest("check_liquidity must be a number") from None
    return price_object(market, token, _flag(params, "include_liquidity"))


def price(market: Market, params: Mapping[str, Any]) -> Reply:
    """GET /defi/price?address=: the price object, or null for an unknown mint."""
    mint = params.get("address")
    if not mint:
        raise BadRequest("address is required")
    choice(params, "ui_amount_mode", PRICE_MODES, "raw")
    return 200, {"success": True, "data": _current(market, str(mint), params)}


def multi_price(market: Market, params: Mapping[str, Any]) -> Reply:
    """GET and POST /defi/multi_price: `list_address` "A,B" (one string, POST too)."""
    raw = params.get("list_address")
    if not raw:
        raise BadRequest("list_address is required")
    if not isinstance(raw, str):
        raise BadRequest("list_address must be one string of addresses joined by commas")
    choice(params, "ui_amount_mode", PRICE_MODES, "raw")
    mints = list(dict.fromkeys(a.strip() for a in raw.split(",") if a.strip()))
    if len(mints) > MAX_MULTI:
        raise BadRequest(f"list_address holds more than {MAX_MULTI} addresses")
    return 200, {"success": True, "data": {m: _current(market, m, params) for m in mints}}


def _int(params: Mapping[str, Any], name: str) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        raise BadRequest(f"{name} is required")
    try:
        value = int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not 0 <= value <= MAX_TIME:
        raise BadRequest(f"{name} must be between 0 and {MAX_TIME}")
    return value


def _points(kind: str, lo: int, hi: int) -> list[int]:
    """Interval starts in [lo, hi], on the epoch grid (calendar months for 1M)."""
    step = INTERVALS[kind]
    if step:
        first = -(-lo // step) * step
        if (hi - first) // step >= MAX_POINTS:
            raise BadRequest(f"more than {MAX_POINTS} points: narrow the range or widen type")
        return list(range(first, hi + 1, step))
    out: list[int] = []
    day = datetime.fromtimestamp(lo, UTC)
    year, month = day.year, day.month
    while True:
        start = int(datetime(year, month, 1, tzinfo=UTC).timestamp())
        if start > hi:
            return out
        if start >= lo:
            out.append(start)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def history_price(market: Market, params: Mapping[str, Any]) -> Reply:
    """GET /defi/history_price: `items[{unixTime, value}]` from the market's price path."""
    mint = params.get("address")
    if not mint:
        raise BadRequest("address is required")
    address_type = choice(params, "address_type", ("token", "pair"), "")
    kind = params.get("type")
    if kind not in INTERVALS:
        raise BadRequest(f"type must be one of {' '.join(INTERVALS)}")
    choice(params, "ui_amount_mode", PRICE_MODES, "raw")
    time_from, time_to = _int(params, "time_from"), _int(params, "time_to")
    if time_from > time_to:
        raise BadRequest("time_from must not be after time_to")
    token = market.by_address.get(str(mint)) if address_type == "token" else None
    items: list[dict[str, Any]] = []
    if token is not None:
        # Nothing before the history began, nothing after "now".
        lo = max(time_from, market.start_time)
        hi = min(time_to, max(market.end_time, int(time.time())))
        points = _points(kind, lo, hi) if lo <= hi else []
        hour = market.hour_of
        items = [{"unixTime": t, "value": token.price_at_hour(hour(t))} for t in points]
    return 200, {"success": True, "data": {"isScaledUiToken": False, "items": items}}
