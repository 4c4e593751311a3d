"""Typed records parsed from BirdEye responses, one parser per endpoint.

Parsers accept every variant the real API sends (amounts as numbers, strings or
raw floats with rounding noise, null or absent instruction indexes, a null `price`
falling back to `nearest_price`, then to unpriced, extra fields) and reject anything
else with a `RecordError` that names the offending field.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any


class RecordError(ValueError):
    """An API record that does not have the documented shape."""


@dataclass
class TokenRecord:
    """One token-list row of /defi/v3/token/list."""

    token_address: str
    symbol: str | None
    name: str | None
    decimals: int | None
    price: float | None
    liquidity: float | None
    market_cap: float | None
    fdv: float | None
    volume_24h_usd: float | None
    volume_24h_change_percent: float | None
    price_change_24h_percent: float | None
    trade_24h_count: int | None
    buy_24h: int | None
    sell_24h: int | None
    unique_wallet_24h: int | None
    holder: int | None
    last_trade_unix_time: int | None
    recent_listing_time: int | None


@dataclass
class HolderRecord:
    """One top-holder row of a token."""

    token_address: str
    wallet_address: str
    token_account: str | None
    amount_raw: str
    decimals: int
    ui_amount: float


NO_INDEX = -1  # ins_index / inner_ins_index when the API gave none (null or absent)


@dataclass
class TradeRecord:
    """One swap of a wallet: what it gave up (from) and what it received (to).

    Its natural key is (tx_hash, ins_index, inner_ins_index, fill_id, wallet_address).
    `fill_id` is empty when the API's instruction index tells the swap apart; when it
    gave none (openbook fills, several per transaction), it is a digest of what the
    fill moved, which is the same whenever the same item is fetched again.
    """

    tx_hash: str
    ins_index: int
    inner_ins_index: int
    fill_id: str
    wallet_address: str
    block_unix_time: int
    block_number: int | None
    source: str | None
    from_token_address: str
    from_symbol: str | None
    from_decimals: int
    from_amount_raw: str
    from_amount: float
    from_price_usd: float | None
    to_token_address: str
    to_symbol: str | None
    to_decimals: int
    to_amount_raw: str
    to_amount: float
    to_price_usd: float | None
    volume_usd: float | None

    @property
    def key(self) -> tuple[str, int, int, str, str]:
        return (
            self.tx_hash,
            self.ins_index,
            self.inner_ins_index,
            self.fill_id,
            self.wallet_address,
        )


# --- field readers ------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, path: str, required: bool) -> Any:
    value = obj.get(key)
    if value is None and required:
        raise RecordError(f"{path}{key}: missing")
    return value


def text(obj: dict[str, Any], key: str, path: str = "", required: bool = False) -> str | None:
    """A string field (required ones must be non-empty)."""
    value = _get(obj, key, path, required)
    if value is None:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecordError(f"{path}{key}: expected a string, got {value!r}")
    return value


def number(obj: dict[str, Any], key: str, path: str = "", required: bool = False) -> float | None:
    """A finite number, given as a JSON number or a numeric string."""
    value = _get(obj, key, path, required)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RecordError(f"{path}{key}: expected a number, got {value!r}")
    try:
        result = float(value)
    except ValueError:
        raise RecordError(f"{path}{key}: expected a number, got {value!r}") from None
    if not math.isfinite(result):
        raise RecordError(f"{path}{key}: expected a finite number, got {value!r}")
    return result


def integer(obj: dict[str, Any], key: str, path: str = "", required: bool = False) -> int | None:
    """An integer, given as a JSON integer, an integral float or a digit string."""
    value = _get(obj, key, path, required)
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"{path}{key}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise RecordError(f"{path}{key}: expected an integer, got {value!r}")


def raw_amount(obj: dict[str, Any], key: str, path: str = "") -> str:
    """A raw token amount (integer as number or string), as an unsigned digit string."""
    value = integer(obj, key, path, required=True)
    assert value is not None
    return str(abs(value))


# A raw amount that arrives as a float (openbook fills) carries rounding noise of a few
# ulps: 4799161360.000001 is 4799161360. Anything further from an integer is not noise.
_RAW_FLOAT_TOLERANCE = 1e-14


def noisy_raw_amount(obj: dict[str, Any], key: str, path: str = "") -> int:
    """A raw amount given as an integer, a digit string or a float with rounding noise."""
    value = _get(obj, key, path, required=True)
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        nearest = round(value)
        if abs(value - nearest) > max(1e-6, abs(value) * _RAW_FLOAT_TOLERANCE):
            raise RecordError(f"{path}{key}: expected a raw integer amount, got {value!r}")
        return abs(nearest)
    if isinstance(value, str) and "." in value:
        try:
            parsed = float(value)
        except ValueError:
            raise RecordError(f"{path}{key}: expected a number, got {value!r}") from None
        return noisy_raw_amount({key: parsed}, key, path)
    result = integer(obj, key, path, required=True)
    assert result is not None
    return abs(result)


# --- endpoints ------------------------------------------------------------------


def parse_token_v3(item: Any) -> TokenRecord:
    """An item of /defi/v3/token/list."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    return TokenRecord(
        token_address=text(item, "address", required=True) or "",
        symbol=text(item, "symbol"),
        name=text(item, "name"),
        decimals=integer(item, "decimals"),
        price=number(item, "price"),
        liquidity=number(item, "liquidity"),
        market_cap=number(item, "market_cap"),
        fdv=number(item, "fdv"),
        volume_24h_usd=number(item, "volume_24h_usd"),
        volume_24h_change_percent=number(item, "volume_24h_change_percent"),
        price_change_24h_percent=number(item, "price_change_24h_percent"),
        trade_24h_count=integer(item, "trade_24h_count"),
        buy_24h=integer(item, "buy_24h"),
        sell_24h=integer(item, "sell_24h"),
        unique_wallet_24h=integer(item, "unique_wallet_24h"),
        holder=integer(item, "holder"),
        last_trade_unix_time=integer(item, "last_trade_unix_time"),
        recent_listing_time=integer(item, "recent_listing_time"),
    )


