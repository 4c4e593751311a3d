"""Swaps of a Helius enhanced transaction, read from the trading wallet's own balances.

Why balances: `type` mislabels swaps (TRANSFER, UNKNOWN), `events.swap` credits RAYDIUM
outputs to the pool, and tokenTransfers + nativeTransfers show the same SOL twice when
wSOL is wrapped or unwrapped (API_CONTRACTS items 13-21). `accountData[]` is what each
account's balance did, so legs come from there; `events.swap` and `tokenTransfers` only
cross-check them, and a disagreement becomes a warning, never a leg.

The SOL rule. Native SOL and wSOL are one asset, and rent parked in the wallet's own token
accounts is still the wallet's, so the SOL a trade moved is the change in every lamport the
wallet controls, with the network fee put back:

    sol = wallet nativeBalanceChange + fee (when it is feePayer)
          + the nativeBalanceChange of each of the wallet's token accounts

A wSOL account's lamports are its rent plus its wSOL balance, so this counts a wSOL move
once (it equals "wSOL raw change + the account's other lamports") and rent not at all. A
token account whose lamport change is missing counts its wSOL raw change instead. The
wallet's token accounts are those whose tokenBalanceChanges name it as userAccount, plus
those its tokenTransfers name as its own (a closed wSOL account often has no balance entry).
Checked by hand on the real captures (tests/fixtures/helius/README.md):

- MASHA buy labelled TRANSFER: -5,400,010,807 + 10,807 fee = -5.4 SOL. The temporary wSOL
  account was opened and closed inside the tx, so it is absent from accountData and its
  2,039,280 rent round trip (seen in nativeTransfers) never counts.
- RAYDIUM: -18,001 + 18,001 fee - 14,517,022,283 on the wallet's wSOL account
  = -14.517022283 SOL.
- Meteora DBC buy: -202,119,280 + 80,000 fee + 2,039,280 rent into the new token account
  = -0.2 SOL.

SOL the wallet paid to third parties (tips, protocol fees) stays in `sol`: it is part of the
cost or proceeds when SOL is a swapped asset, i.e. when the other assets all moved one way
and SOL the other. Otherwise a |sol| below `sol_dust_lamports` is a fee, not a leg.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SOL_MINT = "So11111111111111111111111111111111111111112"
SOL_DECIMALS = 9

_U64 = 2**64  # lamports and token amounts are u64: anything larger is junk
_MAX_DECIMALS = 255  # SPL decimals are a u8
_INT_TEXT = re.compile(r"-?[0-9]{1,40}")
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


@dataclass(frozen=True)
class _TokenChange:
    owner: str
    token_account: str
    mint: str
    raw: int
    decimals: int


@dataclass
class _Balances:
    natives: dict[str, int]  # account -> nativeBalanceChange (first readable one)
    changes: list[_TokenChange]
    unreadable_owners: list[str]  # userAccount of each entry whose amount could not be read


@dataclass
class _Net:
    raw: dict[str, int]  # mint -> signed raw change; SOL_MINT holds native + wSOL
    decimals: dict[str, int]
    token_accounts: set[str]
    notes: list[str] = field(default_factory=list)


def swap_legs(event: dict[str, Any], *, sol_dust_lamports: int = 10_000_000) -> list[SwapLeg]:
    """The swap legs of one enhanced transaction (see `parse_swap`)."""
    return parse_swap(event, sol_dust_lamports=sol_dust_lamports).legs


def parse_swap(event: dict[str, Any], *, sol_dust_lamports: int = 10_000_000) -> SwapParse:
    """What the trading wallet of one enhanced transaction gave and got, from its balances."""
    if not isinstance(event, dict):
        return SwapParse([], None, "no_balance_data", 0, ("event is not a JSON object",))
    warnings: list[str] = []
    fee_payer = _address(event.get("feePayer"))
    fee = _as_int(event.get("fee"))
    if fee is None or fee < 0:
        if event.get("fee") is not None:
            warnings.append(f"fee {event.get('fee')!r:.40} is not a lamport count: taken as 0")
        fee = 0
    if event.get("transactionError"):
        return SwapParse([], fee_payer, "failed", fee if fee_payer else 0, tuple(warnings))
    balances = _read_balances(event.get("accountData"))
    if balances is None:
        return SwapParse([], fee_payer, "no_balance_data", 0, tuple(warnings))

    transfer_accounts = _transfer_token_accounts(event.get("tokenTransfers"))
    dust = sol_dust_lamports if isinstance(sol_dust_lamports, int) else 10_000_000

    def net_of(account: str) -> _Net:
        paid = fee if account == fee_payer else 0
        return _net_for(account, balances, transfer_accounts.get(account, set()), paid)

    wallet, net, pick_notes = _pick_wallet(event, balances, fee_payer, net_of, dust)
    warnings += pick_notes
    if wallet is None or net is None:
        return SwapParse([], None, "not_a_swap", 0, tuple(warnings))
    warnings += net.notes
    unreadable = balances.unreadable_owners.count(wallet)
    if unreadable:
        warnings.append(f"{unreadable} of the wallet's tokenBalanceChanges entries are unreadable")
    sides, sol_not_leg = _sides(net.raw, dust)
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


# --- reading ------------------------------------------------------------------------


def _as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or an integer string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if -_U64 < number < _U64 else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if -_U64 < value < _U64 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _address(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _read_balances(account_data: Any) -> _Balances | None:
    """accountData as native changes and token changes; None when nothing is readable."""
    natives: dict[str, int] = {}
    changes: list[_TokenChange] = []
    unreadable: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item in _dicts(account_data):
        account = _address(item.get("account"))
        native = _as_int(item.get("nativeBalanceChange"))
        if account and native is not None:
            natives.setdefault(account, native)
        for entry in _dicts(item.get("tokenBalanceChanges")):
            owner = _address(entry.get("userAccount"))
            mint = _address(entry.get("mint"))
            token_account = _address(entry.get("tokenAccount")) or account
            raw_amount = entry.get("rawTokenAmount")
            raw_amount = raw_amount if isinstance(raw_amount, dict) else {}
            raw = _as_int(raw_amount.get("tokenAmount"))
            decimals = _as_int(raw_amount.get("decimals"))
            if mint == SOL_MINT and decimals is None:
                decimals = SOL_DECIMALS
            if owner is None:
                continue  # "" or no owner: whoever it is, it is not a wallet we can name
            if (
                mint is None
                or raw is None
                or decimals is None
                or not 0 <= decimals <= _MAX_DECIMALS
            ):
                unreadable.append(owner)
                continue
            if token_account:
                if (token_account, mint) in seen:
                    continue  # the same balance listed twice
                seen.add((token_account, mint))
            changes.append(_TokenChange(owner, token_account or "", mint, raw, decimals))
    if not natives and not changes:
        return None
    return _Balances(natives, changes, unreadable)


def _transfer_token_accounts(token_transfers: Any) -> dict[str, set[str]]:
    """user account -> the token accounts tokenTransfers say it owns."""
    owned: dict[str, set[str]] = {}
    for t in _dicts(token_transfers):
        for user_key, account_key in (
            ("fromUserAccount", "fromTokenAccount"),
            ("toUserAccount", "toTokenAccount"),
        ):
            user, account = _address(t.get(user_key)), _address(t.get(account_key))
            if user and account and account != user:
                owned.setdefault(user, set()).add(account)
    return owned


# --- netting ------------------------------------------------------------------------


def _net_for(account: str, balances: _Balances, transfer_accounts: set[str], fee: int) -> _Net:
    """One account's net change per mint, SOL corrected for the fee and rent (module doc)."""
    raw: dict[str, int] = {}
    decimals: dict[str, int] = {SOL_MINT: SOL_DECIMALS}
    notes: list[str] = []
    wsol_by_account: dict[str, int] = {}
    foreign: set[str] = set()
    for c in balances.changes:
        if c.owner != account:
            foreign.add(c.token_account)
            continue
        if c.mint == SOL_MINT:
            wsol_by_account[c.token_account] = wsol_by_account.get(c.token_account, 0) + c.raw
            continue
        raw[c.mint] = raw.get(c.mint, 0) + c.raw
        known = decimals.setdefault(c.mint, c.decimals)
        if known != c.decimals:
            notes.append(f"{c.mint} is listed with {known} and {c.decimals} decimals")
        wsol_by_account.setdefault(c.token_account, 0)
    # Accounts tokenTransfers call the wallet's, unless a balance entry says someone else owns it.
    for token_account in transfer_accounts - foreign:
        wsol_by_account.setdefault(token_account, 0)

    native = balances.natives.get(account)
    if native is None:
        notes.append(f"no nativeBalanceChange for {account}: its SOL is read from wSOL only")
        sol = 0
    else:
        sol = native + fee
    for token_account, wsol in wsol_by_account.items():
        lamports = balances.natives.get(token_account) if token_account != account else None
        sol += wsol if lamports is None else lamports
    raw[SOL_MINT] = sol
    owned = set(wsol_by_account) - {"", account}
    return _Net({m: v for m, v in raw.items() if v}, decimals, owned, notes)


