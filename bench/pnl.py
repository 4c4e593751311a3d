"""Benchmark of `st silver pnl`: DuckDB computation, full refresh, Spark, and the oracle.

    .venv/bin/python -m bench.pnl                      # 10M trades over 100k wallets
    .venv/bin/python -m bench.pnl --trades 1000000 --wallets 10000 --spark-trades 1000000
    .venv/bin/python -m bench.pnl --skip ... --baseline /tmp/base   # side by side with a tree

Generates bronze.wallet_trades as Delta (heavy-tailed trades per wallet, a few bot wallets
with ~100k+ trades), then measures each part in its own subprocess (wall time, peak RSS of
the process tree, median of --repeat runs, the repetitions going round the parts) and
writes JSON to bench/results/. `duckdb-reference` times the SPEC's formulas as one
straightforward query on the same legs, so the engine's compute has a yardstick measured
on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
SOL = "So11111111111111111111111111111111111111112"

GENERATE_SQL = """
SELECT
    'tx' || i AS tx_hash,
    0::INT AS ins_index,
    0::INT AS inner_ins_index,
    '' AS fill_id,
    'W' || w AS wallet_address,
    (1700000000 + i // 10 + (hash(i) % 600))::BIGINT AS block_unix_time,
    CASE WHEN k < 0.47 THEN q WHEN k < 0.98 THEN tok ELSE tok2 END AS from_token_address,
    CASE WHEN k < 0.47 THEN qty * price ELSE qty END AS from_amount,
    CASE WHEN k < 0.47 THEN 1.0 WHEN miss THEN NULL ELSE price END AS from_price_usd,
    CASE WHEN k < 0.47 THEN tok WHEN k < 0.98 THEN q ELSE tok END AS to_token_address,
    CASE WHEN k < 0.47 THEN qty WHEN k < 0.98 THEN qty * price ELSE qty * 0.9 END AS to_amount,
    CASE WHEN k < 0.47 THEN (CASE WHEN miss THEN NULL ELSE price END)
         WHEN k < 0.98 THEN 1.0 ELSE price * 1.05 END AS to_price_usd,
    TIMESTAMPTZ '2024-01-01 00:00:00+00' AS fetched_at
FROM (
    SELECT
        *,
        -- each wallet trades ~5 of 2,000 tokens; token-to-token swaps reach any token
        'Tok' || ((w * 7 + hash(i) % 5) % 2000) AS tok,
        'Tok' || ((w * 7 + hash(i) % 5 + 1) % 2000) AS tok2,
        '{usdc}' AS q
    FROM (
        SELECT
            i,
            -- heavy tail: wallet index ~ W * u^3, so the first wallets are bots (100k+ trades)
            floor({wallets} * pow(random(), 3))::BIGINT AS w,
            random() AS k,
            random() < 0.02 AS miss,
            0.5 + random() * 100 AS qty,
            0.01 + random() * 2 AS price
        FROM range({start}, {stop}) r(i)
    )
)
"""


# The SPEC §6 formulas as one straightforward query over the same legs: the yardstick the
# issue's "about 1.2 million legs/s" refers to, measured side by side with the engine. Not
# exact where the engine is (a lot starts at B - qty, a slice inside one lot is a difference
# of cumulative costs, no special case when the clamp binds), so it is timed, never used.
REFERENCE_SQL = """
CREATE OR REPLACE TEMP TABLE bench_reference AS
WITH c AS (
    SELECT g, is_buy, qty, value, t,
        row_number() OVER w AS rn,
        sum(CASE WHEN is_buy THEN qty ELSE 0 END) OVER w AS b,
        sum(CASE WHEN is_buy THEN 0 ELSE qty END) OVER w AS q,
        sum(CASE WHEN is_buy THEN value ELSE 0 END) OVER w AS cost,
        sum(CASE WHEN is_buy THEN qty * (t - {t0}) ELSE 0 END) OVER w AS gt
    FROM (SELECT *, hash(wallet, token) AS g FROM st_legs WHERE value IS NOT NULL)
    WINDOW w AS (PARTITION BY g ORDER BY t, tx_hash, ins_index, inner_ins_index
                 ROWS UNBOUNDED PRECEDING)
),
lots AS (
    SELECT g, b - qty AS s, cost - value AS f0, gt - qty * (t - {t0}) AS g0,
           value / qty AS u, t - {t0} AS age
    FROM c WHERE is_buy
),
sells AS (
    SELECT g, rn, qty, value, t,
        q + least(0, min(b - q) OVER (PARTITION BY g ORDER BY rn ROWS UNBOUNDED PRECEDING)) AS m
    FROM c WHERE NOT is_buy
),
at_bound AS (
    SELECT s.*, coalesce(l.f0 + (s.m - l.s) * l.u, 0) AS f, coalesce(l.g0 + (s.m - l.s) * l.age, 0) AS gm
    FROM sells s ASOF LEFT JOIN lots l ON s.g = l.g AND s.m > l.s
),
per_sell AS (
    SELECT g, qty, value, t,
        m - coalesce(lag(m) OVER w, 0) AS matched,
        f - coalesce(lag(f) OVER w, 0) AS cost,
        gm - coalesce(lag(gm) OVER w, 0) AS g_delta
    FROM at_bound WINDOW w AS (PARTITION BY g ORDER BY rn)
)
SELECT g, sum(value * matched / qty - cost) AS realized_pnl, sum(cost) AS matched_cost,
    sum(matched) AS matched_qty, sum((t - {t0}) * matched - g_delta) AS held_seconds,
    count(*) FILTER (WHERE matched > 0 AND value * matched / qty > cost) AS winning_sells
FROM per_sell GROUP BY g
"""


def generate(lake_root: Path, trades: int, wallets: int, chunk: int = 2_000_000) -> None:
    """Write `trades` synthetic swaps into <lake_root>/bronze/wallet_trades."""
    import duckdb

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.lake.tables import WALLET_TRADES

    lake = Lake(str(lake_root))
    meta = CommitMeta("bench", "bench.generate", "bench")
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    for start in range(0, trades, chunk):
        stop = min(trades, start + chunk)
        sql = GENERATE_SQL.format(wallets=wallets, start=start, stop=stop, usdc=USDC)
        lake.append(WALLET_TRADES, con.execute(sql).arrow().read_all(), meta)
        print(f"  generated {stop:,} / {trades:,} trades", flush=True)


def _ctx(lake_root: Path, master: str = "local[2]"):  # type: ignore[no-untyped-def]
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.stages.contract import StageContext

    cfg = lake_root.parent / "st-bench.yaml"
    cfg.write_text(
        f"lake:\n  root: {lake_root}\nruntime:\n  state_dir: {lake_root.parent / 'state'}\n"
        f"spark:\n  master: {master}\n  shuffle_partitions: 8\n"
    )
    app = AppContext(config_path=cfg)
    return StageContext.of(app.loaded, app.lake)


def _prepared_legs(lake_root: Path):  # type: ignore[no-untyped-def]
    """A DuckDB connection sized like the stage's, with the engine's legs prepared on it:
    (connection, params, input counts, seconds the preparation took)."""
    from smarttrader_cli.engines import duckdb_pnl
    from smarttrader_cli.engines.pnl_common import PnlParams
    from smarttrader_cli.stages.silver_pnl import open_duckdb

    ctx = _ctx(lake_root)
    con = open_duckdb(ctx)
    params = PnlParams(tuple(ctx.config.pnl.quote_assets), 0.0, datetime.now(UTC), "bench")
    started = time.perf_counter()
    counts = duckdb_pnl.prepare_legs(con, params)
    return con, params, counts, time.perf_counter() - started


def child(mode: str, lake_root: Path, sample_wallets: int) -> dict[str, float]:
    """One measurement inside this (sub)process; prints a JSON line."""
    out: dict[str, float] = {}
    if mode == "duckdb-compute":
        from smarttrader_cli.engines import duckdb_pnl

        con, params, counts, read_seconds = _prepared_legs(lake_root)
        started = time.perf_counter()
        duckdb_pnl.run_fifo(con, params)
        duckdb_pnl.build_rows(con, params)
        out = {"seconds": time.perf_counter() - started, "read_and_legs_seconds": read_seconds,
               "legs": counts.legs, "trades": counts.trades}  # fmt: skip
    elif mode == "duckdb-reference":
        con, params, counts, _ = _prepared_legs(lake_root)
        t0 = con.execute("SELECT min(t) FROM st_legs").fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        con.execute(REFERENCE_SQL.format(t0=int(t0)))
        out = {"seconds": time.perf_counter() - started, "legs": counts.legs}
    elif mode in ("duckdb-full", "spark-full"):
        from smarttrader_cli.stages import silver_pnl

        t0 = time.perf_counter()
        s = silver_pnl.run(_ctx(lake_root), engine=mode.split("-")[0], full_refresh=True)
        out = {"seconds": time.perf_counter() - t0, "legs": s.details["legs"],
               "rows": s.details["rows"]}  # fmt: skip
    elif mode == "oracle":
        from smarttrader_cli.lake.query import connect
        from smarttrader_cli.lake.store import Lake
        from tests.pnl_oracle import oracle_pnl

        con = connect(Lake(str(lake_root)))
        rows = (
            con.execute(
                "SELECT * FROM bronze.wallet_trades WHERE wallet_address IN ("
                f"SELECT DISTINCT wallet_address FROM bronze.wallet_trades USING SAMPLE "
                f"{sample_wallets} ROWS)"
            )
            .arrow()
            .read_all()
            .to_pylist()
        )
        t0 = time.perf_counter()
        oracle_pnl(rows, (), (USDC, SOL))
        out = {"seconds": time.perf_counter() - t0, "trades": len(rows)}
    print("RESULT " + json.dumps(out), flush=True)
    return out


def measure(mode: str, lake_root: Path, sample_wallets: int, root: Path = ROOT) -> dict[str, float]:
    """Run one child process (the code of the tree `root`); wall time from the child, peak
    RSS of its process tree."""
    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pnl", "--child", mode, "--lake", str(lake_root),
         "--sample-wallets", str(sample_wallets)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, ST_LOG_LEVEL="WARNING"),
        cwd=root,
    )  # fmt: skip
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = sum(c.memory_info().rss for c in [p, *p.children(recursive=True)])
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    stdout, _ = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed with exit code {proc.returncode}")
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["peak_rss_mb"] = peak / 2**20
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--wallets", type=int, default=100_000)
    ap.add_argument("--spark-trades", type=int, default=0, help="N for Spark (0: same data)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample-wallets", type=int, default=200)
    ap.add_argument("--skip", action="append", default=[], help="duckdb-compute, spark-full, ...")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    ap.add_argument("--baseline", type=Path, help="also run each part with this tree's code")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.lake, args.sample_wallets)
        return

    def lake_for(n: int) -> Path:
        root = args.data_dir / f"pnl-{n}-{args.wallets}" / "lake"
        if not (root / "bronze" / "wallet_trades" / "_delta_log").is_dir():
            print(f"generating {n:,} trades over {args.wallets:,} wallets -> {root}")
            generate(root, n, args.wallets)
        return root

    main_lake = lake_for(args.trades)
    spark_n = args.spark_trades or args.trades
    plan = [
        ("duckdb-compute", main_lake, args.trades),
        ("duckdb-reference", main_lake, args.trades),
        ("duckdb-full", main_lake, args.trades),
        ("spark-full", lake_for(spark_n), spark_n),
        ("oracle", main_lake, args.trades),
    ]
    plan = [p for p in plan if p[0] not in args.skip]
    if args.baseline:  # each part's baseline twin runs right after it, in every repetition
        plan = [q for p in plan for q in (p, (p[0] + "@baseline", p[1], p[2]))]
    # Repetitions go round the parts (compute, reference, full, ...) so that each part's
    # runs see the same moments of a shared machine and their ratios stay comparable.
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode, _, _ in plan}
    for _ in range(args.repeat):
        for mode, lake, _ in plan:
            part, _, base = mode.partition("@")
            root = args.baseline.resolve() if base else ROOT
            runs[mode].append(measure(part, lake, args.sample_wallets, root))
    results = []
    for mode, _, n in plan:
        secs = statistics.median(r["seconds"] for r in runs[mode])
        first = runs[mode][0]
        units = first.get("legs") or first.get("trades") or n
        row = {
            "part": mode, "n_trades": n if mode != "oracle" else first["trades"],
            "legs": first.get("legs"), "median_seconds": round(secs, 3),
            "runs_seconds": [round(r["seconds"], 3) for r in runs[mode]],
            "per_second": round(units / secs) if secs else None,
            "per_second_unit": "legs" if first.get("legs") else "trades",
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs[mode])),
        }  # fmt: skip
        results.append(row)
        print(json.dumps(row), flush=True)
    by_part = {r["part"]: r for r in results}
    compute, reference = by_part.get("duckdb-compute"), by_part.get("duckdb-reference")
    if compute and reference:
        ratios = [
            ref["seconds"] / own["seconds"]
            for own, ref in zip(runs["duckdb-compute"], runs["duckdb-reference"], strict=True)
        ]
        print(
            "reference query time / engine compute time, per repetition: "
            + ", ".join(f"{x:.2f}" for x in ratios)
            + f" (median {statistics.median(ratios):.2f})"
        )
    for mode in [m for m in runs if m + "@baseline" in runs]:
        ratios = [
            own["seconds"] / base["seconds"]
            for own, base in zip(runs[mode], runs[mode + "@baseline"], strict=True)
        ]
        print(
            f"{mode}: this tree / baseline time, per repetition: "
            + ", ".join(f"{x:.3f}" for x in ratios)
            + f" (median {statistics.median(ratios):.3f})"
        )
    duck, spark = by_part.get("duckdb-full"), by_part.get("spark-full")
    if duck and spark and duck["n_trades"] == spark["n_trades"]:
        print(
            f"spark/duckdb full-refresh time ratio: {spark['median_seconds'] / duck['median_seconds']:.1f}x"
        )
    print(f"\n{'part':16} {'trades':>12} {'median s':>10} {'per second':>14} {'peak RSS MB':>12}")
    for r in results:
        print(f"{r['part']:16} {r['n_trades']:>12,} {r['median_seconds']:>10.2f} "
              f"{r['per_second'] or 0:>10,} {r['per_second_unit']:<5} {r['peak_rss_mb']:>8,}")  # fmt: skip
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"pnl-{stamp}.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "cpu_count": os.cpu_count(), "results": results}, indent=2))  # fmt: skip
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
