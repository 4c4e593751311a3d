"""Helius enhanced-transaction webhooks for the simulated wallets, and a client to POST them.

`enhanced_swaps(market, count, start_time)` builds the events (`sim.enhanced`: swaps
mostly, by the planted smart wallets more than others, with failed transactions and
plain transfers among them, in the real shapes of API_CONTRACTS.md §13-20 unless the
market's settings turn quirks off). Signatures and contents depend only on (seed,
start_time, i), so `sim.truth.helius_truth(market, count, start_time)` says what each
event really traded.

`emit_webhooks(url, settings, count, auth_token, start_time=...)` POSTs them as JSON
arrays with the `Authorization` header set verbatim to `auth_token`, as Helius does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.enhanced import build
from smarttrader_cli.sim.market import Market, SimSettings, rng_for


def enhanced_swaps(
    market: Market, count: int, start_time: int | None = None, spacing_seconds: int = 2
) -> list[dict[str, Any]]:
    """`count` enhanced transactions, deterministic for (seed, start_time); default start: now."""
    return [event for event, _ in build(market, count, start_time, spacing_seconds)]


@dataclass
class EmitResult:
    """What an emission did: events sent, POSTs made, and their status codes."""

    events: int = 0
    posts: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    start_time: int | None = None  # of the first event: what recomputes their truth


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
    """POST `count` enhanced transactions to `url` in arrays of `batch_size`."""
    import httpx

    market = Market(settings)
    events = enhanced_swaps(market, count, start_time)
    rng = rng_for(settings.seed, "duplicates", count)
    headers = {"Authorization": auth_token} if auth_token else {}
    result = EmitResult(start_time=int(events[0]["timestamp"]) if events else start_time)
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