def _sides(raw: dict[str, int], dust: int) -> tuple[list[tuple[str, str, int]], int]:
    """(direction, mint, signed raw) legs, sells then buys by mint; and SOL left out as a fee."""
    tokens = {m: v for m, v in raw.items() if m != SOL_MINT and v}
    sol = raw.get(SOL_MINT, 0)
    gave, got = any(v < 0 for v in tokens.values()), any(v > 0 for v in tokens.values())
    sol_swapped = gave != got and sol != 0 and (sol > 0) == gave
    sol_not_leg = 0
    if sol and (sol_swapped or abs(sol) >= dust):
        tokens[SOL_MINT] = sol
    else:
        sol_not_leg = sol
    sells = sorted((m, v) for m, v in tokens.items() if v < 0)
    buys = sorted((m, v) for m, v in tokens.items() if v > 0)
    sides = [("sell", m, v) for m, v in sells] + [("buy", m, v) for m, v in buys]
    return sides, sol_not_leg


def _program_ids(instructions: Any) -> set[str]:
    found: set[str] = set()
    for ins in _dicts(instructions):
        for item in [ins, *_dicts(ins.get("innerInstructions"))]:
            program = _address(item.get("programId"))
            if program:
                found.add(program)
    return found


def _pick_wallet(
    event: dict[str, Any],
    balances: _Balances,
    fee_payer: str | None,
    net_of: Callable[[str], _Net],
    dust: int,
) -> tuple[str | None, _Net | None, list[str]]:
    """The fee payer, unless it moved nothing and exactly one other user account swapped."""
    payer_net: _Net | None = None
    if fee_payer:
        payer_net = net_of(fee_payer)
        if _sides(payer_net.raw, dust)[0]:
            return fee_payer, payer_net, []
    not_wallets = _NOT_WALLETS | _program_ids(event.get("instructions")) | {fee_payer or ""}
    swapped: list[tuple[str, _Net]] = []
    for owner in sorted({c.owner for c in balances.changes} - not_wallets):
        net = net_of(owner)
        if {d for d, _, _ in _sides(net.raw, dust)[0]} == {"buy", "sell"}:
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
        account, amount = _address(native.get("account")), _as_int(native.get("amount"))
        if account == wallet and amount:
            claimed[(direction, SOL_MINT)] = claimed.get((direction, SOL_MINT), 0) + abs(amount)
        elif account and amount:
            notes.append(f"events.swap.{key} names {account}, not the wallet: ignored")
    for key, direction in (("tokenInputs", "sell"), ("tokenOutputs", "buy")):
        for i, item in enumerate(_dicts(swap.get(key))):
            account, mint = _address(item.get("userAccount")), _address(item.get("mint"))
            raw_amount = item.get("rawTokenAmount")
            amount = (
                _as_int(raw_amount.get("tokenAmount")) if isinstance(raw_amount, dict) else None
            )
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


def _check_token_transfers(token_transfers: Any, wallet: str, net: _Net) -> list[str]:
    """Where the wallet's net tokenTransfers per mint (SOL aside) disagree with its balances."""
    moved: dict[str, float] = {}
    mine = net.token_accounts | {wallet}
    for t in _dicts(token_transfers):
        mint, amount = _address(t.get("mint")), _as_float(t.get("tokenAmount"))
        if mint is None or mint == SOL_MINT or amount is None:
            continue
        sent = (
            _address(t.get("fromUserAccount")) in mine
            or _address(t.get("fromTokenAccount")) in mine
        )
        received = (
            _address(t.get("toUserAccount")) in mine or _address(t.get("toTokenAccount")) in mine
        )
        if sent != received:
            moved[mint] = moved.get(mint, 0.0) + (amount if received else -amount)
    if not any(_dicts(token_transfers)):
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
