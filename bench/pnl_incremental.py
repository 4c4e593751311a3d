"""The cron case of `st silver pnl` on a bench/pnl.py lake: new trades, incremental, full.

    .venv/bin/python -m bench.pnl_incremental --trades 1000000 --wallets 10000 --repeat 3
    .venv/bin/python -m bench.pnl_incremental --trades 10000000 --wallets 100000

Generates the lake if needed (bench/pnl.py's generator) and runs one full refresh to start
from. Then, in every repetition and for each share of wallets (`--share`, default 1 % and
0.1 %): appends up to 10 trades for each chosen wallet (copies of theirs, a minute after the
latest trade, fetched now: every window's end moves), times the incremental run, then a
full refresh of the same lake, and compares both tables row by row (non-float columns
exactly, floats by their difference over the row's larger of total bought and sold). The
full refresh also leaves the state the next incremental run starts from. Ratios are per
repetition (incremental / the full refresh right after it); the load average is recorded
with each run. Writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bench.pnl import ROOT, _ctx, generate
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_PNL_WINDOWS, WALLET_TRADES
from smarttrader_cli.stages import silver_pnl

STAMPS = ["calculated_at", "run_id"]


def new_trades(lake: Any, share: float, tag: str) -> pa.Table:
    """Up to 10 copies of the trades of `share` of the wallets (every n-th in name order),
    after the latest trade, fetched now; tagged `tag` (copies are never copied again)."""
    import pyarrow.dataset as ds

    dataset = lake.table(WALLET_TRADES).to_pyarrow_dataset()
    firsts = dataset.to_table(columns=["wallet_address", "block_unix_time"])
    latest = pc.max(firsts["block_unix_time"]).as_py()
    every = sorted(pc.unique(firsts["wallet_address"]).to_pylist())
    del firsts
    wallets = max(1, round(share * len(every)))
    chosen = every[:: max(1, len(every) // wallets)][:wallets]
    picked = dataset.to_table(filter=ds.field("wallet_address").isin(chosen))
    con = duckdb.connect()
    con.register("trades", picked)
    rows = con.execute(
        f"SELECT * REPLACE (tx_hash || '{tag}' AS tx_hash) FROM trades "
        "WHERE length(tx_hash) < 12 "
        "QUALIFY row_number() OVER (PARTITION BY wallet_address ORDER BY tx_hash) <= 10"
    ).arrow()
    rows = rows.read_all() if not hasattr(rows, "num_rows") else rows
    n = rows.num_rows
    times = pa.array([latest + 60 + i for i in range(n)], pa.int64())
    fetched = pa.array([datetime.now(UTC)] * n, rows.schema.field("fetched_at").type)
    rows = rows.set_column(rows.schema.get_field_index("block_unix_time"), "block_unix_time", times)
    rows = rows.set_column(rows.schema.get_field_index("fetched_at"), "fetched_at", fetched)
    return rows.cast(lake.table(WALLET_TRADES).schema().to_arrow()) if False else rows


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


def _timed(ctx: Any, **options: Any) -> tuple[float, dict[str, Any], float]:
    """One stage run: (seconds, its details, 1-minute load average when it ended)."""
    started = time.perf_counter()
    summary = silver_pnl.run(ctx, **options)
    return time.perf_counter() - started, summary.details, os.getloadavg()[0]


def round_of(ctx: Any, share: float, tag: str) -> dict[str, Any]:
    """New trades for `share` of the wallets, the incremental run, the full refresh after it."""
    lake = ctx.lake
    added = new_trades(lake, share, tag)
    wallets = len(pc.unique(added["wallet_address"]))
    lake.append(WALLET_TRADES, added, CommitMeta("bench", "bench", "bench"))
    inc_s, inc, inc_load = _timed(ctx)
    pnl, windows = lake.read(WALLET_PNL), lake.read(WALLET_PNL_WINDOWS)
    full_s, _, full_load = _timed(ctx, full_refresh=True)
    return {
        "share": share, "wallets_with_new_trades": wallets, "new_trades": added.num_rows,
        "mode": inc["mode"], "recomputed_wallets": inc["wallets"],
        "repriced_wallets": inc.get("repriced_wallets"),
        "incremental_seconds": round(inc_s, 3), "full_seconds": round(full_s, 3),
        "ratio": round(inc_s / full_s, 4), "load_incremental": inc_load, "load_full": full_load,
        "wallet_pnl": compare(pnl, lake.read(WALLET_PNL), ["wallet_address", "token_address"]),
        "windows": compare(windows, lake.read(WALLET_PNL_WINDOWS),
                           ["wallet_address", "token_address", "window"]),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--wallets", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--share", type=float, action="append", help="default: 0.01 and 0.001")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    args = ap.parse_args()
    shares = args.share or [0.01, 0.001]
    lake_root = args.data_dir / f"pnl-{args.trades}-{args.wallets}" / "lake"
    if not (lake_root / "bronze" / "wallet_trades" / "_delta_log").is_dir():
        print(f"generating {args.trades:,} trades over {args.wallets:,} wallets -> {lake_root}")
        generate(lake_root, args.trades, args.wallets)
    ctx = _ctx(lake_root)
    print("full refresh to start from", flush=True)
    _timed(ctx, full_refresh=True)
    rounds: list[dict[str, Any]] = []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for rep in range(args.repeat):
        for share in shares:
            found = round_of(ctx, share, f"n{stamp}r{rep}s{share}")
            rounds.append(found)
            print(json.dumps(found), flush=True)
    print(f"\n{'share':>7} {'new trades':>10} {'recomputed':>10} {'re-valued':>9} "
          f"{'incremental s':>14} {'full s':>8} {'ratio':>7} {'load':>5}  equal rows")  # fmt: skip
    summary = []
    for share in shares:
        mine = [r for r in rounds if r["share"] == share]
        for r in mine:
            equal = all(
                r[t]["joined"] == r[t]["rows"] == r[t]["rows_full"]
                and r[t]["non_float_mismatches"] == r[t]["null_mismatches"] == 0
                for t in ("wallet_pnl", "windows")
            )
            print(f"{share:>7.3%} {r['new_trades']:>10,} {r['recomputed_wallets']:>10,} "
                  f"{r['repriced_wallets'] or 0:>9,} {r['incremental_seconds']:>14.2f} "
                  f"{r['full_seconds']:>8.2f} {r['ratio']:>7.3f} {r['load_incremental']:>5.1f}  "
                  f"{equal} (max rel diff {max(r['wallet_pnl']['max_rel_diff'] or 0, r['windows']['max_rel_diff'] or 0):.1e})")  # fmt: skip
        summary.append({
            "share": share,
            "median_incremental_seconds": statistics.median(r["incremental_seconds"] for r in mine),
            "median_full_seconds": statistics.median(r["full_seconds"] for r in mine),
            "ratios": [r["ratio"] for r in mine],
            "median_ratio": statistics.median(r["ratio"] for r in mine),
        })  # fmt: skip
        print(f"  {share:.3%}: ratio per repetition {', '.join(f'{x:.3f}' for x in summary[-1]['ratios'])}"
              f" (median {summary[-1]['median_ratio']:.3f})")  # fmt: skip
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"pnl-incremental-{stamp}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "cpu_count": os.cpu_count(), "rounds": rounds,
                               "summary": summary}, indent=2))  # fmt: skip
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
