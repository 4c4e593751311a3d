"""What the report plots, read from the lake: the ranking and realized PnL over time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import WALLET_TRADES

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake

DAY = 86_400


def ranking(lake: Lake) -> list[dict[str, Any]]:
    """gold.smart_wallets, best first; StageError when it was never built."""
    from smarttrader_cli.lake.readers import ranked_wallets

    return ranked_wallets(lake)


def sample_times(first: int, last: int, max_points: int) -> list[int]:
    """Ends of UTC days from the first trade's day to the last trade, at most `max_points`."""
    end_first = first - first % DAY + DAY - 1
    days = list(range(end_first, last + DAY, DAY))
    if len(days) > max_points:
        step = (len(days) - 1) / (max_points - 1)
        days = [days[round(i * step)] for i in range(max_points)]
    days[-1] = max(days[-1], last)
    return days


def cumulative_realized_pnl(
    lake: Lake, config: Config, wallets: list[str], max_points: int = 60
) -> dict[str, list[tuple[int, float]]]:
    """Per wallet, realized PnL accumulated up to the end of each day of its trade history.

    The value at time T is the FIFO realized PnL of the wallet's trades with
    block_unix_time <= T, computed by the silver DuckDB engine itself (FIFO is causal: a
    sell's realized PnL depends only on earlier legs), so the last point equals the
    wallet's `realized_pnl` in silver.wallet_pnl when silver is up to date.
    """
    if not wallets or not lake.exists(WALLET_TRADES):
        return {}
    from smarttrader_cli.engines.duckdb_pnl import prepare_legs, realized_by_wallet, run_fifo
    from smarttrader_cli.engines.pnl_common import PnlParams
    from smarttrader_cli.lake.query import connect
    from smarttrader_cli.lake.sql import between

    con = connect(lake)
    try:
        import pyarrow as pa

        con.register("st_report_wallets", pa.table({"wallet": wallets}))
        con.execute(
            "CREATE TABLE st_report_trades AS SELECT * FROM bronze.wallet_trades "
            "WHERE wallet_address IN (SELECT wallet FROM st_report_wallets)"
        )
        bounds = con.execute(
            "SELECT min(block_unix_time), max(block_unix_time) FROM st_report_trades"
        ).fetchone()
        if not bounds or bounds[0] is None:
            return {}
        params = PnlParams(
            quote_assets=tuple(config.pnl.quote_assets),
            min_leg_usd=config.pnl.min_leg_usd,
            calculated_at=datetime.now(UTC),
            run_id="report",
            wallets=tuple(wallets),
            # realized PnL is the all-time figure: no finite window to bucket legs into
            windows=("all",),
            as_of=int(bounds[1]),
        )
        series: dict[str, list[tuple[int, float]]] = {w: [] for w in wallets}
        for t in sample_times(int(bounds[0]), int(bounds[1]), max_points):
            con.execute(
                "CREATE OR REPLACE VIEW bronze.wallet_trades AS "
                "SELECT * FROM st_report_trades WHERE "
                + between("block_unix_time", before=t, inclusive=True)
            )
            prepare_legs(con, params)
            run_fifo(con, params)
            realized = realized_by_wallet(con)
            for wallet in wallets:
                series[wallet].append((t, float(realized.get(wallet, 0.0))))
        return series
    finally:
        con.close()


@dataclass
class FlagSummary:
    """What gold.wallet_flags says: wallets seen, per flag, and the excluded ones."""

    seen: int = 0
    per_flag: dict[str, int] = field(default_factory=dict)
    excluded_total: int = 0
    excluded: list[dict[str, Any]] = field(default_factory=list)  # the first `limit`


