"""What a simulated swap will be: venue, route, how SOL is held, and the extras around it.

The weights below are the rates the module docstring of `sim/enhanced.py` states; the
plan is drawn from one `random.Random`, so the same seed gives the same swaps.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.market import SOL, USDC, USDT, Market, SimToken, SimWallet

LAMPORTS = 10**9
VENUES = {"RAYDIUM": 20, "JUPITER": 22, "ORCA": 12, "PUMP_AMM": 12, "METEORA": 10, "UNKNOWN": 8}
# Route kinds per venue, weighted: "sol" = SOL <-> token, "stable" = USDC/USDT <->
# token, "sol_stable" = SOL <-> USDC/USDT, "pair" = token <-> token, "hop" = via a middle token.
ROUTES = {
    "RAYDIUM": {"sol": 70, "stable": 15, "sol_stable": 10, "pair": 5},
    "JUPITER": {"sol": 45, "stable": 15, "pair": 15, "hop": 25},
    "ORCA": {"sol": 55, "stable": 25, "sol_stable": 10, "pair": 10},
}


@dataclass
class SwapPlan:
    """One swap to carry out: the route, how SOL is held, and the extras around it."""

    venue: str
    hops: list[tuple[SimToken, int, SimToken, int, str]]  # in, raw in, out, raw out, pool
    sol_mode: str  # temp, own (the wallet's wSOL account), native (lamports)
    new_account: bool = False
    tips: list[int] = field(default_factory=list)
    out_fee: int = 0
    hide_pool_leg: bool = False


class SwapPlanner:
    """Draws the swaps of one market; `addr` names the accounts (pools) it routes through."""

    def __init__(self, market: Market, addr: Callable[..., str]) -> None:
        self.m = market
        self.quirks = market.settings.quirks
        self.pumps = [t for t in market.traded_tokens if t.kind == "pump"]
        self.addr = addr

    def plan(self, rng: random.Random, wallet: SimWallet, ts: int) -> SwapPlan:
        m = self.m
        if not self.quirks:
            venue, kind = "JUPITER", "sol" if rng.random() < 0.7 else "stable"
        else:
            venue = rng.choices(list(VENUES), list(VENUES.values()))[0]
            if venue == "PUMP_AMM" and not self.pumps:
                venue = "RAYDIUM"
            if venue in ROUTES:
                weights = ROUTES[venue]
                kind = rng.choices(list(weights), list(weights.values()))[0]
            else:
                kind = "sol"
        token = m.tokens[rng.choice(wallet.tokens)]
        if venue == "PUMP_AMM":
            pumps = [t for t in self.pumps if t.index in wallet.tokens] or self.pumps
            token = rng.choice(pumps)
        sol, stable = m.tokens[0], m.by_address[USDC if rng.random() < 0.75 else USDT]
        usd = rng.uniform(100, 5000)
        buy = rng.random() < 0.55
        if venue == "METEORA":
            buy = True  # DBC and DAMM v2 buys come labelled TRANSFER
        elif venue == "UNKNOWN":
            buy = rng.random() < 0.5  # a Jupiter-routed buy, or a Meteora sell
        if kind == "sol":
            gave, got = (sol, token) if buy else (token, sol)
        elif kind == "stable":
            gave, got = (stable, token) if buy else (token, stable)
        elif kind == "sol_stable":
            gave, got = (sol, stable) if buy else (stable, sol)
        else:
            others = [t for t in m.traded_tokens if t.index != token.index]
            gave, got = token, rng.choice(others)
            if kind == "hop" and rng.random() < 0.6:
                gave, got = (sol if rng.random() < 0.67 else stable), token
        route = [gave, got]
        if kind == "hop":
            middle = [t for t in (stable, *m.traded_tokens) if t not in (gave, got)]
            mid = stable if stable in middle and rng.random() < 0.6 else rng.choice(middle)
            route = [gave, mid, got]
        hops = []
        for a, b in itertools.pairwise(route):
            pool = self.addr("hpool", *sorted((a.index, b.index)))
            hops.append((a, self.raw(a, usd, ts), b, self.raw(b, usd, ts), pool))
        if not self.quirks:
            return SwapPlan(venue, hops, "native")
        meteora = venue == "METEORA" or (venue == "UNKNOWN" and not buy)
        if venue == "PUMP_AMM" or meteora:
            sol_mode = "temp"
        elif venue in ("JUPITER", "UNKNOWN"):
            sol_mode = "temp" if rng.random() < 0.7 else "own"
        else:
            sol_mode = "own" if rng.random() < 0.6 else "temp"
        swap = SwapPlan(venue, hops, sol_mode)
        swap.new_account = got.address != SOL and rng.random() < (
            0.7 if venue == "PUMP_AMM" or meteora else 0.15
        )
        swap.tips = self.tips(rng, hops, SOL in (gave.address, got.address))
        if venue in ("JUPITER", "RAYDIUM") and got.address != SOL and rng.random() < 0.1:
            swap.out_fee = max(1, hops[-1][3] * rng.randint(5, 10) // 1000)
        swap.hide_pool_leg = sol_mode == "own" and gave.address == SOL and rng.random() < 0.1
        return swap

    def raw(self, token: SimToken, usd: float, ts: int) -> int:
        return max(1, round(usd / self.m.price(token.index, ts) * 10**token.decimals))

    def tips(self, rng: random.Random, hops: list[Any], with_sol: bool) -> list[int]:
        """Tips and fees to third parties; folded into the SOL leg when SOL is traded."""
        r = rng.random()
        if not with_sol:
            return [rng.choice((4240, rng.randint(1000, 50_000)))] if r < 0.5 else []
        sol_raw = hops[0][1] if hops[0][0].address == SOL else hops[-1][3]
        if r < 0.35:
            return []
        if r < 0.7:
            return [rng.choice((4240, rng.randint(1000, 10_000)))]
        if r < 0.9 or sol_raw < LAMPORTS:
            return [rng.randint(1_000_000, 20_000_000)]
        big = rng.choice((200_000_000, 113_000_000, rng.randint(100_000_000, 200_000_000)))
        return [min(big, sol_raw // 4), rng.randint(1000, 10_000)]
