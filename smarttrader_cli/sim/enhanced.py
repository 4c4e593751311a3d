"""Helius enhanced transactions of the simulated wallets, built the way real ones are.

Each event is a plan (who trades what, through which venue, how SOL is held) carried
out move by move on a `Ledger`, so `accountData` is the true net effect of the
transaction, and the plan says what the wallet really traded (`Planned.legs`).

With `SimSettings.quirks` (the default) the mess of API_CONTRACTS.md §13-20 comes at
about these rates (measured over thousands of events in tests/unit/test_sim_server.py):
- 4 % failed (`transactionError` set, the fee is the only change), 6 % plain SOL
  transfers, the rest swaps;
- swaps by venue: SWAP/RAYDIUM 20 % (`events.swap` credits outputs to the pool),
  SWAP/JUPITER 22 % (credits the wallet; multi-hop routes whose middle token nets to
  zero), SWAP/ORCA 12 %, SWAP/PUMP_AMM 12 %, TRANSFER/SYSTEM_PROGRAM 10 % (Meteora DBC
  and DAMM v2 buys), UNKNOWN/UNKNOWN 8 % (Jupiter-routed buys, Meteora sells);
  with `events.swap` on RAYDIUM and JUPITER (`{"swap": {}}` on a tenth of them),
  otherwise `events` is `{}` or `[]`;
- SOL through a temporary wSOL account (wrap: wallet -> temp amount + 2,039,280 rent,
  temp -> wallet rent; unwrap the other way round) always on PUMP_AMM and Meteora, often
  elsewhere; else through the wallet's own wSOL account, or (tidy only) as lamports;
- tips to third parties on most swaps (4,240 lamports ... 0.2 SOL with SOL, dust
  without), rent for a new token account on some buys, a platform fee paid out of the
  bought token, a minted fee with "" as source, `tokenFees` with "" accounts, and
  now and then a wSOL spend whose pool-side transfer Helius leaves out.
Without quirks every event is a SWAP/JUPITER with a full `events.swap` and SOL moved
as lamports, no tips, no failures.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.ledger import RENT, Ledger, transfer
from smarttrader_cli.sim.market import (
    SOL,
    USDC,
    USDT,
    Market,
    SimToken,
    SimWallet,
    address,
    b58encode,
    digest,
    rng_for,
)

LAMPORTS = 10**9
FAILED_SHARE = 0.04
TRANSFER_SHARE = 0.06
VENUES = {"RAYDIUM": 20, "JUPITER": 22, "ORCA": 12, "PUMP_AMM": 12, "METEORA": 10, "UNKNOWN": 8}
# Route kinds per venue, weighted: "sol" = SOL <-> token, "stable" = USDC/USDT <->
# token, "sol_stable" = SOL <-> USDC/USDT, "pair" = token <-> token, "hop" = via a middle token.
ROUTES = {
    "RAYDIUM": {"sol": 70, "stable": 15, "sol_stable": 10, "pair": 5},
    "JUPITER": {"sol": 45, "stable": 15, "pair": 15, "hop": 25},
    "ORCA": {"sol": 55, "stable": 25, "sol_stable": 10, "pair": 10},
}
EMPTY_SWAP_SHARE = 0.1  # of RAYDIUM and JUPITER events: `events: {"swap": {}}`
SYSTEM = "11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
INSTRUCTION = {
    "accounts": [],
    "data": "3aamCypCzqDH",
    "programId": COMPUTE_BUDGET,
    "innerInstructions": [],
}


@dataclass
class Planned:
    """What one event really did: the wallet's trade legs (direction, token, raw amount)."""

    signature: str
    wallet: str
    time: int
    outcome: str  # swap, failed, not_a_swap
    legs: list[tuple[str, SimToken, int]] = field(default_factory=list)


@dataclass
class _Swap:
    """One swap to carry out: the route, how SOL is held, and the extras around it."""

    venue: str
    hops: list[tuple[SimToken, int, SimToken, int, str]]  # in, raw in, out, raw out, pool
    sol_mode: str  # temp, own (the wallet's wSOL account), native (lamports)
    new_account: bool = False
    tips: list[int] = field(default_factory=list)
    out_fee: int = 0
    hide_pool_leg: bool = False


