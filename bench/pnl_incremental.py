"""The cron case of `st silver pnl` on a bench/pnl.py lake: new trades, incremental, full.

    .venv/bin/python -m bench.pnl_incremental LAKE WALLETS

Appends up to 10 trades for each of WALLETS wallets (copies of theirs, a minute after the
latest trade, fetched now: every window's end moves), times the incremental run, then a
full refresh, and compares both tables row by row (non-float columns exactly, floats by
their difference over the row's larger of total bought and sold).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bench.pnl import _ctx
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_PNL_WINDOWS, WALLET_TRADES
from smarttrader_cli.stages import silver_pnl

STAMPS = ["calculated_at", "run_id"]


def new_trades(trades: pa.Table, wallets: int) -> pa.Table:
    """Up to 10 copies of each chosen wallet's trades, after the latest trade, fetched now."""
    latest = pc.max(trades["block_unix_time"]).as_py()
    every = trades["wallet_address"].unique().to_pylist()
    chosen = every[:: max(1, len(every) // wallets)][:wallets]
    con = duckdb.connect()
    con.register("trades", trades)
    rows = con.execute(
        "SELECT * REPLACE (tx_hash || 'new' AS tx_hash) FROM trades "
        "WHERE wallet_address IN (SELECT unnest(?)) "
        "QUALIFY row_number() OVER (PARTITION BY wallet_address ORDER BY tx_hash) <= 10",
        [chosen],
    ).arrow()
    rows = rows.read_all() if not hasattr(rows, "num_rows") else rows
    n = rows.num_rows
    times = pa.array([latest + 60 + i for i in range(n)], pa.int64())
    fetched = pa.array([datetime.now(UTC)] * n, rows.schema.field("fetched_at").type)
    rows = rows.set_column(rows.schema.get_field_index("block_unix_time"), "block_unix_time", times)
    return rows.set_column(rows.schema.get_field_index("fetched_at"), "fetched_at", fetched)


def compare(a: pa.Table, b: pa.Table, keys: list[str]) -> dict[str, float | int]:
    """Rows joined on `keys`: mismatching non-float values and nulls, worst float difference."""
    con = duckdb.connect()
    con.register("a", a.drop_columns(STAMPS))
    con.register("b", b.drop_columns(STAMPS))
    cols = [c for c in a.column_names if c not in keys + STAMPS]
    floats = [c for c in cols if pa.types.is_floating(a.schema.field(c).type)]
    exact = " + ".join(
        f'count(*) FILTER (WHERE a."{c}" IS DISTINCT FROM b."{c}")' for c in cols if c not in floats
    )
    nulls = " + ".join(
        f'count(*) FILTER (WHERE (a."{c}" IS NULL) <> (b."{c}" IS NULL))' for c in floats
    )
    worst = ", ".join(
        f'max(abs(a."{c}" - b."{c}") / greatest(1, abs(a.total_bought), abs(a.total_sold)))'
        for c in floats
    )
    on = " AND ".join(f'a."{k}" = b."{k}"' for k in keys)
    found = con.execute(
        f"SELECT count(*), {exact}, {nulls}, greatest({worst}) FROM a FULL JOIN b ON {on}"
    ).fetchone()
    assert found is not None
    return {"rows": a.num_rows, "rows_full": b.num_rows, "joined": found[0],
            "non_float_mismatches": found[1], "null_mismatches": found[2],
            "max_rel_diff": found[3]}  # fmt: skip


def main() -> None:
    lake_root, wallets = Path(sys.argv[1]), int(sys.argv[2])
    ctx = _ctx(lake_root)
    lake = ctx.lake
    added = new_trades(lake.read(WALLET_TRADES), wallets)
    lake.append(WALLET_TRADES, added, CommitMeta("bench", "bench", "bench"))
    started = time.perf_counter()
    summary = silver_pnl.run(ctx)
    incremental = time.perf_counter() - started
    pnl, windows = lake.read(WALLET_PNL), lake.read(WALLET_PNL_WINDOWS)
    started = time.perf_counter()
    silver_pnl.run(ctx, full_refresh=True)
    full = time.perf_counter() - started
    print(json.dumps({
        "new_trades": added.num_rows, "recomputed_wallets": summary.details["wallets"],
        "incremental_seconds": round(incremental, 2), "full_seconds": round(full, 2),
        "wallet_pnl": compare(pnl, lake.read(WALLET_PNL), ["wallet_address", "token_address"]),
        "windows": compare(windows, lake.read(WALLET_PNL_WINDOWS),
                           ["wallet_address", "token_address", "window"]),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
