"""A Helius transaction's balances (`accountData`), read and netted per account.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SOL_MINT = "So11111111111111111111111111111111111111112"
SOL_DECIMALS = 9

_U64 = 2**64  # lamports and token amounts are u64: anything larger is junk
_MAX_DECIMALS = 255  # SPL decimals are a u8
_INT_TEXT = re.compile(r"-?[0-9]{1,40}")


@dataclass(frozen=True)
class TokenChange:
    """One readable tokenBalanceChanges entry: whose account, which mint, how much."""

    owner: str
    token_account: str
    mint: str
    raw: int
    decimals: int


@dataclass
class Balances:
    """What accountData says every account's lamports and tokens did."""

    natives: dict[str, int]  # account -> nativeBalanceChange (first readable one)
    changes: list[TokenChange]
    unreadable_owners: list[str]  # userAccount of each entry whose amount could not be read


@dataclass
class Net:
    """One account's net change per mint, with the token accounts counted as its own."""

    raw: dict[str, int]  # mint -> signed raw change; SOL_MINT holds native + wSOL
    decimals: dict[str, int]
    token_accounts: set[str]
    notes: list[str] = field(default_factory=list)


# --- reading ------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
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


def as_float(value: Any) -> float | None:
    """A finite float from a number or a numeric string; None otherwise."""
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


def address(value: Any) -> str | None:
    """A non-blank string, stripped; None otherwise."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def dicts(value: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a list, skipping anything else; nothing when it is no list."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def read_balances(account_data: Any) -> Balances | None:
    """accountData as native changes and token changes; None when nothing is readable."""
    natives: dict[str, int] = {}
    changes: list[TokenChange] = []
    unreadable: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item in dicts(account_data):
        account = address(item.get("account"))
        native = as_int(item.get("nativeBalanceChange"))
        if account and native is not None:
            natives.setdefault(account, native)
        for entry in dicts(item.get("tokenBalanceChanges")):
            owner = address(entry.get("userAccount"))
            mint = address(entry.get("mint"))
            token_account = address(entry.get("tokenAccount")) or account
            raw_amount = entry.get("rawTokenAmount")
            raw_amount = raw_amount if isinstance(raw_amount, dict) else {}
            raw = as_int(raw_amount.get("tokenAmount"))
            decimals = as_int(raw_amount.get("decimals"))
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
            changes.append(TokenChange(owner, token_account or "", mint, raw, decimals))
    if not natives and not changes:
        return None
    return Balances(natives, changes, unreadable)


def transfer_token_accounts(token_transfers: Any) -> dict[str, set[str]]:
    """user account -> the token accounts tokenTransfers say it owns."""
    owned: dict[str, set[str]] = {}
    for t in dicts(token_transfers):
        for user_key, account_key in (
            ("fromUserAccount", "fromTokenAccount"),
            ("toUserAccount", "toTokenAccount"),
        ):
            user, account = address(t.get(user_key)), address(t.get(account_key))
            if user and account and account != user:
                owned.setdefault(user, set()).add(account)
    return owned


# --- netting ------------------------------------------------------------------------


def net_for(account: str, balances: Balances, transfer_accounts: set[str], fee: int) -> Net:
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
    return Net({m: v for m, v in raw.items() if v}, decimals, owned, notes)


def sides_of(raw: dict[str, int], dust: int) -> tuple[list[tuple[str, str, int]], int]:
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