def parse_holder(item: Any, token_address: str) -> HolderRecord:
    """An item of /defi/v3/token/holder for `token_address`."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    mint = text(item, "mint")
    if mint is not None and mint != token_address:
        raise RecordError(f"mint: {mint!r} is not the requested token {token_address!r}")
    decimals = integer(item, "decimals", required=True)
    assert decimals is not None
    amount = raw_amount(item, "amount")
    ui = number(item, "ui_amount")
    if ui is None:
        ui = int(amount) / 10**decimals
    return HolderRecord(
        token_address=token_address,
        wallet_address=text(item, "owner", required=True) or "",
        token_account=text(item, "token_account"),
        amount_raw=amount,
        decimals=decimals,
        ui_amount=abs(ui),
    )


@dataclass
class _Leg:
    address: str
    symbol: str | None
    decimals: int
    amount_raw: str
    amount: float
    price: float | None


def _leg_side(leg: dict[str, Any], path: str) -> str:
    side = leg.get("type_swap")
    if side in ("from", "to"):
        return str(side)
    if side is None:  # undocumented but unambiguous: the sign of the change says it
        change = number(leg, "change_amount", path)
        if change is not None and change != 0:
            return "from" if change < 0 else "to"
    raise RecordError(f"{path}type_swap: expected 'from' or 'to', got {side!r}")


def _parse_leg(leg: dict[str, Any], path: str) -> _Leg:
    decimals = integer(leg, "decimals", path, required=True)
    assert decimals is not None
    if not 0 <= decimals <= 30:
        raise RecordError(f"{path}decimals: expected 0-30, got {decimals}")
    raw = noisy_raw_amount(leg, "amount", path)
    ui = number(leg, "ui_amount", path)
    exact = raw / 10**decimals
    if ui is not None and not _agrees(abs(ui), exact, number(leg, "multiplier", path)):
        raise RecordError(
            f"{path}amount: raw {raw} with {decimals} decimals is {exact:g}, "
            f"but ui_amount is {ui!r}"
        )
    price = number(leg, "price", path)
    if price is None:
        price = number(leg, "nearest_price", path)
    return _Leg(
        address=text(leg, "address", path, required=True) or "",
        symbol=text(leg, "symbol", path),
        decimals=decimals,
        amount_raw=str(raw),
        amount=exact,
        price=price,
    )


def parse_trade(item: Any, wallet: str) -> TradeRecord:
    """An item of /trader/txs/seek_by_time for `wallet`."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    owner = text(item, "owner")
    if owner is not None and owner != wallet:
        raise RecordError(f"owner: {owner!r} is not the requested wallet")
    sides: dict[str, _Leg] = {}
    for name in ("base", "quote"):
        leg = item.get(name)
        if not isinstance(leg, dict):
            raise RecordError(f"{name}: expected an object, got {leg!r}")
        side = _leg_side(leg, f"{name}.")
        if side in sides:
            raise RecordError(f"{name}.type_swap: both legs are {side!r}")
        sides[side] = _parse_leg(leg, f"{name}.")
    gave, got = sides["from"], sides["to"]
    if gave.address == got.address:
        raise RecordError(f"base.address: both legs are {gave.address!r}")
    block_time = integer(item, "block_unix_time", required=True)
    assert block_time is not None
    ins = _index(item, "ins_index")
    inner = _index(item, "inner_ins_index")
    tx_hash = text(item, "tx_hash", required=True) or ""
    return TradeRecord(
        tx_hash=tx_hash,
        ins_index=NO_INDEX if ins is None else ins,
        inner_ins_index=NO_INDEX if inner is None else inner,
        fill_id="" if ins is not None else fill_digest(gave, got, integer(item, "block_number")),
        wallet_address=wallet,
        block_unix_time=block_time,
        block_number=integer(item, "block_number"),
        source=text(item, "source"),
        from_token_address=gave.address,
        from_symbol=gave.symbol,
        from_decimals=gave.decimals,
        from_amount_raw=gave.amount_raw,
        from_amount=gave.amount,
        from_price_usd=gave.price,
        to_token_address=got.address,
        to_symbol=got.symbol,
        to_decimals=got.decimals,
        to_amount_raw=got.amount_raw,
        to_amount=got.amount,
        to_price_usd=got.price,
        volume_usd=number(item, "volume_usd"),
    )


