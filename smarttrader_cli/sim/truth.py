"""The ground truth of every planted swap: what each wallet really gave up and received.

Parsers are checked against it: a parser that reads BirdEye items or Helius events
right yields exactly these legs (and rejects the items flagged `malformed`).

- `birdeye_truth(market, wallets)`: two legs per swap of the wallets' histories, in the
  order seek_by_time serves them (newest first); one per openbook fill.
- `helius_truth(market, count, start_time)`: per event of `enhanced_swaps(market, count,
  start_time)`, its outcome and legs. A leg is the wallet's own net change of one asset,
  native SOL and wSOL as one; the network fee and recoverable rent are no part of it,
  tips on a SOL swap are (in the SOL leg), dust tips on a swap without SOL are no leg.

USD values: when one leg is a quote asset (USDC or USDT before SOL) both legs carry
that leg's value at the sim's price for the time (USDC and USDT at 1.0, SOL as
`/defi/history_price` serves it); token-to-token, each leg at its own price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from smarttrader_cli.sim.market import SOL, USDC, USDT, Market, SimToken
from smarttrader_cli.sim.trades import MALFORMED, TradeBook

QUOTE_ORDER = (USDC, USDT, SOL)  # which quote leg values a swap, first found wins
LEG_COLUMNS = (
    "source",
    "wallet",
    "tx",
    "time",
    "direction",
    "token_address",
    "amount",
    "amount_raw",
    "value_usd",
    "malformed",
)


@dataclass(frozen=True)
class TruthLeg:
    """One side of a planted swap, as a correct parser must report it."""

    source: str  # "birdeye" | "helius"
    wallet: str
    tx: str  # tx_hash (birdeye) or signature (helius)
    direction: str  # "buy" (received) | "sell" (gave up)
    token_address: str  # native SOL as the wSOL mint So111...112
    amount: float  # UI units: amount_raw / 10**decimals
    amount_raw: int
    value_usd: float | None
    malformed: bool  # a BirdEye item planted malformed: parsers must reject it
    time: int  # block_unix_time (birdeye) or timestamp (helius)


def _values(market: Market, t: int, legs: list[tuple[str, SimToken, int]]) -> list[float]:
    """USD value of each leg: the quote leg's for all, or each at its own price."""
    ui = [raw / 10**token.decimals for _, token, raw in legs]
    for mint in QUOTE_ORDER:
        for (_, token, _), amount in zip(legs, ui, strict=True):
            if token.address == mint:
                value = amount * market.price(token.index, t)
                return [value] * len(legs)
    return [
        amount * market.price(token.index, t)
        for (_, token, _), amount in zip(legs, ui, strict=True)
    ]


def _legs(
    market: Market,
    source: str,
    wallet: str,
    tx: str,
    t: int,
    legs: list[tuple[str, SimToken, int]],
    malformed: bool = False,
) -> list[TruthLeg]:
    values = _values(market, t, legs)
    return [
        TruthLeg(
            source,
            wallet,
            tx,
            direction,
            token.address,
            raw / 10**token.decimals,
            raw,
            value,
            malformed,
            t,
        )
        for (direction, token, raw), value in zip(legs, values, strict=True)
    ]


def birdeye_truth(market: Market, wallets: Iterable[str] | None = None) -> list[TruthLeg]:
    """Two legs (sell, then buy) per swap in the wallets' histories (default: every wallet)."""
    book = TradeBook(market, cache_size=1)
    tokens = market.tokens
    addresses = [w.address for w in market.wallets] if wallets is None else list(wallets)
    out: list[TruthLeg] = []
    for wallet in addresses:
        for tr in book.history(wallet):
            legs = [
                ("sell", tokens[tr.from_token], tr.from_raw),
                ("buy", tokens[tr.to_token], tr.to_raw),
            ]
            malformed = bool(tr.flags & MALFORMED)
            out += _legs(market, "birdeye", wallet, tr.tx_hash, tr.t, legs, malformed)
    return out


def helius_truth(market: Market, count: int, start_time: int) -> list[dict[str, Any]]:
    """Per event of `enhanced_swaps(market, count, start_time)`: what it really traded.

    Each item: `signature`, `wallet`, `timestamp`, `outcome` ("swap", "failed" or
    "not_a_swap") and `legs` (TruthLeg; none unless the outcome is "swap").
    """
    from smarttrader_cli.sim.enhanced import build

    out = []
    for _, plan in build(market, count, start_time):
        legs = _legs(market, "helius", plan.wallet, plan.signature, plan.time, plan.legs)
        out.append(
            {
                "signature": plan.signature,
                "wallet": plan.wallet,
                "timestamp": plan.time,
                "outcome": plan.outcome,
                "legs": legs,
            }
        )
    return out


def leg_rows(legs: Iterable[TruthLeg]) -> list[dict[str, Any]]:
    """Legs as plain dicts (for JSON, CSV or a table)."""
    return [asdict(leg) for leg in legs]


def helius_rows(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per leg, and one row (no leg fields) per event that traded nothing."""
    rows: list[dict[str, Any]] = []
    for event in events:
        head = {"outcome": event["outcome"]}
        if not event["legs"]:
            rows.append(
                {
                    **head,
                    "source": "helius",
                    "wallet": event["wallet"],
                    "tx": event["signature"],
                    "time": event["timestamp"],
                }
            )
        rows += [{**head, **asdict(leg)} for leg in event["legs"]]
    return rows