def build(
    market: Market, count: int, start_time: int | None = None, spacing_seconds: int = 2
) -> list[tuple[dict[str, Any], Planned]]:
    """`count` enhanced transactions with their plans, deterministic for (seed, start, i)."""
    start = int(time.time()) - count * spacing_seconds if start_time is None else start_time
    builder = _Builder(market)
    return [builder.event(start, i, start + i * spacing_seconds) for i in range(count)]


class _Builder:
    """Plans and carries out the events of one market."""

    def __init__(self, market: Market) -> None:
        self.m = market
        self.quirks = market.settings.quirks
        self.smart = [w for w in market.wallets if w.kind == "smart"]
        self.rest = [w for w in market.wallets if w.kind != "smart"] or self.smart
        self.pumps = [t for t in market.traded_tokens if t.kind == "pump"]
        self._addresses: dict[tuple[object, ...], str] = {}  # accounts recur: hash once

    def addr(self, *parts: object) -> str:
        found = self._addresses.get(parts)
        if found is None:
            found = self._addresses[parts] = address(self.m.seed, *parts)
        return found

    def ata(self, owner: str, mint: str) -> str:
        return self.addr("ata", owner, mint)

    def event(self, start: int, i: int, ts: int) -> tuple[dict[str, Any], Planned]:
        rng = rng_for(self.m.seed, "webhook", start, i)
        signature = b58encode(digest(self.m.seed, "wh-sig", start, i, size=64))
        wallet = rng.choice(self.smart if self.smart and rng.random() < 0.6 else self.rest)
        plan = Planned(signature, wallet.address, ts, "swap")
        fee = 5000 + rng.choice((0, 0, rng.randint(1, 30_000), rng.randint(30_000, 300_000)))
        ledger = Ledger()
        ledger.pay_fee(wallet.address, fee)
        r = rng.random() if self.quirks else 1.0
        quiet: list[str] = []
        error: Any = None
        events: Any
        if r < FAILED_SHARE:
            plan.outcome = "failed"
            venue, label, events, description = rng.choice(("JUPITER", "RAYDIUM")), "SWAP", {}, ""
            error = {"InstructionError": [rng.randint(1, 4), {"Custom": 6001}]}
        elif r < FAILED_SHARE + TRANSFER_SHARE:
            plan.outcome = "not_a_swap"
            venue, label, events = "SYSTEM_PROGRAM", "TRANSFER", rng.choice(([], {}))
            lamports = rng.randint(LAMPORTS // 50, 5 * LAMPORTS)
            friend = self.addr("friend", wallet.address, rng.randint(0, 3))
            ledger.send_sol(wallet.address, friend, lamports)
            description = f"{wallet.address} transferred {lamports / LAMPORTS} SOL to {friend}."
            quiet = [SYSTEM]
        else:
            swap = self.plan_swap(rng, wallet, ts)
            events = self.carry_out(rng, ledger, wallet.address, swap, plan)
            venue, label = swap.venue, "SWAP"
            description = self.describe(wallet.address, swap, ledger)
            if venue == "METEORA":
                venue, label = "SYSTEM_PROGRAM", "TRANSFER"
            elif venue == "UNKNOWN":
                label = "UNKNOWN"
            quiet = [COMPUTE_BUDGET, TOKEN_PROGRAM, SYSTEM, *(h[0].address for h in swap.hops)]
            quiet.append(swap.hops[-1][2].address)
        event = {
            "description": description,
            "type": label,
            "source": venue,
            "fee": fee,
            "feePayer": wallet.address,
            "signature": signature,
            "slot": int((ts - 1_600_000_000) * 2.5),
            "timestamp": ts,
            "nativeTransfers": ledger.native,
            "tokenTransfers": ledger.tokens,
            "accountData": ledger.account_data(wallet.address, quiet),
            "transactionError": error,
            "instructions": [dict(INSTRUCTION)],
            "events": events,
        }
        return event, plan

    # --- planning -----------------------------------------------------------

    def plan_swap(self, rng: random.Random, wallet: SimWallet, ts: int) -> _Swap:
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
            return _Swap(venue, hops, "native")
        meteora = venue == "METEORA" or (venue == "UNKNOWN" and not buy)
        if venue == "PUMP_AMM" or meteora:
            sol_mode = "temp"
        elif venue in ("JUPITER", "UNKNOWN"):
            sol_mode = "temp" if rng.random() < 0.7 else "own"
        else:
            sol_mode = "own" if rng.random() < 0.6 else "temp"
        swap = _Swap(venue, hops, sol_mode)
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

    # --- carrying out -------------------------------------------------------

    def carry_out(
        self, rng: random.Random, ledger: Ledger, wallet: str, swap: _Swap, plan: Planned
    ) -> Any:
        """Do the swap's moves on the ledger; returns the event's `events` field."""
        first, last = swap.hops[0], swap.hops[-1]
        gave, gave_raw, got, got_raw = first[0], first[1], last[2], last[3]
        temp = self.addr("temp-wsol", plan.signature)
        held = (wallet, self.ata(wallet, gave.address))
        if gave.address == SOL and swap.sol_mode == "temp":
            ledger.send_sol(wallet, temp, gave_raw)
            ledger.send_sol(wallet, temp, RENT)
            ledger.sync_native(temp, wallet, gave, gave_raw)
            held = (wallet, temp)
        elif gave.address == SOL and swap.hide_pool_leg:
            aux = (wallet, self.addr("wsol-aux", wallet))
            ledger.move(gave, gave_raw, held, aux)
            held = aux
        inner = []
        for k, (a, a_raw, b, b_raw, pool) in enumerate(swap.hops):
            vault_in, vault_out = (
                (pool, self.addr("vault", pool, a.address)),
                (
                    pool,
                    self.addr("vault", pool, b.address),
                ),
            )
            if a.address == SOL and swap.sol_mode == "native":
                ledger.send_sol(wallet, pool, a_raw)
            else:
                listed = not (k == 0 and swap.hide_pool_leg)
                ledger.move(a, a_raw, held, vault_in, listed)
            if b.address == SOL:
                if swap.sol_mode == "native":
                    ledger.send_sol(pool, wallet, b_raw)
                    inner.append(self.inner_swap(a, a_raw, b, b_raw, held, (pool, pool), swap))
                    continue
                if swap.sol_mode == "temp":
                    ledger.send_sol(wallet, temp, RENT)
                    dst = (wallet, temp)
                else:
                    dst = (wallet, self.ata(wallet, SOL))
            else:
                dst = (wallet, self.ata(wallet, b.address))
                if k == len(swap.hops) - 1 and swap.new_account:
                    ledger.send_sol(wallet, dst[1], RENT)
            ledger.move(b, b_raw, vault_out, dst)
            inner.append(self.inner_swap(a, a_raw, b, b_raw, held, vault_out, swap))
            held = dst
        if SOL in (gave.address, got.address) and swap.sol_mode == "temp":
            ledger.close(temp, wallet)
        if swap.out_fee:
            collector = self.addr("platform", swap.venue)
            ledger.move(got, swap.out_fee, held, (collector, self.ata(collector, got.address)))
        for n, tip in enumerate(swap.tips):
            ledger.send_sol(wallet, self.addr("tip", n, rng.randint(0, 7)), tip)
        token_fees = []
        if self.quirks and rng.random() < 0.08:
            collector = self.addr("referral", got.address)
            ledger.mint_to(
                got, max(1, got_raw // 2000), (collector, self.ata(collector, got.address))
            )
        if self.quirks and rng.random() < 0.3:
            fee_raw = {"tokenAmount": str(max(1, got_raw // 1000)), "decimals": got.decimals}
            token_fees.append(
                {
                    "userAccount": "",
                    "tokenAccount": self.addr("feevault", got.address),
                    "mint": got.address,
                    "rawTokenAmount": fee_raw,
                }
            )
        self.plan_legs(plan, swap)
        return self.events_field(rng, wallet, swap, token_fees, inner)

    def inner_swap(
        self,
        a: SimToken,
        a_raw: int,
        b: SimToken,
        b_raw: int,
        src: tuple[str, str],
        vault_out: tuple[str, str],
        swap: _Swap,
    ) -> dict[str, Any]:
        pool = vault_out[0]
        dst = (src[0], self.ata(src[0], b.address))
        return {
            "tokenInputs": [transfer(a, a_raw, src, (pool, self.addr("vault", pool, a.address)))],
            "tokenOutputs": [transfer(b, b_raw, vault_out, dst)],
            "tokenFees": [],
            "nativeFees": [],
            "programInfo": {
                "source": "RAYDIUM" if swap.venue != "ORCA" else "ORCA",
                "account": self.addr("program", pool),
                "programName": "RAYDIUM_CLMM",
                "instructionName": "SwapEvent",
            },
        }

    def plan_legs(self, plan: Planned, swap: _Swap) -> None:
        """The wallet's own net trade: tips fold into a SOL leg, else are no leg."""
        gave, gave_raw = swap.hops[0][0], swap.hops[0][1]
        got, got_raw = swap.hops[-1][2], swap.hops[-1][3] - swap.out_fee
        tips = sum(swap.tips)
        if gave.address == SOL:
            gave_raw += tips
        elif got.address == SOL:
            got_raw -= tips
        plan.legs = [("sell", gave, gave_raw), ("buy", got, got_raw)]

    def events_field(
        self,
        rng: random.Random,
        wallet: str,
        swap: _Swap,
        token_fees: list[dict[str, Any]],
        inner: list[dict[str, Any]],
    ) -> Any:
        venue = swap.venue
        if venue not in ("RAYDIUM", "JUPITER"):
            if venue in ("PUMP_AMM", "ORCA"):
                return {} if venue == "PUMP_AMM" or rng.random() < 0.8 else []
            return [] if rng.random() < (0.7 if venue == "METEORA" else 0.5) else {}
        if self.quirks and rng.random() < EMPTY_SWAP_SHARE:
            return {"swap": {}}
        first, last = swap.hops[0], swap.hops[-1]
        gave, gave_raw, got, got_raw = first[0], first[1], last[2], last[3]
        to_pool = venue == "RAYDIUM" and self.quirks  # Helius credits RAYDIUM outputs to the pool
        out_owner = last[4] if to_pool else wallet
        out_account = self.addr("vault", last[4], got.address) if to_pool else None
        body: dict[str, Any] = {
            "nativeInput": None,
            "nativeOutput": None,
            "tokenInputs": [],
            "tokenOutputs": [],
            "nativeFees": [],
            "tokenFees": token_fees,
            "innerSwaps": inner if venue == "JUPITER" else [],
        }
        if gave.address == SOL:
            body["nativeInput"] = {"account": wallet, "amount": str(gave_raw)}
        else:
            body["tokenInputs"].append(
                _raw_entry(wallet, self.ata(wallet, gave.address), gave, gave_raw)
            )
        if got.address == SOL:
            body["nativeOutput"] = {"account": out_owner, "amount": str(got_raw)}
        else:
            account = out_account or self.ata(wallet, got.address)
            body["tokenOutputs"].append(_raw_entry(out_owner, account, got, got_raw))
        return {"swap": body}

    def describe(self, wallet: str, swap: _Swap, ledger: Ledger) -> str:
        """Helius's one-line summary: full on parsed swaps, a transfer line or "" elsewhere."""
        gave, got = swap.hops[0][0], swap.hops[-1][2]
        if swap.venue == "METEORA":
            first = ledger.native[0] if ledger.native else None
            if first:
                return (
                    f"{wallet} transferred {first['amount'] / LAMPORTS} SOL "
                    f"to {first['toUserAccount']}."
                )
            return ""
        if swap.venue not in ("RAYDIUM", "JUPITER"):
            return ""
        gave_ui = swap.hops[0][1] / 10**gave.decimals
        got_ui = swap.hops[-1][3] / 10**got.decimals
        return f"{wallet} swapped {gave_ui} {gave.symbol} for {got_ui} {got.symbol}"


def _raw_entry(owner: str, account: str, token: SimToken, raw: int) -> dict[str, Any]:
    return {
        "userAccount": owner,
        "tokenAccount": account,
        "mint": token.address,
        "rawTokenAmount": {"tokenAmount": str(raw), "decimals": token.decimals},
    }