def _agrees(ui: float, exact: float, multiplier: float | None) -> bool:
    """Whether a UI amount is its raw amount (scaled by a token's multiplier, if any).

    The check catches misreads (a UI amount sent where a raw one belongs), not rounding:
    real pages round some UI amounts to a few digits.
    """
    candidates = (exact, exact * multiplier) if multiplier else (exact,)
    return any(math.isclose(ui, c, rel_tol=1e-3, abs_tol=1e-12) for c in candidates)


def _index(item: dict[str, Any], key: str) -> int | None:
    """An instruction index: a non-negative integer, or None when null or absent."""
    value = integer(item, key)
    if value is not None and value < 0:
        raise RecordError(f"{key}: expected a non-negative integer, got {value}")
    return value


def fill_digest(gave: _Leg, got: _Leg, block_number: int | None) -> str:
    """What tells apart swaps of one transaction that carry no instruction index."""
    what = f"{gave.address}:{gave.amount_raw}>{got.address}:{got.amount_raw}@{block_number}"
    return hashlib.sha256(what.encode()).hexdigest()[:16]


@dataclass
class PriceRecord:
    """A token's USD price at a time (a point of a series, or a current price)."""

    token_address: str
    unix_time: int
    price_usd: float


def parse_price_point(item: Any, token_address: str) -> PriceRecord:
    """An item of /defi/history_price: `{unixTime, value}`."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    at = integer(item, "unixTime", required=True)
    value = number(item, "value", required=True)
    assert at is not None and value is not None
    if value <= 0:
        raise RecordError(f"value: expected a positive price, got {value!r}")
    return PriceRecord(token_address, at, value)


def price_object(obj: Any, token_address: str) -> dict[str, Any] | None:
    """A token's object in a price answer (None: BirdEye does not price the token)."""
    if obj is None or isinstance(obj, dict):
        return obj
    raise RecordError(f"{token_address}: expected an object, got {type(obj).__name__}")


