"""USD values of real-time swap legs: by the quote leg, a price table, or a known price.

A swap against a quote asset is worth what the quote leg was worth: stablecoins at
1 USD, SOL at its price at the event's time (`PriceBook`), and the other leg takes
that value. A swap of two other tokens values each leg at a known price: the price
table, else the token's latest BirdEye snapshot price. A leg that truly has no price
keeps `value_usd` unknown and says why; it is never 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarttrader_cli.stages.prices import PriceBook
    from smarttrader_cli.stream.swaps import SwapLeg


# Why a leg of a token neither the price table nor a snapshot knows has no value.
NO_KNOWN_PRICE = "no known price: not in the price table nor in the latest token snapshot"


@dataclass(frozen=True)
class LegValue:
    """A leg's USD price and value, where they came from, or why there is none."""

    price_usd: float | None
    value_usd: float | None
    price_source: str | None  # stablecoin, price_table, quote_leg, token_snapshot
    unpriced_reason: str | None


def _unpriced(reason: str) -> LegValue:
    return LegValue(None, None, None, reason)


def _direct(
    leg: SwapLeg, at: int, book: PriceBook, snapshot: dict[str, float], is_quote: bool
) -> LegValue:
    """A leg priced on its own: the price table (stablecoins included), else the snapshot."""
    price, source = book.price_at(leg.token_address, at)
    if price is None and not is_quote:
        snap = snapshot.get(leg.token_address)
        if snap is not None and snap > 0:
            price, source = snap, "token_snapshot"
        else:
            source = NO_KNOWN_PRICE
    if price is None:
        return _unpriced(source)
    return LegValue(price, leg.amount * price, source, None)


def value_legs(
    legs: list[SwapLeg],
    event_time: int | None,
    book: PriceBook,
    snapshot: dict[str, float],
    quote_assets: frozenset[str],
) -> list[LegValue]:
    """One LegValue per leg, in the legs' order.

    The anchor is the side paid in quote assets only, preferring a side of stablecoins
    (their USD is exact): when the other side is a single leg, it takes the anchor's
    value. Every other leg is priced on its own.
    """
    if event_time is None:
        return [_unpriced("the event has no timestamp") for _ in legs]
    is_quote = [leg.token_address in quote_assets for leg in legs]
    direct = [
        _direct(leg, event_time, book, snapshot, quote)
        for leg, quote in zip(legs, is_quote, strict=True)
    ]
    sides = {d: [i for i, leg in enumerate(legs) if leg.direction == d] for d in ("buy", "sell")}
    values: list[LegValue] = list(direct)
    candidates: list[tuple[bool, list[int], int]] = []
    for side, other in (("sell", "buy"), ("buy", "sell")):
        anchor, targets = sides[side], sides[other]
        if anchor and len(targets) == 1 and all(is_quote[i] for i in anchor):
            stable = all(direct[i].price_source == "stablecoin" for i in anchor)
            candidates.append((not stable, anchor, targets[0]))
    for _, anchor, target in sorted(candidates, key=lambda c: c[0]):
        missing = next((direct[i] for i in anchor if direct[i].value_usd is None), None)
        if missing is not None:
            if not is_quote[target]:
                values[target] = _unpriced(f"its quote leg has no price: {missing.unpriced_reason}")
            continue
        total = sum(direct[i].value_usd or 0.0 for i in anchor)
        values[target] = LegValue(total / legs[target].amount, total, "quote_leg", None)
        break
    return values
