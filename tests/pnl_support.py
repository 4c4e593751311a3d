"""Test helpers for PnL: build bronze rows, write them to a lake, compare with the oracle."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import (
    TOKEN_METRICS,
    WALLET_PNL,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)

ALL_TOKENS = "ALL_TOKENS"

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL = "So11111111111111111111111111111111111111112"
QUOTES = (SOL, USDC)
T0 = 1_700_000_000
FETCHED = datetime(2024, 1, 1, tzinfo=UTC)
META = CommitMeta("test-run", "test", "hash")


def trade(
    wallet: str,
    tx: str,
    t: int,
    give: tuple[str, float, float | None],
    get: tuple[str, float, float | None],
    *,
    ins: int = 0,
    inner: int = 0,
    fill: str = "",
    fetched_at: datetime = FETCHED,
) -> dict[str, Any]:
    """One bronze.wallet_trades row: give = (token, amount, usd price), get likewise."""
    return {
        "tx_hash": tx,
        "ins_index": ins,
        "inner_ins_index": inner,
        "fill_id": fill,
        "wallet_address": wallet,
        "block_unix_time": t,
        "from_token_address": give[0],
        "from_amount": give[1],
        "from_price_usd": give[2],
        "to_token_address": get[0],
        "to_amount": get[1],
        "to_price_usd": get[2],
        "fetched_at": fetched_at,
    }


def buy(wallet: str, tx: str, t: int, token: str, qty: float, unit: float | None) -> dict[str, Any]:
    """Pay USDC for `qty` of `token` at `unit` USD (priced on the USDC leg)."""
    usd = qty * unit if unit is not None else None
    return trade(
        wallet, tx, t, (USDC, usd if usd else 1.0, 1.0 if usd else None), (token, qty, unit)
    )


def sell(
    wallet: str, tx: str, t: int, token: str, qty: float, unit: float | None
) -> dict[str, Any]:
    """Sell `qty` of `token` for USDC at `unit` USD."""
    usd = qty * unit if unit is not None else None
    return trade(
        wallet, tx, t, (token, qty, unit), (USDC, usd if usd else 1.0, 1.0 if usd else None)
    )


def break_even_after_an_expensive_lot(wallet: str = "W") -> list[dict[str, Any]]:
    """Property-test counter-example: the last sell breaks even inside a cheap lot that follows
    an expensive one; pricing it as a difference of cumulative costs made it a "win"."""
    h = 3600
    return [
        buy(wallet, "a", T0, "T", 0.1, 20_969_520.0),
        sell(wallet, "b", T0 + h, "T", 1_048_576.385, 0.5 / 10_485_763.85),
        buy(wallet, "c", T0 + 2 * h, "T", 0.1, 1.0),
        sell(wallet, "d", T0 + 3 * h, "T", 0.0625, 1.0),
    ]


def sell_ending_on_a_lot_boundary(wallet: str = "W") -> list[dict[str, Any]]:
    """Property-test counter-example (CI): TokC's first sell ends exactly where its second lot
    starts, and the next sell breaks even inside that lot."""
    return [
        trade(wallet, "t27", T0, (SOL, 0.1, None), ("TokC", 0.2, 0.5)),
        trade(wallet, "t34", T0, ("TokA", 0.1, None), ("TokC", 2_097_152.0, 3.0)),
        trade(wallet, "t0", T0 + 60, ("TokC", 0.2, None), ("TokA", 0.1, 0.5)),
        trade(wallet, "t36", T0 + 60, ("TokC", 0.1, None), ("TokA", 0.1, 3.0)),
    ]


def trades_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the bronze schema."""
    rows = list(rows)
    cols = {f.name: [r.get(f.name) for r in rows] for f in WALLET_TRADES.schema}
    return pa.table(cols, schema=WALLET_TRADES.schema)


