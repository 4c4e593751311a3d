"""What both PnL engines share: parameters, the result summary, SQL file loading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

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


def load_sql(dialect: str, name: str, **subs: str) -> str:
    """A packaged SQL file with `{{key}}` placeholders filled in."""
    text = resources.files("smarttrader_cli.engines").joinpath("sql", dialect, name).read_text()
    for key, value in subs.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise ValueError(f"unfilled placeholder in {dialect}/{name}")
    return text
