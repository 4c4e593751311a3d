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
            source = "no known price: not in the price table nor in the latest token snapshot"
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
    """One LegValue per leg, in the legs' order."""
    if event_time is None:
        return [_unpriced("the event has no timestamp") for _ in legs]
    is_quote = [leg.token_address in quote_assets for leg in legs]
    values = [
        _direct(leg, event_time, book, snapshot, quote) if quote else None
        for leg, quote in zip(legs, is_quote, strict=True)
    ]
    for side in ("buy", "sell"):
        other = "sell" if side == "buy" else "buy"
        mine = [i for i, leg in enumerate(legs) if leg.direction == side and not is_quote[i]]
        theirs = [i for i, leg in enumerate(legs) if leg.direction == other]
        paid_in_quote = bool(theirs) and all(is_quote[i] for i in theirs)
        if not mine or not paid_in_quote:
            continue
        quote_values = [values[i] for i in theirs]
        missing = next((v for v in quote_values if v is None or v.value_usd is None), None)
        if missing is not None:
            reason = missing.unpriced_reason if missing else "quote leg unpriced"
            for i in mine:
                values[i] = _unpriced(f"its quote leg has no price: {reason}")
            continue
        total = sum(v.value_usd or 0.0 for v in quote_values if v is not None)
        if len(mine) == 1 and not any(is_quote[j] for j in range(len(legs)) if j not in theirs):
            leg = legs[mine[0]]
            values[mine[0]] = LegValue(total / leg.amount, total, "quote_leg", None)
    return [
        v if v is not None else _direct(legs[i], event_time, book, snapshot, False)
        for i, v in enumerate(values)
    ]
