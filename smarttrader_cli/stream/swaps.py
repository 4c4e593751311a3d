"""Swaps of a Helius enhanced transaction, read from the trading wallet's own balances.

Why balances: `type` mislabels swaps (TRANSFER, UNKNOWN), `events.swap` credits RAYDIUM
outputs to the pool, and tokenTransfers + nativeTransfers show the same SOL twice when
wSOL is wrapped or unwrapped (API_CONTRACTS items 13-21). `accountData[]` is what each
account's balance did, so legs come from there; `events.swap` and `tokenTransfers` only
cross-check them, and a disagreement becomes a warning, never a leg.

Reading and netting the balances, and the SOL rule, live in `balances`; this module picks
the trading wallet, cross-checks its net change against Helius's own labels and turns it
into legs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smarttrader_cli.stream.balances import (
    SOL_MINT,
    Balances,
    Net,
    address,
    as_float,
    as_int,
    dicts,
    net_for,
    read_balances,
    sides_of,
    transfer_token_accounts,
)

# Programs, sysvars and mints that show up in accountData but never trade.
_NOT_WALLETS = frozenset(
    {
        "11111111111111111111111111111111",
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
        "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb",
        "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
        "ComputeBudget111111111111111111111111111111",
        "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",
        "SysvarRent111111111111111111111111111111111",
        SOL_MINT,
    }
)


@dataclass(frozen=True)
class SwapLeg:
    """One side of a swap from the trading wallet's point of view."""

    wallet: str
    leg: int  # sells first, then buys, each sorted by mint
    direction: str  # "buy" = received, "sell" = gave up
    token_address: str
    amount: float  # UI units, > 0
    amount_raw: int  # raw units, > 0 (lamports for SOL)
    decimals: int
    parsed_from: str  # "balances"


@dataclass(frozen=True)
class SwapParse:
    """What one transaction traded, and why (outcome, fees, cross-check warnings)."""

    legs: list[SwapLeg]
    wallet: str | None
    outcome: str  # "swap" | "failed" | "not_a_swap" | "no_balance_data"
    sol_fees_lamports: int
    warnings: tuple[str, ...]


def swap_legs(event: dict[str, Any], *, sol_dust_lamports: int = 10_000_000) -> list[SwapLeg]:
    """The swap legs of one enhanced transaction (see `parse_swap`)."""
    return parse_swap(event, sol_dust_lamports=sol_dust_lamports).legs


def parse_swap(event: dict[str, Any], *, sol_dust_lamports: int = 10_000_000) -> SwapParse:
    """What the trading wallet of one enhanced transaction gave and got, from its balances."""
    if not isinstance(event, dict):
        return SwapParse([], None, "no_balance_data", 0, ("event is not a JSON object",))
    warnings: list[str] = []
    fee_payer = address(event.get("feePayer"))
    fee = as_int(event.get("fee"))
    if fee is None or fee < 0:
        if event.get("fee") is not None:
            warnings.append(f"fee {event.get('fee')!r:.40} is not a lamport count: taken as 0")
        fee = 0
    if event.get("transactionError"):
        return SwapParse([], fee_payer, "failed", fee if fee_payer else 0, tuple(warnings))
    balances = read_balances(event.get("accountData"))
    if balances is None:
        return SwapParse([], fee_payer, "no_balance_data", 0, tuple(warnings))

    transfer_accounts = transfer_token_accounts(event.get("tokenTransfers"))
    dust = sol_dust_lamports if isinstance(sol_dust_lamports, int) else 10_000_000

    def net_of(account: str) -> Net:
        paid = fee if account == fee_payer else 0
        return net_for(account, balances, transfer_accounts.get(account, set()), paid)

    wallet, net, pick_notes = _pick_wallet(event, balances, fee_payer, net_of, dust)
    warnings += pick_notes
    if wallet is None or net is None:
        return SwapParse([], None, "not_a_swap", 0, tuple(warnings))
    warnings += net.notes
    unreadable = balances.unreadable_owners.count(wallet)
    if unreadable:
        warnings.append(f"{unreadable} of the wallet's tokenBalanceChanges entries are unreadable")
    sides, sol_not_leg = sides_of(net.raw, dust)
    sol_fees = (fee if wallet == fee_payer else 0) - sol_not_leg
    warnings += _check_events_swap(event.get("events"), wallet, sides)
    warnings += _check_token_transfers(event.get("tokenTransfers"), wallet, net)
    directions = {d for d, _, _ in sides}
    if directions != {"buy", "sell"}:
        return SwapParse([], wallet, "not_a_swap", sol_fees, tuple(warnings))
    legs = [
        SwapLeg(
            wallet=wallet,
            leg=i,
            direction=direction,
            token_address=mint,
            amount=abs(raw) / 10 ** net.decimals[mint],
            amount_raw=abs(raw),
            decimals=net.decimals[mint],
            parsed_from="balances",
        )
        for i, (direction, mint, raw) in enumerate(sides)
    ]
    return SwapParse(legs, wallet, "swap", sol_fees, tuple(warnings))


# --- choosing the wallet ------------------------------------------------------------


