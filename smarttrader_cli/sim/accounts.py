"""Addresses of the simulated accounts, shaped as real Solana ones.

Wallets are public keys of real ed25519 keypairs (a seeded 32-byte secret), so they lie
on the curve; pool and vault accounts are program-derived addresses (off the curve), as
on chain; exchange and burn holders come from the known-accounts list the pipeline ships
(`smarttrader_cli/data/known_accounts.csv`), the incinerator when it is not there.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

INCINERATOR = "1nc1nerator11111111111111111111111111111111"
RAYDIUM_AMM = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"  # owns the simulated pools
KNOWN_ACCOUNTS = Path(__file__).resolve().parent.parent / "data" / "known_accounts.csv"


def wallet_key(secret: bytes) -> str:
    """The public key of the ed25519 keypair of a 32-byte secret."""
    from solders.keypair import Keypair

    return str(Keypair.from_seed(secret).pubkey())


def program_address(program: str, *seeds: bytes) -> str:
    """The program-derived address of `seeds` under `program` (never on the curve)."""
    from solders.pubkey import Pubkey

    found, _bump = Pubkey.find_program_address(list(seeds), Pubkey.from_string(program))
    return str(found)


def mint_bytes(mint: str) -> bytes:
    """The 32 bytes of a base58 address."""
    from solders.pubkey import Pubkey

    return bytes(Pubkey.from_string(mint))


@functools.cache
def known_accounts(kind: str, path: Path = KNOWN_ACCOUNTS) -> tuple[str, ...]:
    """Addresses of one kind (exchange, burn, program) in the known-accounts list, in file order."""
    found: list[str] = []
    if path.is_file():
        with path.open(newline="") as handle:
            found = [row["address"] for row in csv.DictReader(handle) if row.get("kind") == kind]
    if kind == "burn" and INCINERATOR not in found:
        found.insert(0, INCINERATOR)
    return tuple(found)
