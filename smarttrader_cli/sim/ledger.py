"""One transaction's balance moves, kept the way Solana keeps them, rendered as Helius does.

Every lamport and token move goes through a `Ledger`: it lists the move in
`nativeTransfers` / `tokenTransfers` (unless the move is one Helius leaves out) and
updates per-account balance changes, from which `accountData` is rendered. So
`accountData` is always the true net effect of the listed (and unlisted) moves: wSOL
token accounts hold their balance in lamports too, a closed account's balance goes back
to whom it is closed to, and the fee comes off the fee payer only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.market import SOL, SimToken

RENT = 2_039_280  # lamports of rent in a token account, returned when it is closed


@dataclass
class _Holding:
    """A token account's change in one transaction."""

    owner: str
    mint: str
    decimals: int
    raw: int = 0


@dataclass
class Ledger:
    """Moves of one transaction, and the balance changes they add up to."""

    native: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    lamports: dict[str, int] = field(default_factory=dict)
    holdings: dict[str, _Holding] = field(default_factory=dict)

    def _add(self, account: str, lamports: int) -> None:
        self.lamports[account] = self.lamports.get(account, 0) + lamports

    def pay_fee(self, payer: str, fee: int) -> None:
        """The network fee: off the payer's balance, in no transfer list."""
        self._add(payer, -fee)

    def send_sol(self, src: str, dst: str, lamports: int, listed: bool = True) -> None:
        """A system transfer of lamports (account creation, wrap, tip, close)."""
        self._add(src, -lamports)
        self._add(dst, lamports)
        if listed:
            self.native.append({"fromUserAccount": src, "toUserAccount": dst, "amount": lamports})

    def _hold(self, account: str, owner: str, token: SimToken, raw: int) -> None:
        held = self.holdings.setdefault(account, _Holding(owner, token.address, token.decimals))
        held.raw += raw

    def sync_native(self, account: str, owner: str, token: SimToken, raw: int) -> None:
        """Lamports already sent to a wSOL account become its token balance."""
        self._hold(account, owner, token, raw)

    def move(
        self,
        token: SimToken,
        raw: int,
        src: tuple[str, str],
        dst: tuple[str, str],
        listed: bool = True,
    ) -> None:
        """A token transfer of `raw` from (owner, token account) to (owner, token account)."""
        (src_owner, src_account), (dst_owner, dst_account) = src, dst
        self._hold(src_account, src_owner, token, -raw)
        self._hold(dst_account, dst_owner, token, raw)
        if token.address == SOL:  # wSOL is lamports held by the token account
            self._add(src_account, -raw)
            self._add(dst_account, raw)
        if listed:
            self.tokens.append(transfer(token, raw, src, dst))

    def mint_to(self, token: SimToken, raw: int, dst: tuple[str, str]) -> None:
        """Newly minted tokens (a fee): Helius names no source account ("")."""
        self._hold(dst[1], dst[0], token, raw)
        self.tokens.append(transfer(token, raw, ("", ""), dst))

    def close(self, account: str, to: str) -> None:
        """Close a (temporary) token account: its lamports go to `to`, its balance is gone."""
        self.send_sol(account, to, self.lamports.get(account, 0))
        self.holdings.pop(account, None)

    def account_data(self, first: str, quiet: list[str]) -> list[dict[str, Any]]:
        """`accountData`: `first` (the fee payer), every touched account, then `quiet` ones."""
        touched = sorted((set(self.lamports) | set(self.holdings)) - {first})
        rest = [a for a in dict.fromkeys(quiet) if a != first and a not in touched]
        out = []
        for account in [first, *touched, *rest]:
            held = self.holdings.get(account)
            changes = []
            if held is not None and held.raw:
                changes.append(
                    {
                        "userAccount": held.owner,
                        "tokenAccount": account,
                        "rawTokenAmount": {"tokenAmount": str(held.raw), "decimals": held.decimals},
                        "mint": held.mint,
                    }
                )
            out.append(
                {
                    "account": account,
                    "nativeBalanceChange": self.lamports.get(account, 0),
                    "tokenBalanceChanges": changes,
                }
            )
        return out


def transfer(
    token: SimToken, raw: int, src: tuple[str, str], dst: tuple[str, str]
) -> dict[str, Any]:
    """A `tokenTransfers[]` item (UI amount as a number)."""
    return {
        "fromTokenAccount": src[1],
        "toTokenAccount": dst[1],
        "fromUserAccount": src[0],
        "toUserAccount": dst[0],
        "tokenAmount": raw / 10**token.decimals,
        "mint": token.address,
        "tokenStandard": "Fungible",
    }
