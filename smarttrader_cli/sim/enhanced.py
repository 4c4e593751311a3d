"""Helius enhanced transactions of the simulated wallets, built the way real ones are.

Each event is a plan (who trades what, through which venue, how SOL is held) carried
out move by move on a `Ledger`, so `accountData` is the true net effect of the
transaction, and the plan says what the wallet really traded (`Planned.legs`).

With `SimSettings.quirks` (the default) the mess of API_CONTRACTS.md §13-20 comes at
about these rates (measured over thousands of events in tests/unit/sim/test_sim_server.py):
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

import random
import time
from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.ledger import RENT, Ledger, transfer
from smarttrader_cli.sim.market import SOL, Market, SimToken, address, b58encode, digest, rng_for
from smarttrader_cli.sim.swap_plan import LAMPORTS, SwapPlan, SwapPlanner

FAILED_SHARE = 0.04
TRANSFER_SHARE = 0.06
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
        self._addresses: dict[tuple[object, ...], str] = {}  # accounts recur: hash once
        self.planner = SwapPlanner(market, self.addr)

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
            swap = self.planner.plan(rng, wallet, ts)
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

    def carry_out(
        self, rng: random.Random, ledger: Ledger, wallet: str, swap: SwapPlan, plan: Planned
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
        swap: SwapPlan,
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

    def plan_legs(self, plan: Planned, swap: SwapPlan) -> None:
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
        swap: SwapPlan,
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

    def describe(self, wallet: str, swap: SwapPlan, ledger: Ledger) -> str:
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
