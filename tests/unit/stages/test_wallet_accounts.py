"""The on-curve check and the known-accounts list, without a lake."""

from __future__ import annotations

import pyarrow as pa
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from smarttrader_cli.errors import StageError
from smarttrader_cli.stages.wallet_accounts import (
    KNOWN_KINDS,
    account_checks,
    check_address,
    known_accounts,
)

RAYDIUM_V4 = Pubkey.from_string("675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8")
HEADER = "address,kind,name,source\n"


def test_a_keypairs_public_key_is_on_the_curve_and_a_pda_is_not() -> None:
    wallet = str(Keypair.from_seed(bytes(range(32))).pubkey())
    pool = str(Pubkey.find_program_address([b"pool"], RAYDIUM_V4)[0])
    assert check_address(wallet) == (True, None)
    assert check_address(pool) == (False, None)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ELITE1", "Invalid Base58 string"),
        ("", "wrong size"),
        ("1" * 60, "wrong size"),
        ("0OIl" * 11, "Invalid Base58 string"),
        ("5tzFkiKscXHK5ZXCGbXZxdw7gTjjD1mBwuoFbhUvuAi9 ", "wrong size"),
    ],
)
def test_an_address_that_is_no_public_key_is_reported_not_raised(address: str, why: str) -> None:
    on_curve, error = check_address(address)
    assert on_curve is None
    assert error is not None and error.startswith("not a base58 public key") and why in error


def test_account_checks_keep_every_row_of_what_was_seen() -> None:
    seen = pa.table(
        {
            "wallet_address": ["bad!", "1nc1nerator11111111111111111111111111111111"],
            "is_holder": [True, True],
            "is_trader": [False, False],
        }
    )
    rows = account_checks(seen).to_pylist()
    assert [(r["wallet_address"], r["on_curve"]) for r in rows] == [
        ("bad!", None),
        ("1nc1nerator11111111111111111111111111111111", False),
    ]
    assert rows[0]["address_error"] and rows[1]["address_error"] is None


def test_the_shipped_list_parses_and_cites_a_source_for_every_row() -> None:
    accounts = known_accounts()
    assert {a.kind for a in accounts} == set(KNOWN_KINDS)
    by_address = {a.address: a for a in accounts}
    assert by_address["1nc1nerator11111111111111111111111111111111"].kind == "burn"
    assert by_address["675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"].kind == "program"
    assert all(a.source.count("http") >= 1 for a in accounts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("address,kind\n", "header must be address,kind,name,source"),
        (HEADER + "nope,burn,x,y\n", "known_accounts.csv:2: not a base58 public key"),
        (
            HEADER + "11111111111111111111111111111111,pool,x,y\n",
            "known_accounts.csv:2: kind must be one of",
        ),
        (HEADER + "11111111111111111111111111111111,program,x,\n", "needs its source"),
        (
            HEADER + "11111111111111111111111111111111,program,x,y\n"
            "11111111111111111111111111111111,program,x,y\n",
            "known_accounts.csv:3: address listed twice",
        ),
    ],
)
def test_a_bad_list_row_is_refused_with_its_line(text: str, message: str) -> None:
    with pytest.raises(StageError, match=message):
        known_accounts(text)