def write_trades(lake: Lake, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append bronze trades as they are (duplicates included, unlike a merge)."""
    lake.append(WALLET_TRADES, trades_table(rows), META)


def merge_trades(lake: Lake, rows: Iterable[Mapping[str, Any]]) -> None:
    """Upsert bronze trades on the natural key, as the bronze stage does."""
    lake.merge(WALLET_TRADES, trades_table(rows), META)


def write_metrics(lake: Lake, prices: Mapping[str, float], at: datetime = FETCHED) -> None:
    """One token_metrics snapshot with these prices."""
    rows = [{"token_address": tok, "snapshot_at": at, "price": p} for tok, p in prices.items()]
    cols = {f.name: [r.get(f.name) for r in rows] for f in TOKEN_METRICS.schema}
    lake.merge(TOKEN_METRICS, pa.table(cols, schema=TOKEN_METRICS.schema), META)


COMPARED = [f.name for f in WALLET_PNL.schema if f.name not in ("calculated_at", "run_id")][2:]
USD_COLUMNS = {
    "realized_pnl", "unrealized_pnl", "total_pnl", "total_bought", "total_sold",
    "matched_cost", "current_position_cost_basis", "current_position_value",
}  # fmt: skip
QTY_COLUMNS = {"current_position_tokens", "unmatched_sell_qty"}


def rows_by_key(table: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    """silver.wallet_pnl rows keyed by (wallet, token)."""
    return {(r["wallet_address"], r["token_address"]): r for r in table.to_pylist()}


def magnitudes(
    trades: Iterable[Mapping[str, Any]], quotes: tuple[str, ...] = QUOTES
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (wallet, token): total leg quantity and that quantity valued at the highest unit price.

    Cumulative sums carry float error relative to these, whatever the algorithm's order of
    additions, so they are the natural floor of an absolute tolerance.
    """
    from tests.pnl_oracle import dedupe, is_valid, legs_of

    qty: dict[tuple[str, str], float] = {}
    unit: dict[tuple[str, str], float] = {}
    for t in dedupe(trades):
        if not is_valid(t):
            continue
        for leg in legs_of(t, set(quotes)):
            key = (leg.wallet, leg.token)
            qty[key] = qty.get(key, 0.0) + leg.qty
            if leg.value is not None:
                unit[key] = max(unit.get(key, 0.0), leg.value / leg.qty)
    out = {k: (q, q * unit.get(k, 0.0)) for k, q in qty.items()}
    for (wallet, _), (q, usd) in list(out.items()):
        wq, wusd = out.get((wallet, ALL_TOKENS), (0.0, 0.0))
        out[(wallet, ALL_TOKENS)] = (wq + q, wusd + usd)
    return out


def assert_matches(
    got: dict[tuple[str, str], dict[str, Any]],
    want: dict[tuple[str, str], dict[str, Any]],
    trades: Iterable[Mapping[str, Any]] = (),
    rel: float = 1e-9,
    quotes: tuple[str, ...] = QUOTES,
) -> None:
    """Every key and column equal to `rel` relative, with an absolute floor of `rel` times the
    magnitude the row's sums run through (its quantities at their highest unit price)."""
    assert set(got) == set(want), (sorted(set(got) ^ set(want)))[:5]
    mags = magnitudes(trades, quotes)
    for key, w in want.items():
        g = got[key]
        mag_qty, mag_usd = mags.get(key, (0.0, 0.0))
        usd_scale = max(1.0, abs(w["total_bought"]), abs(w["total_sold"]), mag_usd)
        qty_scale = max(1.0, mag_qty)
        for col in COMPARED:
            a, b = g[col], w[col]
            if _compared_exactly(key, col, a, b):
                continue
            scale = usd_scale if col in USD_COLUMNS else qty_scale if col in QTY_COLUMNS else 1.0
            if col == "roi":
                scale = usd_scale / max(1e-300, abs(w["total_bought"]))
            if col == "avg_holding_time_hours":  # bounded by the span; errors scale with it
                span = w["last_trade_at"] - w["first_trade_at"]
                scale = (
                    max(1.0, span.total_seconds() / 3600.0)
                    * usd_scale
                    / max(1e-300, abs(w["matched_cost"]) if key[1] == ALL_TOKENS else 1.0)
                )
            assert math.isclose(a, b, rel_tol=rel, abs_tol=rel * scale), (key, col, a, b)


def _compared_exactly(key: Any, col: str, a: Any, b: Any, numeric: bool = False) -> bool:
    """Check nulls (both or neither) and times and counts (equal); False: compare numerically."""
    if b is None or a is None:
        assert a is None and b is None, (key, col, a, b)
        return True
    if isinstance(b, (datetime, int)) and not numeric:
        assert a == b, (key, col, a, b)
        return True
    return False


WINDOW_COMPARED = [
    f.name for f in WALLET_PNL_WINDOWS.schema if f.name not in ("calculated_at", "run_id")
][3:]
WINDOW_USD = {
    "realized_pnl", "unrealized_pnl", "total_pnl", "volume_usd", "total_bought", "total_sold",
    "matched_cost", "matched_proceeds",
}  # fmt: skip
WINDOW_QTY = {"sold_qty", "matched_qty"}


def windows_by_key(table: pa.Table) -> dict[tuple[str, str, str], dict[str, Any]]:
    """silver.wallet_pnl_windows rows keyed by (wallet, token, window)."""
    return {(r["wallet_address"], r["token_address"], r["window"]): r for r in table.to_pylist()}


def assert_windows_match(
    got: dict[tuple[str, str, str], dict[str, Any]],
    want: dict[tuple[str, str, str], dict[str, Any]],
    trades: Iterable[Mapping[str, Any]] = (),
    rel: float = 1e-9,
    quotes: tuple[str, ...] = QUOTES,
) -> None:
    """Window rows equal to `rel`, with absolute floors as in assert_matches: USD figures by
    the magnitude the (wallet, token)'s sums run through, ratios by that over their
    denominator (the oracle's capital, sold quantity or sold value)."""
    assert set(got) == set(want), (sorted(set(got) ^ set(want)))[:5]
    mags = magnitudes(trades, quotes)
    for key, w in want.items():
        g = got[key]
        mag_qty, mag_usd = mags.get(key[:2], (0.0, 0.0))
        usd_scale = max(1.0, mag_usd)
        qty_scale = max(1.0, mag_qty)
        for col in WINDOW_COMPARED:
            a, b = g[col], w[col]
            if _compared_exactly(key, col, a, b, col in WINDOW_USD):
                continue
            scale = usd_scale if col in WINDOW_USD else qty_scale if col in WINDOW_QTY else 1.0
            if col == "roi":
                scale = usd_scale / max(1e-300, abs(w["_capital"]))
            if col == "basis_coverage":
                token_row = key[1] != ALL_TOKENS
                scale = (
                    qty_scale / max(1e-300, w["sold_qty"])
                    if token_row
                    else usd_scale / max(1e-300, w["total_sold"])
                )
            assert math.isclose(a, b, rel_tol=rel, abs_tol=rel * scale), (key, col, a, b)


def duckdb_with_bronze(
    trades: Iterable[Mapping[str, Any]], metrics: Iterable[Mapping[str, Any]] = ()
) -> Any:
    """An in-memory DuckDB where bronze.wallet_trades/token_metrics are these rows (no Delta)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA bronze")
    con.register("t_trades", trades_table(trades))
    metrics = list(metrics)
    mcols = {f.name: [m.get(f.name) for m in metrics] for f in TOKEN_METRICS.schema}
    con.register("t_metrics", pa.table(mcols, schema=TOKEN_METRICS.schema))
    con.execute("CREATE VIEW bronze.wallet_trades AS SELECT * FROM t_trades")
    con.execute("CREATE VIEW bronze.token_metrics AS SELECT * FROM t_metrics")
    return con


def engine_rows(
    trades: Iterable[Mapping[str, Any]],
    metrics: Iterable[Mapping[str, Any]] = (),
    quotes: tuple[str, ...] = QUOTES,
    min_leg_usd: float = 0.0,
    wallets: tuple[str, ...] | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The DuckDB engine's rows for these bronze rows, keyed by (wallet, token)."""
    return rows_by_key(engine_result(trades, metrics, quotes, min_leg_usd, wallets).rows)


def engine_result(
    trades: Iterable[Mapping[str, Any]],
    metrics: Iterable[Mapping[str, Any]] = (),
    quotes: tuple[str, ...] = QUOTES,
    min_leg_usd: float = 0.0,
    wallets: tuple[str, ...] | None = None,
    windows: tuple[str, ...] = ("1d", "7d", "30d", "all"),
    as_of: int | None = None,
) -> Any:
    """The DuckDB engine's PnlResult (rows and windows) for these bronze rows."""
    from smarttrader_cli.engines.duckdb_pnl import compute_pnl
    from smarttrader_cli.engines.pnl_common import PnlParams

    con = duckdb_with_bronze(trades, metrics)
    params = PnlParams(
        quotes, min_leg_usd, datetime.now(UTC), "test", wallets, windows=windows, as_of=as_of
    )
    return compute_pnl(con, params)


def random_history(
    seed: int, n: int, wallets: int = 5, tokens: int = 4, t_step: int = 600
) -> list[dict[str, Any]]:
    """A reproducible mixed history: buys, sells, token-to-token swaps, quote-to-quote swaps,
    missing prices, duplicates, bad amounts and sells without buys."""
    import random

    rnd = random.Random(seed)
    toks = [f"Tok{i}" for i in range(tokens)]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        wallet = f"W{int(wallets * rnd.random() ** 2)}"
        kind = rnd.random()
        quote = rnd.choice(QUOTES)
        tok, other = rnd.sample(toks, 2)
        qp = 1.0 if quote == USDC else rnd.uniform(100, 200)
        price = rnd.choice([None] + [rnd.uniform(0.01, 10.0)] * 9)
        qty = rnd.choice([rnd.uniform(0.1, 1000.0), float(rnd.randint(1, 50))])
        t = T0 + i * t_step // 2 + rnd.randint(0, t_step)
        if kind < 0.45:
            give, get = (quote, qty * (price or 1.0) / qp, qp), (tok, qty, price)
        elif kind < 0.9:
            give, get = (
                (tok, qty, price),
                (quote, qty * (price or 1.0) / qp, rnd.choice([qp, None])),
            )
        elif kind < 0.97:
            give, get = (tok, qty, price), (other, rnd.uniform(1, 100), rnd.choice([None, 2.0]))
        else:
            give, get = (USDC, qty, 1.0), (SOL, qty / qp, qp)
        if rnd.random() < 0.02:
            give = (give[0], rnd.choice([0.0, -1.0, None]), give[2])
        rows.append(trade(wallet, f"tx{i}", t, give, get, ins=rnd.randint(0, 1)))
        if rnd.random() < 0.03:  # a re-fetched duplicate
            rows.append(dict(rows[-1], fetched_at=FETCHED.replace(day=2)))
    return rows