def parse_current_price(obj: Any, token_address: str) -> PriceRecord | None:
    """A price object of /defi/price or /defi/multi_price; None for an unknown token."""
    obj = price_object(obj, token_address)
    if obj is None:
        return None
    value = number(obj, "value", f"{token_address}.")
    at = integer(obj, "updateUnixTime", f"{token_address}.", required=True)
    if value is None:
        return None
    assert at is not None
    if value <= 0:
        raise RecordError(f"{token_address}.value: expected a positive price, got {value!r}")
    return PriceRecord(token_address, at, value)


# --- discovery: a token's top traders, the gainers list --------------------------

TOP_TRADERS_SOURCE = "top_traders"
GAINERS_SOURCE = "gainers"
ALL_TOKENS = "ALL_TOKENS"  # the scope of a list that spans every token


@dataclass
class WalletSourceRecord:
    """A wallet found on a discovery list, with the figures the list gave for it.

    `source` is `top_traders` (scope: the token) or `gainers` (scope: ALL_TOKENS);
    `time_frame` the list's window (24h ... or yesterday, today, 1W).
    """

    source: str
    scope: str
    time_frame: str
    wallet_address: str
    volume: float | None
    trade_count: int | None
    buy_count: int | None
    sell_count: int | None
    volume_buy: float | None
    volume_sell: float | None
    pnl: float | None
    tags: str | None
    network: str | None


def _either(item: dict[str, Any], *names: str) -> str:
    """The first of a field's spellings present in the item (camelCase or snake_case)."""
    return next((n for n in names if item.get(n) is not None), names[0])


def wallet_address(item: dict[str, Any], key: str) -> str:
    """A required wallet field that must be a base58 Solana address (32 bytes)."""
    from solders.pubkey import Pubkey

    value = text(item, key, required=True) or ""
    try:
        Pubkey.from_string(value)
    except ValueError:
        raise RecordError(f"{key}: {value!r} is not a Solana address") from None
    return value


def _tags(item: dict[str, Any]) -> str | None:
    tags = item.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RecordError(f"tags: expected a list of strings, got {tags!r}")
    return ",".join(tags)


def parse_top_trader(item: Any, token_address: str, time_frame: str) -> WalletSourceRecord:
    """An item of /defi/v2/tokens/top_traders for `token_address` (camelCase; snake too)."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    mint = text(item, _either(item, "tokenAddress", "token_address"))
    if mint is not None and mint != token_address:
        raise RecordError(f"tokenAddress: {mint!r} is not the requested token {token_address!r}")
    frame = text(item, "type")
    if frame is not None and frame != time_frame:
        raise RecordError(f"type: {frame!r} is not the requested time frame {time_frame!r}")
    return WalletSourceRecord(
        source=TOP_TRADERS_SOURCE,
        scope=token_address,
        time_frame=time_frame,
        wallet_address=wallet_address(item, "owner"),
        volume=number(item, "volume"),
        trade_count=integer(item, "trade"),
        buy_count=integer(item, _either(item, "tradeBuy", "trade_buy")),
        sell_count=integer(item, _either(item, "tradeSell", "trade_sell")),
        volume_buy=number(item, _either(item, "volumeBuy", "volume_buy")),
        volume_sell=number(item, _either(item, "volumeSell", "volume_sell")),
        pnl=None,
        tags=_tags(item),
        network=None,
    )


def parse_gainer(item: Any, period: str) -> WalletSourceRecord:
    """An item of /trader/gainers-losers for `period` (snake_case; camelCase too)."""
    if not isinstance(item, dict):
        raise RecordError(f"item: expected an object, got {type(item).__name__}")
    pnl = number(item, _either(item, "pnl", "PnL"), required=True)
    return WalletSourceRecord(
        source=GAINERS_SOURCE,
        scope=ALL_TOKENS,
        time_frame=period,
        wallet_address=wallet_address(item, "address"),
        volume=number(item, "volume"),
        trade_count=integer(item, _either(item, "trade_count", "tradeCount")),
        buy_count=None,
        sell_count=None,
        volume_buy=None,
        volume_sell=None,
        pnl=pnl,
        tags=None,
        network=text(item, "network"),
    )
