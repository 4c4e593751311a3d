"""Gold ranking benchmark: `gold.rank` (dbt build + Delta overwrite) over N silver wallets.

Writes N synthetic ALL_TOKENS rows (plus one token row each) into a temporary lake,
runs the stage twice (the second run reuses dbt's partial parse), prints a table and
writes bench/results/gold_rank.json.

Usage: .venv/bin/python -m bench.gold_rank [--wallets 1000 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WALLET_PNL
from smarttrader_cli.stages.contract import StageContext
from smarttrader_cli.stages.gold import rank

RESULTS = Path(__file__).parent / "results" / "gold_rank.json"


def silver(n: int) -> pa.Table:
    """n portfolio rows with a spread of PnL, ROI, win rate and activity."""
    rng = random.Random(n)
    wallets, tokens, pnl, roi, win, trades = [], [], [], [], [], []
    for i in range(n):
        p = rng.lognormvariate(5, 2) * (1 if rng.random() < 0.6 else -1)
        for token in ("ALL_TOKENS", "TOKEN"):
            wallets.append(f"W{i:09d}")
            tokens.append(token)
            pnl.append(p)
            roi.append(p / rng.uniform(500, 50_000))
            win.append(rng.random())
            trades.append(rng.randint(1, 400))
    return pa.table(
        {
            "wallet_address": wallets,
            "token_address": tokens,
            "total_pnl": pnl,
            "realized_pnl": pnl,
            "roi": roi,
            "win_rate": win,
            "trade_count": trades,
        }
    )


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="st-bench-gold-") as tmp:
        config = Path(tmp) / "st.yaml"
        config.write_text(
            f"lake:\n  root: {tmp}/lake\nruntime:\n  state_dir: {tmp}/state\n"
            "memory:\n  min_free_mb: 256\n"
        )
        app = AppContext(config_path=config)
        app.lake.merge(WALLET_PNL, silver(n), CommitMeta("bench", "bench", "bench"))
        times = []
        for _ in range(2):
            start = time.monotonic()
            result = rank(StageContext.of(app.loaded, app.lake))
            times.append(time.monotonic() - start)
        return {
            "wallets": n,
            "ranked": result.details["ranked"],
            "first_run_s": round(times[0], 2),
            "second_run_s": round(times[1], 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, nargs="+", default=[1000, 100_000])
    args = parser.parse_args()
    rows = [measure(n) for n in args.wallets]
    print(f"{'wallets':>10} {'ranked':>8} {'1st run s':>10} {'2nd run s':>10}")
    for r in rows:
        print(
            f"{r['wallets']:>10,} {r['ranked']:>8,} {r['first_run_s']:>10} {r['second_run_s']:>10}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"machine": platform.node(), "cpus": __import__("os").cpu_count(), "results": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
