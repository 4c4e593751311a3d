"""Which addresses are not trader wallets: off the ed25519 curve, unparseable, or known accounts.

A program-derived address (pool vaults, authorities) has no private key and lies off
the curve, so `solders.pubkey.Pubkey.is_on_curve` separates it from a wallet without a
network call. Exchange, burn and program accounts are on the curve (or vanity keys) and
come from the shipped list smarttrader_cli/data/known_accounts.csv instead.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_TRADES, WHALE_HOLDERS

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.lake.store import Lake

KNOWN_KINDS = ("exchange", "burn", "program")
KNOWN_ACCOUNTS_FILE = "known_accounts.csv"


@dataclass(frozen=True)
class KnownAccount:
    """One row of the known-accounts list."""

    address: str
    kind: str
    name: str
    source: str


def check_address(address: str) -> tuple[bool | None, str | None]:
    """(on_curve, error): on_curve is None and error says why when it is no public key."""
    from solders.pubkey import Pubkey

    try:
        key = Pubkey.from_string(address)
    except (ValueError, TypeError) as exc:
        return None, f"not a base58 public key: {str(exc).strip() or type(exc).__name__}"
    return bool(key.is_on_curve()), None


def account_checks(seen: pa.Table) -> pa.Table:
    """`seen` (one row per wallet_address) with on_curve and address_error beside each."""
    import pyarrow as pa

    checked = [check_address(a) for a in seen.column("wallet_address").to_pylist()]
    return seen.append_column(
        "on_curve", pa.array([c[0] for c in checked], pa.bool_())
    ).append_column("address_error", pa.array([c[1] for c in checked], pa.string()))


def known_accounts(text: str | None = None) -> list[KnownAccount]:
    """The shipped known-accounts list (or `text` in its format); StageError on a bad row."""
    if text is None:
        text = resources.files("smarttrader_cli").joinpath("data", KNOWN_ACCOUNTS_FILE).read_text()
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames != ["address", "kind", "name", "source"]:
        raise StageError(
            f"{KNOWN_ACCOUNTS_FILE}: header must be address,kind,name,source, "
            f"got {','.join(reader.fieldnames or [])}"
        )
    rows: dict[str, KnownAccount] = {}
    for line, row in enumerate(reader, start=2):
        account = KnownAccount(*(str(row[k] or "").strip() for k in reader.fieldnames))
        _, error = check_address(account.address)
        problem = (
            error
            or (account.kind not in KNOWN_KINDS and f"kind must be one of {KNOWN_KINDS}")
            or (not account.source and "every row needs its source")
            or (account.address in rows and "address listed twice")
        )
        if problem:
            raise StageError(f"{KNOWN_ACCOUNTS_FILE}:{line}: {problem}")
        rows[account.address] = account
    return list(rows.values())


def known_accounts_table(accounts: list[KnownAccount]) -> pa.Table:
    """The list as an Arrow table (address, kind, name, source)."""
    import pyarrow as pa

    return pa.table(
        {
            column: pa.array([getattr(a, column) for a in accounts], pa.string())
            for column in ("address", "kind", "name", "source")
        }
    )


def seen_wallets(lake: Lake) -> pa.Table:
    """Every wallet of the top holders, the traders and the silver portfolios, with where seen."""
    import pyarrow as pa

    from smarttrader_cli.lake.query import connect

    parts = [
        (WHALE_HOLDERS, "true, false", ""),
        (WALLET_TRADES, "false, true", ""),
        (WALLET_PNL, "false, true", " WHERE token_address = 'ALL_TOKENS'"),
    ]
    selects = [
        f"SELECT DISTINCT wallet_address, {flags} FROM {spec.name}{where}"
        for spec, flags, where in parts
        if lake.exists(spec)
    ]
    if not selects:
        return pa.table(
            {
                "wallet_address": pa.array([], pa.string()),
                "is_holder": pa.array([], pa.bool_()),
                "is_trader": pa.array([], pa.bool_()),
            }
        )
    con = connect(lake)
    try:
        union = " UNION ALL ".join(selects)
        return con.execute(
            "SELECT wallet_address, bool_or(h) AS is_holder, bool_or(t) AS is_trader "
            f"FROM ({union}) AS seen(wallet_address, h, t) GROUP BY wallet_address"
        ).to_arrow_table()
    finally:
        con.close()


def stage_inputs(lake: Lake) -> dict[str, pa.Table]:
    """The tables the wallet_flags model reads from the build database, by name."""
    return {
        "st_account_checks": account_checks(seen_wallets(lake)),
        "st_known_accounts": known_accounts_table(known_accounts()),
    }
