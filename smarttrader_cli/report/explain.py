"""`st gold explain WALLET`: why a wallet is or is not ranked, from what the last ranking wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import UsageError
from smarttrader_cli.lake.readers import RANK_HINT, require
from smarttrader_cli.lake.sql import quote
from smarttrader_cli.lake.tables import SMART_WALLETS, WALLET_FLAGS, WALLET_PNL, TableSpec
from smarttrader_cli.report.links import birdeye_url, solscan_url

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake

# Portfolio figures shown, in order (silver.wallet_pnl's ALL_TOKENS row).
PORTFOLIO_COLUMNS = (
    "total_pnl",
    "realized_pnl",
    "unrealized_pnl",
    "roi",
    "win_rate",
    "trade_count",
    "total_bought",
    "total_sold",
    "unmatched_sell_qty",
)
# The numbers behind the flags (gold.wallet_flags), in order.
FLAG_NUMBERS = (
    "swap_count",
    "active_days",
    "trades_per_active_day",
    "sell_count",
    "flip_count",
    "flip_share",
    "matched_sell_count",
    "median_hold_seconds",
    "tokens_bought",
    "sniped_tokens",
    "sniped_share",
    "basis_coverage",
    "on_curve",
    "address_error",
    "known_kind",
    "known_name",
    "is_holder",
    "is_trader",
)


@dataclass
class Explanation:
    """What st knows about one wallet and the rule that ranked or excluded it."""

    wallet: str
    status: str  # ranked | excluded | not_ranked
    rule: str
    rank: dict[str, Any] | None = None
    portfolio: dict[str, Any] | None = None
    flags: dict[str, Any] | None = None
    windows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --format json."""
        return {
            "wallet_address": self.wallet,
            "status": self.status,
            "rule": self.rule,
            "rank": self.rank,
            "portfolio": self.portfolio,
            "flags": self.flags,
            "windows": self.windows,
        }


def _rows(con: Any, spec: TableSpec, where: str, order: str = "") -> list[dict[str, Any]]:
    """Rows of `spec` matching `where` ([] when the table was never written)."""
    if not con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [spec.layer, spec.short_name],
    ).fetchone()[0]:
        return []
    cursor = con.execute(f"SELECT * FROM {spec.name} WHERE {where} {order}")
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]


def explain(lake: Lake, config: Config, wallet: str) -> Explanation:
    """The explanation for `wallet`; UsageError when st has never seen it."""
    from smarttrader_cli.lake.query import connect_read_only
    from smarttrader_cli.lake.tables import TABLES

    require(lake, WALLET_FLAGS, RANK_HINT)
    match = f"wallet_address = {quote(wallet)}"
    con = connect_read_only(lake)
    try:
        flags = next(iter(_rows(con, WALLET_FLAGS, match)), None)
        portfolio = next(
            iter(_rows(con, WALLET_PNL, f"{match} AND token_address = 'ALL_TOKENS'")), None
        )
        ranked = next(iter(_rows(con, SMART_WALLETS, match)), None)
        windows_spec = TABLES.get("silver.wallet_pnl_windows")
        windows = (
            _rows(con, windows_spec, f"{match} AND token_address = 'ALL_TOKENS'",
                  "ORDER BY window_start DESC NULLS LAST")
            if windows_spec else []
        )  # fmt: skip
    finally:
        con.close()
    if flags is None and portfolio is None and ranked is None:
        raise UsageError(
            f"wallet {wallet} is unknown: not among the top holders, traders or silver "
            "portfolios of the last `st gold rank`"
        )
    if ranked is not None:
        status = "ranked"
        rule = (
            f"ranked #{ranked['rank']} ({ranked['tier']}, score {ranked['score']:.3f}): it "
            "passes the base filters and carries no excluding flag"
        )
    elif flags is not None and flags["excluded"]:
        status = "excluded"
        rule = f"excluded by its flags {flags['flags']} (gold.exclude_flags): {flags['reasons']}"
    else:
        status = "not_ranked"
        # the base filters read the ranking window's numbers (docs/scoring.md)
        judged = portfolio
        if config.gold.window != "all":
            judged = next((w for w in windows if w["window"] == config.gold.window), None)
        rule = _not_ranked_rule(config, judged, flags)
    return Explanation(wallet, status, rule, ranked, _pick(portfolio, PORTFOLIO_COLUMNS),
                       _flag_part(flags), windows)  # fmt: skip


def _pick(row: dict[str, Any] | None, columns: tuple[str, ...]) -> dict[str, Any] | None:
    return None if row is None else {c: row.get(c) for c in columns}


def _flag_part(flags: dict[str, Any] | None) -> dict[str, Any] | None:
    if flags is None:
        return None
    head = {k: flags[k] for k in ("flags", "reasons", "excluded")}
    return {**head, **{k: flags.get(k) for k in FLAG_NUMBERS}}


def _not_ranked_rule(
    config: Config, portfolio: dict[str, Any] | None, flags: dict[str, Any] | None
) -> str:
    """Which base filter keeps an unflagged wallet out (judged with the current config)."""
    if portfolio is None:
        where = "a top holder" if flags and flags["is_holder"] else "seen"
        return (
            f"not ranked: {where} but without a silver portfolio row (no priced trades in "
            "silver.wallet_pnl)"
        )
    gold = config.gold
    tests = [
        ("total_pnl", "> 0 (always)", lambda v: v > 0),
        ("total_pnl", f">= gold.min_total_pnl {gold.min_total_pnl}", lambda v: v >= gold.min_total_pnl),
        ("roi", f">= gold.min_roi {gold.min_roi}", lambda v: v >= gold.min_roi),
        ("win_rate", f">= gold.min_win_rate {gold.min_win_rate}", lambda v: v >= gold.min_win_rate),
        ("trade_count", f">= gold.min_trade_count {gold.min_trade_count}",
         lambda v: v >= gold.min_trade_count),
    ]  # fmt: skip
    failed = [
        f"{column} {_num(portfolio[column])} is not {wanted}"
        for column, wanted, holds in tests
        if portfolio[column] is None or not holds(portfolio[column])
    ]
    if failed:
        return "not ranked: " + "; ".join(failed)
    return (
        "not ranked: it passes the base filters with the current config; the last "
        "`st gold rank` ran with other thresholds or before its silver row changed"
    )


def _num(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"
    return str(value)


def lines(ex: Explanation) -> list[str]:
    """The explanation as text, one fact per line."""
    out = [f"wallet {ex.wallet}", f"  {ex.rule}"]
    if ex.portfolio:
        out.append("portfolio (silver.wallet_pnl, ALL_TOKENS):")
        out += [f"  {k}: {_num(v)}" for k, v in ex.portfolio.items()]
    for w in ex.windows:
        out.append(
            f"window {w['window']}: total_pnl {_num(w.get('total_pnl'))}, realized "
            f"{_num(w.get('realized_pnl'))}, trades {_num(w.get('trade_count'))}, closed "
            f"positions {_num(w.get('closed_positions'))}, basis_coverage "
            f"{_num(w.get('basis_coverage'))}"
        )
    if ex.flags:
        out.append(f"flags: {ex.flags['flags'] or 'none'}")
        out += [f"  {reason}" for reason in filter(None, ex.flags["reasons"].split("; "))]
        out.append("numbers (gold.wallet_flags):")
        out += [f"  {k}: {_num(ex.flags[k])}" for k in FLAG_NUMBERS if ex.flags[k] is not None]
    out.append(f"links: {birdeye_url(ex.wallet)} {solscan_url(ex.wallet)}")
    return out
