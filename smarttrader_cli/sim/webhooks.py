"""Helius enhanced-transaction webhooks for the simulated wallets, and a client to POST them.

`enhanced_swaps(market, count)` builds SWAP events (the shape of API_CONTRACTS.md) made by
the market's wallets, mostly the planted smart ones, on its listed and pump tokens.
About a third carry no `events.swap` (absent or empty), as Helius does for DEXes it
does not parse, so consumers must fall back to `tokenTransfers` + `nativeTransfers`.
SOL legs appear as native lamport transfers (`nativeInput`/`nativeOutput` in
`events.swap`); other legs as token transfers with UI amounts.

`emit_webhooks(url, settings, count, auth_token)` POSTs them as JSON arrays with the
`Authorization` header set verbatim to `auth_token`, as Helius does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.market import SOL, Market, SimSettings, address, b58encode, digest, rng_for

SOURCES = ("JUPITER", "RAYDIUM", "ORCA", "PUMP_AMM")
LAMPORTS = 10**9


def enhanced_swaps(
    market: Market, count: int, start_time: int | None = None, spacing_seconds: int = 2
) -> list[dict[str, Any]]:
    """`count` enhanced SWAP transactions, deterministic for (seed, start_time)."""
    start = int(time.time()) - count * spacing_seconds if start_time is None else start_time
    rng = rng_for(market.seed, "webhooks", start)
    smart = [w for w in market.wallets if w.kind == "smart"]
    rest = [w for w in market.wallets if w.kind != "smart"]
    events = []
    for i in range(count):
        wallet = rng.choice(smart if smart and rng.random() < 0.6 else rest or smart)
        token = market.tokens[rng.choice(wallet.tokens)]
        quote = market.tokens[0 if rng.random() < 0.7 else 1]
        price = token.prices[-1]
        usd = rng.uniform(100, 5000)
        token_ui = round(usd / price, token.decimals)
        quote_ui = round(usd / quote.prices[-1], quote.decimals)
        buy = rng.random() < 0.55
        gave, gave_ui, got, got_ui = (
            (quote, quote_ui, token, token_ui) if buy else (token, token_ui, quote, quote_ui)
        )
        ts = start + i * spacing_seconds
        signature = b58encode(digest(market.seed, "wh-sig", start, i, size=64))
        pool = address(market.seed, "pool", token.index, 0)
        events.append(_event(wallet.address, pool, gave, gave_ui, got, got_ui, ts, signature, rng))
    return events


def _event(owner, pool, gave, gave_ui, got, got_ui, ts, signature, rng) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    native, transfers = [], []
    swap: dict[str, Any] = {
        "nativeInput": None,
        "nativeOutput": None,
        "tokenInputs": [],
        "tokenOutputs": [],
        "tokenFees": [],
        "nativeFees": [],
        "innerSwaps": [],
    }
    for side, token, ui in (("in", gave, gave_ui), ("out", got, got_ui)):
        src, dst = (owner, pool) if side == "in" else (pool, owner)
        if token.address == SOL:
            lamports = round(ui * LAMPORTS)
            native.append({"fromUserAccount": src, "toUserAccount": dst, "amount": lamports})
            swap["nativeInput" if side == "in" else "nativeOutput"] = {
                "account": owner,
                "amount": str(lamports),
            }
        else:
            transfers.append(
                {
                    "fromUserAccount": src,
                    "toUserAccount": dst,
                    "fromTokenAccount": b58encode(digest(src, token.address)),
                    "toTokenAccount": b58encode(digest(dst, token.address)),
                    "tokenAmount": ui,
                    "mint": token.address,
                    "tokenStandard": "Fungible",
                }
            )
            swap["tokenInputs" if side == "in" else "tokenOutputs"].append(
                {
                    "userAccount": owner,
                    "tokenAccount": b58encode(digest(owner, token.address)),
                    "mint": token.address,
                    "rawTokenAmount": {
                        "tokenAmount": str(round(ui * 10**token.decimals)),
                        "decimals": token.decimals,
                    },
                }
            )
    native_change = -5000 + sum(
        (-n["amount"] if n["fromUserAccount"] == owner else n["amount"]) for n in native
    )
    event: dict[str, Any] = {
        "description": f"{owner} swapped {gave_ui} {gave.symbol} for {got_ui} {got.symbol}",
        "type": "SWAP",
        "source": "PUMP_AMM"
        if got.kind == "pump" or gave.kind == "pump"
        else rng.choice(SOURCES[:3]),
        "fee": 5000,
        "feePayer": owner,
        "signature": signature,
        "slot": int((ts - 1_600_000_000) * 2.5),
        "timestamp": ts,
        "nativeTransfers": native,
        "tokenTransfers": transfers,
        "accountData": [
            {"account": owner, "nativeBalanceChange": native_change, "tokenBalanceChanges": []}
        ],
        "transactionError": None,
        "instructions": [],
        "events": {"swap": swap},
    }
    r = rng.random()
    if r < 0.3:
        event["events"] = {}
    elif r < 0.35:
        event["events"] = {"swap": {}}
    return event


@dataclass
class EmitResult:
    """What an emission did: events sent, POSTs made, and their status codes."""

    events: int = 0
    posts: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def emit_webhooks(
    url: str,
    settings: SimSettings,
    count: int,
    auth_token: str | None = None,
    *,
    batch_size: int = 10,
    duplicate_rate: float = 0.0,
    start_time: int | None = None,
    timeout: float = 10.0,
) -> EmitResult:
    """POST `count` enhanced swap events to `url` in arrays of `batch_size`."""
    import httpx

    market = Market(settings)
    events = enhanced_swaps(market, count, start_time)
    rng = rng_for(settings.seed, "duplicates", count)
    headers = {"Authorization": auth_token} if auth_token else {}
    result = EmitResult()
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for i in range(0, len(events), max(1, batch_size)):
            batch = events[i : i + batch_size]
            if duplicate_rate > 0:
                batch = batch + [e for e in batch if rng.random() < duplicate_rate]
            response = client.post(url, json=batch)
            result.posts += 1
            result.events += len(batch)
            result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1
    return result