def wallet_flags(lake: Lake, limit: int = 200) -> FlagSummary:
    """The flags of the last ranking; excluded wallets biggest silver total_pnl first.

    Empty when gold.wallet_flags was never written (a ranking from before the flags).
    """
    from smarttrader_cli.config.schema import WALLET_FLAGS as NAMES
    from smarttrader_cli.lake.query import connect_read_only
    from smarttrader_cli.lake.tables import WALLET_FLAGS, WALLET_PNL

    if not lake.exists(WALLET_FLAGS):
        return FlagSummary()
    pnl = (
        "(SELECT wallet_address, total_pnl, roi, win_rate, trade_count FROM silver.wallet_pnl "
        "WHERE token_address = 'ALL_TOKENS')"
        if lake.exists(WALLET_PNL)
        else "(SELECT NULL::VARCHAR AS wallet_address, NULL::DOUBLE AS total_pnl, "
        "NULL::DOUBLE AS roi, NULL::DOUBLE AS win_rate, NULL::BIGINT AS trade_count)"
    )
    con = connect_read_only(lake)
    try:
        seen, excluded_total = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE excluded) FROM gold.wallet_flags"
        ).fetchone() or (0, 0)
        counted = con.execute(
            "SELECT flag, count(*) FROM (SELECT unnest(string_split(flags, ',')) AS flag "
            "FROM gold.wallet_flags WHERE is_flagged) GROUP BY flag"
        ).fetchall()
        cursor = con.execute(
            "SELECT f.wallet_address, f.flags, f.reasons, p.total_pnl, p.roi, p.win_rate, "
            f"p.trade_count FROM gold.wallet_flags AS f LEFT JOIN {pnl} AS p "
            "USING (wallet_address) WHERE f.excluded "
            "ORDER BY p.total_pnl DESC NULLS LAST, f.wallet_address LIMIT ?",
            [limit],
        )
        columns = [d[0] for d in cursor.description]
        excluded = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    by_flag = dict(counted)
    per_flag = {n: int(by_flag[n]) for n in NAMES if by_flag.get(n)}
    return FlagSummary(int(seen), per_flag, int(excluded_total), excluded)


def window_pnl(lake: Lake, wallets: list[str]) -> dict[str, dict[str, float | None]]:
    """Per wallet, its portfolio total_pnl in each window of silver.wallet_pnl_windows.

    Empty when silver has not written windows.
    """
    from smarttrader_cli.lake.query import connect_read_only
    from smarttrader_cli.lake.tables import WALLET_PNL_WINDOWS

    if not wallets or not lake.exists(WALLET_PNL_WINDOWS):
        return {}
    con = connect_read_only(lake)
    try:
        # every portfolio row, filtered here: the Arrow scan cannot take an IN filter (or
        # the one a join pushes down) on a string_view column
        rows = con.execute(
            'SELECT wallet_address, "window", total_pnl FROM silver.wallet_pnl_windows '
            "WHERE token_address = 'ALL_TOKENS'"
        ).fetchall()
    finally:
        con.close()
    wanted = set(wallets)
    out: dict[str, dict[str, float | None]] = {}
    for wallet, window, pnl in rows:
        if wallet in wanted:
            out.setdefault(wallet, {})[window] = pnl
    return out


def latest_flows(lake: Lake, limit: int = 15) -> list[dict[str, Any]]:
    """The newest rows of gold.token_flows: latest window first, biggest smart buying first
    (empty before the first `st gold flows`)."""
    from smarttrader_cli.lake.query import connect_read_only
    from smarttrader_cli.lake.tables import TOKEN_FLOWS

    if not lake.exists(TOKEN_FLOWS):
        return []
    con = connect_read_only(lake)
    try:
        cursor = con.execute(
            "SELECT token_address, window_start, window_minutes, buy_volume_usd, "
            "sell_volume_usd, net_flow_usd, buy_count, sell_count, smart_buyers, "
            "smart_sellers, unpriced_buy_count, unpriced_sell_count FROM gold.token_flows "
            "ORDER BY window_start DESC, buy_volume_usd DESC NULLS LAST, token_address LIMIT ?",
            [limit],
        )
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()


def latest_alerts(lake: Lake, limit: int = 15) -> list[dict[str, Any]]:
    """The newest alerts of the outbox, one per alert with its state on each channel: rule,
    token, wallet(s), USD, the safety verdict and when (empty before the first alert)."""
    import json

    from smarttrader_cli.alerts.outbox import listing
    from smarttrader_cli.lake.tables import ALERTS

    if not lake.exists(ALERTS):
        return []
    alerts: dict[str, dict[str, Any]] = {}
    for row in listing(lake):  # newest first
        alert = alerts.get(row["alert_id"])
        if alert is None:
            if len(alerts) == limit:
                continue
            try:
                payload = json.loads(row["payload"] or "{}")
            except ValueError:
                payload = {}
            found = payload.get("data") if isinstance(payload, dict) else None
            facts: dict[str, Any] = found if isinstance(found, dict) else {}
            wallets = facts.get("wallets") or ([facts["wallet"]] if facts.get("wallet") else [])
            alert = alerts[row["alert_id"]] = {
                "alert_id": row["alert_id"],
                "rule": row["rule"],
                "token_address": row["token_address"],
                "wallets": [str(w) for w in wallets],
                "value_usd": facts.get("value_usd"),
                "safety": row.get("safety"),
                "safety_reasons": row.get("safety_reasons"),
                "event_time": row["event_time"],
                "created_at": row["created_at"],
                "states": {},
            }
        alert["states"][row["channel"]] = row["state"]
    return list(alerts.values())