def _program_ids(instructions: Any) -> set[str]:
    found: set[str] = set()
    for ins in dicts(instructions):
        for item in [ins, *dicts(ins.get("innerInstructions"))]:
            program = address(item.get("programId"))
            if program:
                found.add(program)
    return found


def _pick_wallet(
    event: dict[str, Any],
    balances: Balances,
    fee_payer: str | None,
    net_of: Callable[[str], Net],
    dust: int,
) -> tuple[str | None, Net | None, list[str]]:
    """The fee payer, unless it moved nothing and exactly one other user account swapped."""
    payer_net: Net | None = None
    if fee_payer:
        payer_net = net_of(fee_payer)
        if sides_of(payer_net.raw, dust)[0]:
            return fee_payer, payer_net, []
    not_wallets = _NOT_WALLETS | _program_ids(event.get("instructions")) | {fee_payer or ""}
    swapped: list[tuple[str, Net]] = []
    for owner in sorted({c.owner for c in balances.changes} - not_wallets):
        net = net_of(owner)
        if {d for d, _, _ in sides_of(net.raw, dust)[0]} == {"buy", "sell"}:
            swapped.append((owner, net))
    who = f"fee payer {fee_payer}" if fee_payer else "no fee payer"
    if len(swapped) == 1:
        owner, net = swapped[0]
        return owner, net, [f"{who} moved nothing; the wallet is {owner}, the only other swapper"]
    if len(swapped) > 1:
        names = ", ".join(o for o, _ in swapped)
        note = f"{who} moved nothing and several accounts swapped ({names}): no wallet chosen"
        return fee_payer, payer_net, [note]
    return fee_payer, payer_net, []


# --- cross-checks -------------------------------------------------------------------


def _check_events_swap(events: Any, wallet: str, sides: list[tuple[str, str, int]]) -> list[str]:
    """Where events.swap disagrees with the balances, or names another account."""
    swap = events.get("swap") if isinstance(events, dict) else None
    if not isinstance(swap, dict) or not swap:
        return []
    notes: list[str] = []
    claimed: dict[tuple[str, str], int] = {}
    for key, direction in (("nativeInput", "sell"), ("nativeOutput", "buy")):
        native = swap.get(key)
        if not isinstance(native, dict):
            continue
        account, amount = address(native.get("account")), as_int(native.get("amount"))
        if account == wallet and amount:
            claimed[(direction, SOL_MINT)] = claimed.get((direction, SOL_MINT), 0) + abs(amount)
        elif account and amount:
            notes.append(f"events.swap.{key} names {account}, not the wallet: ignored")
    for key, direction in (("tokenInputs", "sell"), ("tokenOutputs", "buy")):
        for i, item in enumerate(dicts(swap.get(key))):
            account, mint = address(item.get("userAccount")), address(item.get("mint"))
            raw_amount = item.get("rawTokenAmount")
            amount = as_int(raw_amount.get("tokenAmount")) if isinstance(raw_amount, dict) else None
            if not (account and mint and amount):
                continue
            if account != wallet:
                notes.append(f"events.swap.{key}[{i}] names {account}, not the wallet: ignored")
                continue
            claimed[(direction, mint)] = claimed.get((direction, mint), 0) + abs(amount)
    if not claimed:
        return notes
    found = {(direction, mint): abs(raw) for direction, mint, raw in sides}
    for direction, mint in sorted(set(claimed) | set(found)):
        said, got = claimed.get((direction, mint), 0), found.get((direction, mint), 0)
        if said != got:
            notes.append(
                f"events.swap has the wallet {direction} {said} raw of {mint}; balances say {got}"
            )
    return notes


def _check_token_transfers(token_transfers: Any, wallet: str, net: Net) -> list[str]:
    """Where the wallet's net tokenTransfers per mint (SOL aside) disagree with its balances."""
    moved: dict[str, float] = {}
    mine = net.token_accounts | {wallet}
    for t in dicts(token_transfers):
        mint, amount = address(t.get("mint")), as_float(t.get("tokenAmount"))
        if mint is None or mint == SOL_MINT or amount is None:
            continue
        sent = (
            address(t.get("fromUserAccount")) in mine or address(t.get("fromTokenAccount")) in mine
        )
        received = (
            address(t.get("toUserAccount")) in mine or address(t.get("toTokenAccount")) in mine
        )
        if sent != received:
            moved[mint] = moved.get(mint, 0.0) + (amount if received else -amount)
    if not any(dicts(token_transfers)):
        return []
    notes = []
    mints = {m for m in net.raw if m != SOL_MINT} | set(moved)
    for mint in sorted(mints):
        decimals = net.decimals.get(mint)
        balance = net.raw.get(mint, 0) / 10**decimals if decimals is not None else 0.0
        transfers = moved.get(mint, 0.0)
        # tokenAmount is a float: allow half a raw unit, or float rounding on big amounts.
        unit = 10.0**-decimals if decimals is not None else 0.0
        if abs(transfers - balance) > max(unit / 2, abs(balance) * 1e-12):
            notes.append(
                f"tokenTransfers net {transfers:g} of {mint} for the wallet; balances say {balance:g}"
            )
    return notes
