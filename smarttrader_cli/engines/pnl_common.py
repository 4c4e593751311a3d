"""What both PnL engines share: parameters, the result summary, SQL file loading."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING

from smarttrader_cli.engines.pnl_windows import DEFAULT_WINDOWS, Window, parse_windows
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
    windows: tuple[str, ...] = DEFAULT_WINDOWS
    as_of: int | None = None  # unix seconds the windows end at; None: resolve_as_of


def resolve_as_of(params: PnlParams, latest_trade: int | None) -> PnlParams:
    """Fix the windows' end: the latest trade in bronze, capped by the run's clock.

    The data's clock rather than the wall clock: simulated and test histories live in their
    own epoch, and with live data the latest fetched trade is minutes old. The cap keeps one
    far-future timestamp from moving every window.
    """
    if params.as_of is not None:
        return params
    now = int(params.calculated_at.timestamp())
    return replace(params, as_of=now if latest_trade is None else min(now, int(latest_trade)))


def finite_windows(params: PnlParams) -> list[Window]:
    """The windows with a length, shortest first: their position is their bucket index."""
    wins = [w for w in parse_windows(params.windows) if w.seconds is not None]
    return sorted(wins, key=lambda w: w.seconds or 0)


def window_sql(params: PnlParams) -> dict[str, str]:
    """SQL both engines fill in: each leg's bucket, the bucket count and the windows CTE.

    Every window ends at as_of, so they are nested: a leg's bucket is the shortest window
    holding it (K, the number of finite windows, when none does) and window i sums buckets
    0..i. The 'all' window is the per-group totals themselves.
    """
    assert params.as_of is not None, "resolve_as_of first"
    end = int(params.as_of)
    finite = finite_windows(params)
    k = len(finite)
    cases = "".join(f" WHEN t > {end - (w.seconds or 0)} THEN {i}" for i, w in enumerate(finite))
    bucket = f"CASE WHEN t > {end} THEN {k}{cases} ELSE {k} END"
    index = {w.name: i for i, w in enumerate(finite)}
    selects = []
    for w in parse_windows(params.windows):
        start = (
            "CAST(NULL AS BIGINT)" if w.seconds is None else f"CAST({end - w.seconds} AS BIGINT)"
        )
        idx = "CAST(NULL AS INT)" if w.seconds is None else f"CAST({index[w.name]} AS INT)"
        selects.append(
            f"SELECT '{w.name}' AS window_name, {idx} AS bucket, {start} AS start_t, "
            f"CAST({end} AS BIGINT) AS end_t"
        )
    return {"leg_bucket": bucket, "buckets": str(k), "windows_cte": "\nUNION ALL\n".join(selects)}


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


@dataclass(frozen=True)
class WindowState:
    """What silver.wallet_pnl_windows holds: where its windows end and which windows."""

    end: int  # unix seconds: max(window_end)
    names: frozenset[str]


@dataclass(frozen=True)
class RunPlan:
    """What a run computes (params.wallets: None = all) and how it writes the windows.

    windows: "overwrite" (full run), "merge" (replace the recomputed wallets' rows),
    "shift" (as_of moved: every other wallet's rows get the new window bounds and the table
    is overwritten with them and the recomputed rows) or "skip" (a --wallet run while the
    table is missing or holds other windows: the next incremental run rebuilds it in full).
    """

    params: PnlParams
    mode: str
    windows: str


def plan_run(
    params: PnlParams,
    mode: str,
    state: WindowState | None,
    stale_wallets: Callable[[], tuple[str, ...] | None],
    moved_wallets: Callable[[str], tuple[str, ...]],
) -> RunPlan | None:
    """The wallets and write modes of a run (as_of resolved); None when there is nothing to do.

    Windows move with as_of, so when it moved since the table was written, the wallets with
    a trade that crossed a window edge (`moved_wallets(predicate)`, see window_bands) are
    recomputed too; every other wallet's windows keep their numbers, only their bounds move.
    """
    current = state is not None and state.names == frozenset(params.windows)
    if mode == "full" or (mode == "incremental" and not current):
        return RunPlan(replace(params, wallets=None), "full", "overwrite")
    if mode == "incremental":
        chosen = stale_wallets()
        if chosen is None:
            return RunPlan(params, "full", "overwrite")
    else:
        chosen = params.wallets or ()
        if not current:
            return RunPlan(params, mode, "skip")
    assert state is not None and params.as_of is not None
    moved = state.end != params.as_of
    if moved:
        chosen = tuple(sorted({*chosen, *moved_wallets(window_bands(params, state.end))}))
    if not chosen and not moved:
        log.info("silver pnl: no wallet has new trades or new prices")
        return None
    return RunPlan(replace(params, wallets=chosen), mode, "shift" if moved else "merge")


def window_bands(params: PnlParams, previous_end: int) -> str:
    """A predicate on block_unix_time: the trades that entered or left some window when its
    end moved from previous_end to as_of (each window's edges swept over that span)."""
    assert params.as_of is not None
    lo, hi = sorted((int(previous_end), int(params.as_of)))
    lengths = sorted({0, *(w.seconds or 0 for w in finite_windows(params))})
    return " OR ".join(
        f"(block_unix_time > {lo - s} AND block_unix_time <= {hi - s})" for s in lengths
    )


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
    windows: pa.Table | None = None  # silver.wallet_pnl_windows rows (None: not collected)
    mode: str = ""  # the mode the run had (set when it differs from the one asked for)
    repriced_wallets: int = 0  # holders re-valued without a FIFO (incremental runs)

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
