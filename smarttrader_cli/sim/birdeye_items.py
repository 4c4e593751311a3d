"""Trades as BirdEye `/trader/txs/seek_by_time` items, with the quirks of real pages.

With `SimSettings.quirks` (the default) an item looks like the real captures of
API_CONTRACTS.md: pool `address`, `volume`, `signers` (a list, or null on about a quarter
of items), `interacted_program_id`; legs with `type`, `is_scaled_ui_token`, `multiplier`
and sometimes `fee_info`; no `ins_index` key on openbook_v2 fills, whose raw amounts are
often the true integer off by a float error; raw amounts as strings on meteora_dlmm
(`change_amount` stays a number there, as captured), meteora_damm_v2 and pump_dot_fun.
Without quirks an item has the documented shape only. Every choice is a function of the
trade, so an item is the same each time it is served.
"""

from __future__ import annotations

import math
import random
from typing import Any

from smarttrader_cli.sim.market import Market, address, rng_for
from smarttrader_cli.sim.trades import (
    AMOUNT_AS_STRING,
    BASE_IS_FROM,
    FROM_PRICE_NULL,
    FROM_UNPRICED,
    MALFORMED,
    OPENBOOK,
    TO_PRICE_NULL,
    TO_UNPRICED,
    Trade,
)

FLOAT_ERROR_SHARE = 0.5  # of openbook_v2 legs: raw amount off the integer by 1-3 ulps
NULL_SIGNERS_SHARE = 0.25
EXTRA_SIGNER_SHARE = 0.02
FEE_INFO_SHARE = 0.03  # of legs
CHANGE_AS_NUMBER = frozenset(("meteora_dlmm",))  # amount a string, change_amount a number
LOG_LEG_SOURCES = frozenset((OPENBOOK, "phoenix", "meteora_dlmm"))


def float_error(raw: int, rng: random.Random) -> float:
    """`raw` as a float a few ulps off, as BirdEye serves openbook fills (4799161360.000001)."""
    value = float(raw)
    if raw >= 2**40:  # ulps grow past 1e-4: no longer a tiny error
        return value
    direction = math.inf if rng.random() < 0.5 else -math.inf
    for _ in range(rng.randint(1, 3)):
        value = math.nextafter(value, direction)
    return value


def _leg(market: Market, tr: Trade, side: str, rng: random.Random) -> dict[str, Any]:
    token_index, raw = (tr.from_token, tr.from_raw) if side == "from" else (tr.to_token, tr.to_raw)
    token = market.tokens[token_index]
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
    quirks = market.settings.quirks
    value: int | float = raw
    if quirks and tr.source == OPENBOOK and rng.random() < FLOAT_ERROR_SHARE:
        value = float_error(raw, rng)
    amount: int | float | str = value
    change: int | float | str = sign * value
    if tr.flags & AMOUNT_AS_STRING:
        amount = str(raw)
        change = sign * raw if tr.source in CHANGE_AS_NUMBER else str(sign * raw)
    ui = value / 10**token.decimals
    leg: dict[str, Any] = {
        "symbol": token.symbol,
        "decimals": token.decimals,
        "address": token.address,
        "amount": amount,
    }
    if quirks:
        if tr.source in LOG_LEG_SOURCES:
            leg["type"] = "log"
        else:
            leg["type"] = "transferChecked" if rng.random() < 0.4 else "transfer"
    leg.update(
        {
            "type_swap": side,
            "ui_amount": ui,
            "price": price,
            "nearest_price": nearest,
            "change_amount": change,
            "ui_change_amount": sign * ui,
        }
    )
    if not quirks:
        return leg
    leg["is_scaled_ui_token"] = False
    leg["multiplier"] = None
    if rng.random() < FEE_INFO_SHARE:
        fee = max(1, raw // 400)
        leg["fee_info"] = {
            "fee_amount": fee,
            "fee_ui_amount": fee / 10**token.decimals,
            "fee_bps": 25,
        }
    return leg


def render_trade(market: Market, wallet: str, tr: Trade) -> dict[str, Any]:
    """One trade in the seek_by_time item shape (malformed on purpose when planted)."""
    rng = rng_for(market.seed, "render", tr.tx_hash, tr.ins_index, tr.inner_ins_index, tr.fill)
    gave, got = _leg(market, tr, "from", rng), _leg(market, tr, "to", rng)
    from_is_quote = market.tokens[tr.from_token].kind == "quote"
    to_is_quote = market.tokens[tr.to_token].kind == "quote"
    if from_is_quote != to_is_quote:
        base, quote = (got, gave) if from_is_quote else (gave, got)
    else:
        base, quote = (gave, got) if tr.flags & BASE_IS_FROM else (got, gave)
    if market.settings.quirks:
        item = _real_item(market, wallet, tr, base, quote, rng)
    else:
        item = _documented_item(wallet, tr, base, quote, gave)
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


def _usd(leg: dict[str, Any]) -> float | None:
    price = leg["price"] if leg["price"] is not None else leg["nearest_price"]
    return None if price is None else leg["ui_amount"] * price


def _block_number(t: int) -> int:
    return int((t - 1_600_000_000) * 2.5)


def _documented_item(
    wallet: str, tr: Trade, base: dict[str, Any], quote: dict[str, Any], gave: dict[str, Any]
) -> dict[str, Any]:
    usd = _usd(gave)
    return {
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
        "block_number": _block_number(tr.t),
        "volume_usd": round(usd, 6) if usd is not None else None,
        "ins_index": tr.ins_index,
        "inner_ins_index": tr.inner_ins_index,
    }


def _real_item(
    market: Market,
    wallet: str,
    tr: Trade,
    base: dict[str, Any],
    quote: dict[str, Any],
    rng: random.Random,
) -> dict[str, Any]:
    seed = market.seed
    pair = sorted((tr.from_token, tr.to_token))
    usd = _usd(quote)
    if usd is None:
        usd = _usd(base)
    signers: list[str] | None
    if tr.source == OPENBOOK:
        signers = [address(seed, "crank", tr.tx_hash)]  # a keeper settles the fills
    elif rng.random() < NULL_SIGNERS_SHARE:
        signers = None
    elif rng.random() < EXTRA_SIGNER_SHARE:
        signers = [wallet, address(seed, "cosigner", wallet)]
    else:
        signers = [wallet]
    routed = tr.inner_ins_index is not None and tr.source != OPENBOOK
    program = address(seed, "program", "router" if routed else tr.source)
    item: dict[str, Any] = {
        "quote": quote,
        "base": base,
        "base_price": base["price"],
        "quote_price": quote["price"],
        "tx_hash": tr.tx_hash,
        "source": tr.source,
        "block_unix_time": tr.t,
        "tx_type": "swap",
        "address": address(seed, "pool", tr.source, *pair),
        "owner": wallet,
        "block_number": _block_number(tr.t) + (1 if tr.source == OPENBOOK else 0),
        "volume_usd": usd,
        "volume": base["ui_amount"],
        "ins_index": tr.ins_index,
        "inner_ins_index": tr.inner_ins_index,
        "signers": signers,
        "interacted_program_id": program,
    }
    if tr.ins_index is None:
        del item["ins_index"]
    return item
