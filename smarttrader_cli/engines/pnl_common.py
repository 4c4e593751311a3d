"""What both PnL engines share: parameters, the result summary, SQL file loading."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING

from smarttrader_cli.lake.sql import in_list

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("st.silver.pnl")

ALL_TOKENS = "ALL_TOKENS"
# Inside the engines a swap's tie-break within its second is (tx, ins_index, inner_ins_index):
# fills the API gave no index (fill_id set) carry their fill id in the tx, so fills of one
# transaction stay apart in every dedupe, order and join without a fifth key column.
SWAP_TX_SQL = "CASE WHEN fill_id = '' THEN tx_hash ELSE tx_hash || ':' || fill_id END"
TRADES_HINT = "run `st bronze trades` first"


@dataclass(frozen=True)
class PnlParams:
    """One PnL computation: which wallets, which assets are cash, dust floor, run stamp."""

    quote_assets: tuple[str, ...]
    min_leg_usd: float
    calculated_at: datetime
    run_id: str
    wallets: tuple[str, ...] | None = None  # None: every wallet in bronze


def run_scope(
    params: PnlParams, mode: str, stale_wallets: Callable[[], tuple[str, ...] | None]
) -> tuple[PnlParams, str] | None:
    """The wallets and mode a run computes; None when an incremental run has nothing to do.

    An incremental run narrows to `stale_wallets()`, the wallets with new trades or new
    prices, and becomes a full run when silver is still empty (None).
    """
    if mode != "incremental":
        return params, mode
    chosen = stale_wallets()
    if chosen is None:
        return params, "full"
    if not chosen:
        log.info("silver pnl: no wallet has new trades or new prices")
        return None
    return replace(params, wallets=chosen), mode


def quote_filters(params: PnlParams) -> dict[str, str]:
    """02_legs.sql's predicates that keep the quote assets (cash) out of the legs."""
    quotes = list(params.quote_assets)
    return {
        "to_not_quote": in_list("to_token", quotes, negate=True),
        "from_not_quote": in_list("from_token", quotes, negate=True),
    }


@dataclass
class PnlResult:
    """Rows for silver.wallet_pnl plus what the run counted on the way."""

    rows: pa.Table | None  # None when the engine wrote without collecting (Spark)
    wallets: int
    token_rows: int
    legs: int
    unpriced_legs: int
    rejected_trades: int
    duplicate_trades: int

    def summary(self) -> dict[str, int]:
        return {
            "wallets": self.wallets,
            "token_rows": self.token_rows,
            "legs": self.legs,
            "unpriced_legs": self.unpriced_legs,
            "rejected_trades": self.rejected_trades,
            "duplicate_trades": self.duplicate_trades,
        }


# What the shared SQL (sql/shared/) spells differently per dialect: DuckDB has no
# timestamp_seconds, and Spark's to_timestamp parses strings.
DIALECT_SUBS = {
    "duckdb": {"seconds_to_timestamp": "to_timestamp"},
    "spark": {"seconds_to_timestamp": "timestamp_seconds"},
}
_INCLUDE = re.compile(r"\{\{include:([a-z0-9_]+\.sql)\}\}")


def load_sql(dialect: str, name: str, **subs: str) -> str:
    """A packaged SQL file with `{{include:x.sql}}` (sql/shared/x.sql) and `{{key}}` filled in."""
    sql_dir = resources.files("smarttrader_cli.engines").joinpath("sql")
    text = sql_dir.joinpath(dialect, name).read_text()
    text = _INCLUDE.sub(lambda m: sql_dir.joinpath("shared", m.group(1)).read_text().strip(), text)
    for key, value in {**DIALECT_SUBS[dialect], **subs}.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise ValueError(f"unfilled placeholder in {dialect}/{name}")
    return text
